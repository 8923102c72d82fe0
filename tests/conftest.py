"""Suite-wide isolation: a developer's ``SIEVE_*`` variables never leak into the tests, and no
test inherits another's accelerate state.

A shell that exports ``SIEVE_REDIS_URL`` or ``SIEVE_LEAN_REPL`` (say, to run the service) would
otherwise change what the settings-reading tests build. Only the real-Lean tests (marked
``lean``) see the caller's ``SIEVE_*`` variables: that is how they are configured.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_sieve_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("lean") is not None:
        return
    for name in [name for name in os.environ if name.startswith("SIEVE_")]:
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """Each test gets a fresh accelerate state.

    ``AcceleratorState`` is a process-wide singleton: a test that builds an ``Accelerator`` with
    ``mixed_precision="bf16"`` (TRL's ``GRPOTrainer`` does) would make every later
    ``Accelerator(mixed_precision="no")`` in the same process raise.
    """
    yield
    try:
        from accelerate.state import AcceleratorState
    except ImportError:  # the verifier-only install has no accelerate
        return
    AcceleratorState._reset_state(reset_partial_state=True)
