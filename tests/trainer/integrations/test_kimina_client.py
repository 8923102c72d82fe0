"""The real ``kimina-client`` (PyPI) against Sieve's ``/api/check`` and ``/health``.

Sieve runs as ``sieve-verifier serve`` with the lean4 checker on the REPL protocol double.
kimina-client needs Python >= 3.12: on 3.11 it fails to import (it does not declare ``pygments``,
and pydantic refuses its ``typing.TypedDict``). The client therefore runs in the interpreter that
allows it: this one when it is 3.12+ and has kimina-client, else ``KIMINA_CLIENT_PYTHON``, else a
``python3.13``/``python3.12`` on PATH that has it. With none of them the test is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.trainer.integrations.conftest import HEADER

STATEMENT = "theorem add_comm' (a b : ℕ) : a + b = b + a := by"

#: Runs under the kimina-capable interpreter: checks snippets and prints what the client parsed.
CLIENT_SCRIPT = r"""
import json, sys
from kimina_client import KiminaClient, Snippet

url, snippets = sys.argv[1], json.loads(sys.argv[2])
client = KiminaClient(api_url=url, n_retries=1, http_timeout=60)
health = client.health()
response = client.check(
    [Snippet(**s) for s in snippets], timeout=3, debug=True, show_progress=False
)
print(json.dumps({
    "health": health,
    "results": [
        {
            "id": r.id,
            "status": r.analyze().status.value,
            "error": r.error,
            "diagnostics": r.diagnostics,
        }
        for r in response.results
    ],
}))
"""

SKIP_REASON = (
    "kimina-client needs Python >= 3.12 (on 3.11 it fails to import: it does not declare "
    "pygments, and pydantic refuses its typing.TypedDict); set KIMINA_CLIENT_PYTHON to a 3.12+ "
    "interpreter with kimina-client installed to run this test"
)


def _can_import_kimina(python: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import kimina_client"], capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def kimina_python() -> str | None:
    candidates = []
    if sys.version_info >= (3, 12):
        candidates.append(sys.executable)
    if os.environ.get("KIMINA_CLIENT_PYTHON"):
        candidates.append(os.environ["KIMINA_CLIENT_PYTHON"])
    candidates += [p for p in (shutil.which("python3.13"), shutil.which("python3.12")) if p]
    return next((p for p in candidates if _can_import_kimina(p)), None)


@pytest.fixture(scope="module")
def client_python() -> str:
    python = kimina_python()
    if python is None:
        pytest.skip(SKIP_REASON)
    return python


def run_client(python: str, url: str, snippets: list[dict]) -> dict:
    done = subprocess.run(
        [python, "-c", CLIENT_SCRIPT, url, json.dumps(snippets)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},  # its own packages
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_kimina_client_checks_through_sieve(client_python, lean_double_url):
    snippets = [
        {"id": "ok", "code": f"{HEADER}\n{STATEMENT}\n  omega"},
        {"id": "sorry", "code": f"{HEADER}\n{STATEMENT}\n  sorry"},
        {"id": "error", "code": f"{HEADER}\n{STATEMENT}\n  simp -- double:error"},
        {"id": "exit", "code": f"{HEADER}\n#exit"},  # Lean would accept it; Sieve refuses
        {"id": "slow", "code": f"{HEADER}\n{STATEMENT}\n  omega -- double:hang"},
    ]
    out = run_client(client_python, lean_double_url, snippets)
    assert out["health"] == {"status": "ok"}
    results = {r["id"]: r for r in out["results"]}
    assert set(results) == {s["id"] for s in snippets}
    assert results["ok"]["status"] == "valid"
    assert results["sorry"]["status"] == "sorry"
    assert results["error"]["status"] == "lean_error"
    assert results["exit"]["status"] == "lean_error"  # never valid through kimina's analysis
    assert results["slow"]["status"] == "timeout_error"
    # debug=True: the diagnostics survive kimina's Diagnostics model (unknown keys are dropped).
    uuids = {r["diagnostics"]["repl_uuid"] for r in out["results"]}
    assert len(uuids) == 1 and len(uuids.pop()) == 32
