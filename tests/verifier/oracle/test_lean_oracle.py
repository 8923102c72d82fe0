"""The oracle tier: re-record a sample of the corpus on the real wasm Lean, compare with the
fixtures.

    scripts/install-lean-wasm.sh && pytest -m lean_oracle tests/verifier/oracle

The sample takes one recorded text from each of :data:`SAMPLE_CLASSES` classes, rotating through
the classes and their texts by a seed it prints (``SIEVE_ORACLE_SEED`` repeats a run;
``SIEVE_ORACLE_SAMPLE`` takes fewer classes). At 1-3 minutes a file on 2 shared cores, five
files stay under 20 minutes. It runs only when selected
(``-m lean_oracle``, or ``SIEVE_LEAN_ORACLE=1``): the ordinary suite replays the fixtures instead.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from verifier_service.testing import lean_oracle as oracle

pytestmark = pytest.mark.lean_oracle

SAMPLE_CLASSES = int(os.environ.get("SIEVE_ORACLE_SAMPLE") or 5)
LEAN = oracle.default_lean()


@pytest.fixture(scope="module")
def lean(request: pytest.FixtureRequest):
    selected = "lean_oracle" in (request.config.option.markexpr or "")
    if not (selected or os.environ.get("SIEVE_LEAN_ORACLE") == "1"):
        pytest.skip("the oracle tier runs only when selected: pytest -m lean_oracle")
    if not LEAN.exists():
        pytest.skip(f"no wasm Lean at {LEAN}: run scripts/install-lean-wasm.sh")
    return LEAN


def sample(seed: int) -> list[oracle.Entry]:
    """One recorded text from each of ``SAMPLE_CLASSES`` classes, chosen by ``seed``."""
    by_class: dict[str, list[oracle.Entry]] = {}
    for entry in oracle.load_corpus():
        recording = oracle.load_recording(entry.id)
        if recording is not None and recording.digest == entry.digest:
            by_class.setdefault(entry.kind.split(":")[0], []).append(entry)
    rng = random.Random(seed)
    classes = sorted(by_class)
    rng.shuffle(classes)
    return [rng.choice(by_class[c]) for c in classes[:SAMPLE_CLASSES]]


SEED = int(os.environ.get("SIEVE_ORACLE_SEED") or time.time())


def test_a_sample_rerecords_as_recorded(lean, capsys):
    entries = sample(SEED)
    with capsys.disabled():
        print(f"\nlean_oracle sample, seed {SEED}: {[e.id for e in entries]}")
    assert entries, "no recorded text to sample"
    for entry in entries:
        want = oracle.load_recording(entry.id)
        assert want is not None
        # ``lean --version`` would cost one more Lean start-up; the version is not compared
        got = oracle.record(entry, lean=lean, version=want.lean_version)
        where = f"{entry.id} (seed {SEED})"
        assert got.commands == want.commands, where
        assert got.declarations == want.declarations, where
        assert got.reached_end == want.reached_end, where
        assert [(m["severity"], m["line"], m["column"]) for m in got.messages] == [
            (m["severity"], m["line"], m["column"]) for m in want.messages
        ], where
