"""No genuine proof refused: every published prover proof in ``data/prover_proofs.jsonl``
through the service (Lean replaced by the REPL double), posted both ways, header + statement +
code and the whole file as code with the statement and no header. One suite guards both
directions: the hostile classes are in ``test_rules.py`` and the selftest.

Expected, as the data's README and the issue say:
- every row is ``valid``, except
- Kimina's ``native_decide`` proofs: ``forbidden_axiom:Lean.ofReduceBool`` under the default
  policy (they trust the compiler), ``valid`` under a policy that allows it;
- miniCTX rows whose header is another project's file: refused with the reason named
  (``header_error`` when its imports are not in the image, ``forbidden_command:instance`` ...);
- InternLM rows run with the standard Mathlib header (theirs imports a LeanDojo project).
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier_service.cache import cache_key
from verifier_service.checkers.base import Policy
from verifier_service.checkers.lean import LeanChecker
from verifier_service.selftest.cases import NATIVE_AXIOMS
from verifier_service.service import ProofItem, VerificationService
from verifier_service.testing.prover_proofs import DATA, lean_settings, load_rows, posted, source_of

from .test_header_properties import headers

NATIVE = Policy(axioms=NATIVE_AXIOMS)
NAMED_REFUSALS = ("forbidden_command:", "forbidden_option:", "header_error", "statement_changed")


def _rows() -> list[dict]:
    # Vendored with the repository: a missing file is a broken checkout, so it fails here.
    return load_rows(DATA)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return _rows()


@pytest.fixture
async def service():
    settings = lean_settings()
    service = VerificationService({"lean4": LeanChecker(settings)}, None, settings=settings)
    await service.start()
    await service.wait_started()
    yield service
    await service.aclose()


async def _verify(service, items, policy=None):
    results = []
    for start in range(0, len(items), 64):
        results += await service.verify(items[start : start + 64], policy)
    return results


@pytest.mark.parametrize("way", ["split", "file"])
async def test_every_published_proof_gets_its_expected_verdict(service, rows, way):
    items = [posted(row, way, str(i)) for i, row in enumerate(rows)]
    results = await _verify(service, items)
    wrong, refused = [], Counter()
    for row, result in zip(rows, results, strict=True):
        outcome = result.outcome
        group = source_of(row)
        if group == "minictx":
            if outcome.verdict.value != "valid":
                refused[group] += 1
                named = outcome.reasons and all(
                    r.startswith(NAMED_REFUSALS) for r in outcome.reasons
                )
                if outcome.verdict.value != "invalid" or not named:
                    wrong.append((row["name"], outcome.verdict.value, outcome.reasons))
        elif "native_decide" in row["proof"]:
            if outcome.reasons != ["forbidden_axiom:Lean.ofReduceBool"]:
                wrong.append((row["name"], outcome.verdict.value, outcome.reasons))
        elif outcome.verdict.value != "valid":
            wrong.append((row["name"], outcome.verdict.value, outcome.reasons))
    assert wrong == [], wrong[:10]
    # the refusals are the project headers, not the proofs. Posted split, the rows whose header
    # is plain Mathlib with harmless commands pass; posted whole, a project file's own
    # definitions stand before the statement, so every one is refused.
    minictx = sum(source_of(r) == "minictx" for r in rows)
    assert 0 < refused["minictx"] < minictx if way == "split" else refused["minictx"] == minictx


async def test_native_decide_proofs_are_valid_when_the_policy_trusts_the_compiler(service, rows):
    native = [row for row in rows if source_of(row) == "kimina" and "native_decide" in row["proof"]]
    assert len(native) >= 5
    for way in ("split", "file"):
        items = [posted(row, way, str(i)) for i, row in enumerate(native)]
        results = await _verify(service, items, NATIVE)
        assert [r.outcome.verdict.value for r in results] == ["valid"] * len(native)
        assert all("Lean.ofReduceBool" in (r.outcome.axioms or []) for r in results)


def test_both_ways_of_posting_are_one_job_and_one_cache_key(rows):
    checker = LeanChecker(lean_settings())
    policy = Policy()
    compared = 0
    for i, row in enumerate(rows):
        if source_of(row) == "minictx":
            continue  # a project file is no header block: posted whole, its defs stay in code
        split, whole = (
            _job(checker, posted(row, way, str(i)), policy) for way in ("split", "file")
        )
        assert split.header == whole.header, row["name"]
        assert split.code == whole.code, row["name"]
        assert cache_key(split, checker.version) == cache_key(whole, checker.version)
        assert whole.line_offset > 0 == split.line_offset
        compared += 1
    assert compared == sum(source_of(r) != "minictx" for r in rows)


def _job(checker: LeanChecker, item: ProofItem, policy: Policy):
    return checker.prepare(
        code=item.code,
        header=item.header,
        statement=item.statement,
        answer=None,
        timeout_s=60.0,
        policy=policy,
    )


# --- the property: moving the header block never changes the verdict or the key ---------------

STATEMENT = "theorem sieve_prop (a b : ℕ) : a + b = b + a := by\n"
BODIES = {
    "valid": STATEMENT + "  omega\n",
    "helper": "lemma sieve_h : True := trivial\n\n" + STATEMENT + "  omega\n",
    "sorry": STATEMENT + "  sorry\n",
    "error": STATEMENT + "  simp -- double:error unsolved goals\n",
    "native": STATEMENT + "  native_decide\n",
    "forbidden": STATEMENT + "  omega\n#eval 1\n",
    "changed": "theorem sieve_prop (a b : ℕ) : True := trivial\n",
}


@pytest.fixture(scope="module")
def property_checker():
    import asyncio

    loop = asyncio.new_event_loop()
    settings = lean_settings()
    service = VerificationService({"lean4": LeanChecker(settings)}, None, settings=settings)
    loop.run_until_complete(service.start())
    loop.run_until_complete(service.wait_started())
    yield loop, service
    loop.run_until_complete(service.aclose())
    loop.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(header=headers(block_only=True), body=st.sampled_from(sorted(BODIES)))
def test_moving_the_header_block_never_changes_verdict_or_key(property_checker, header, body):
    loop, service = property_checker
    checker = service.checkers["lean4"]
    code = BODIES[body]
    header = header if header.strip() else "import Mathlib\n"
    split = ProofItem("split", code, header=header, statement=STATEMENT)
    whole = ProofItem("file", header.rstrip("\n") + "\n\n" + code, statement=STATEMENT)
    jobs = [_job(checker, item, Policy()) for item in (split, whole)]
    assert cache_key(jobs[0], checker.version) == cache_key(jobs[1], checker.version)
    results = loop.run_until_complete(service.verify([split, whole]))
    a, b = (r.outcome for r in results)
    assert (a.verdict, a.reasons) == (b.verdict, b.reasons)
    # each sees positions in its own text: every message points at the same source line
    assert len(a.messages) == len(b.messages)
    for ma, mb in zip(a.messages, b.messages, strict=True):
        if "pos" in ma:
            la, lb = ma["pos"]["line"], mb["pos"]["line"]
            assert split.code.splitlines()[la - 1] == whole.code.splitlines()[lb - 1]
            assert ma["pos"]["column"] == mb["pos"]["column"]
