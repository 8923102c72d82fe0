"""``sieve-verifier selftest`` against a live loopback verifier whose Lean is the REPL double.

The double answers like Lean for everything the cases need (``sorry``, axioms, ``native_decide``),
and the static rules run for real, so every case must come back with its known verdict. A server
that accepts everything must fail the selftest, and an unreachable one must exit 2.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from verifier_service.cli import app
from verifier_service.launcher import free_port, serve_subprocess
from verifier_service.lean.sandbox import Sandbox
from verifier_service.selftest import CASES, Expect, run_selftest
from verifier_service.testing.repl_double import command

runner = CliRunner()


@pytest.fixture(scope="module")
def lean_url():
    env = {
        "SIEVE_CHECKERS": "lean4,math",
        "SIEVE_LEAN_REPL": shlex.join(command("--no-transcripts")),
        "SIEVE_LEAN_WORKERS": "2",
        "SIEVE_LEAN_SANDBOX": "none",
        "SIEVE_LOG_LEVEL": "warning",
        "SIEVE_API_KEYS": "selftest-key",
    }
    with serve_subprocess(env, ready_path="/health") as url:
        yield url


def test_cases_cover_both_directions():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    kinds = {case.expect for case in CASES}
    assert kinds == {Expect.VALID, Expect.INVALID}
    assert sum(case.expect is Expect.INVALID for case in CASES) >= 30


def test_every_verdict_is_right_against_the_service(lean_url):
    report = run_selftest(lean_url, api_key="selftest-key", ready_timeout_s=60)
    wrong = [r.to_dict() for r in report.wrong]
    assert report.ok, wrong
    assert len(report.results) == len(CASES)
    assert report.hostile_accepted == []
    assert report.checker_version.startswith("lean4")


def test_every_verdict_is_right_with_the_double_in_bubblewrap():
    """Sandboxed, the double sees only the paths on its command line: it must still answer the
    trusted programs (parse, statement, target), or every proof would be an ``error``."""
    problem = Sandbox().problem()
    if problem is not None:
        pytest.skip(f"bubblewrap cannot run in this environment: {problem}")
    # As root the sandbox runs as uid 65534, who cannot run a Python under /root; the double
    # needs only the standard library, so the system's Python does.
    python = "/usr/bin/python3" if os.geteuid() == 0 and Path("/usr/bin/python3").exists() else None
    if python is None:
        python = sys.executable
    env = {
        "SIEVE_CHECKERS": "lean4",
        "SIEVE_LEAN_REPL": shlex.join([python, *command("--no-transcripts")[1:]]),
        "SIEVE_LEAN_WORKERS": "1",
        "SIEVE_LEAN_SANDBOX": "bwrap",
        "SIEVE_LOG_LEVEL": "warning",
        "SIEVE_API_KEYS": "selftest-key",
    }
    with serve_subprocess(env, ready_path="/health") as url:
        report = run_selftest(url, api_key="selftest-key", ready_timeout_s=60)
    assert report.ok, [r.to_dict() for r in report.wrong]
    assert len(report.results) == len(CASES)
    assert report.hostile_accepted == []


def test_cli_prints_the_table_and_exits_0(lean_url):
    result = runner.invoke(
        app,
        ["selftest", "--url", lean_url, "--api-key", "selftest-key", "--wait-ready", "60"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    assert "hostile_native_decide" in result.output
    assert "forbidden_command:@[norm_num]" in result.output  # reasons are printed, not markup


def test_cli_json_and_the_api_key_from_the_environment(lean_url):
    result = runner.invoke(
        app, ["selftest", "--url", lean_url, "--json"], env={"SIEVE_API_KEY": "selftest-key"}
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True and data["wrong"] == 0
    assert data["hostile_tried"] == sum(c.expect is Expect.INVALID for c in CASES)


def test_without_the_key_the_selftest_cannot_run(lean_url):
    result = runner.invoke(app, ["selftest", "--url", lean_url, "--wait-ready", "0"])
    assert result.exit_code == 2
    assert "401" in result.output


def test_a_server_that_accepts_everything_fails():
    def accept_all(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ready":
            return httpx.Response(200, json={"ready": True})
        proofs = json.loads(request.content)["proofs"]
        results = [{"id": p["id"], "verdict": "valid", "reasons": []} for p in proofs]
        return httpx.Response(200, json={"results": results, "checker_versions": {}})

    report = run_selftest("http://fake", transport=httpx.MockTransport(accept_all))
    assert not report.ok
    assert len(report.hostile_accepted) == len(report.hostile) > 0
    assert {r.case.expect for r in report.wrong} == {Expect.INVALID}


def test_a_refusal_for_the_wrong_reason_is_wrong():
    def lean_error_for_all(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ready":
            return httpx.Response(200, json={"ready": True})
        proofs = json.loads(request.content)["proofs"]
        results = [{"id": p["id"], "verdict": "invalid", "reasons": ["lean_error"]} for p in proofs]
        return httpx.Response(200, json={"results": results, "checker_versions": {}})

    report = run_selftest("http://fake", transport=httpx.MockTransport(lean_error_for_all))
    assert not report.ok
    assert report.hostile_accepted == []
    assert any(r.case.name == "hostile_native_decide" for r in report.wrong)


def test_unreachable_server_exits_2():
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["selftest", "--url", url, "--wait-ready", "0"])
    assert result.exit_code == 2
    assert "could not run" in result.output
