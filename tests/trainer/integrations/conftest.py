"""Loopback verifiers for the integration tests, one per session."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest

from verifier_service.launcher import serve_subprocess
from verifier_service.testing.repl_double import command

REPO_ROOT = Path(__file__).resolve().parents[3]
#: The header the lean-double verifier prewarms.
HEADER = "import Mathlib\nimport Aesop"


@pytest.fixture(scope="session")
def lean_double_url():
    """``sieve-verifier serve`` with the real lean4 checker and pool on the REPL double."""
    if importlib.util.find_spec("uvicorn") is None:
        pytest.skip("uvicorn is not installed; pip install -e '.[verifier]'")
    env = {
        "SIEVE_CHECKERS": "lean4",
        "SIEVE_LEAN_REPL": shlex.join(command("--no-transcripts")),
        "SIEVE_LEAN_WORKERS": "1",
        "SIEVE_LEAN_PREWARM_HEADERS": HEADER,
        "SIEVE_LEAN_SANDBOX": "none",
        "SIEVE_LOG_LEVEL": "warning",
    }
    with serve_subprocess(env, cwd=REPO_ROOT) as url:
        yield url
