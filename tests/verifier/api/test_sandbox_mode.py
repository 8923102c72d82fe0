"""``/ready``, ``/metrics`` and the start-up log say how Lean is confined."""

from __future__ import annotations

import logging

import pytest

from tests.verifier.api.conftest import MakeClient, lean_double_settings
from verifier_service.checkers.lean import LeanChecker
from verifier_service.lean.pool import ReplPool
from verifier_service.lean.sandbox import Sandbox, UidSandbox
from verifier_service.testing.repl_double import command


def _lean(sandbox: Sandbox | UidSandbox | None) -> LeanChecker:
    settings = lean_double_settings(lean_prewarm_headers=[])
    pool = ReplPool(command("--no-transcripts"), workers=1, sandbox=sandbox)
    return LeanChecker(settings, pool=pool)


@pytest.mark.parametrize(
    ("sandbox", "mode"),
    [(None, "none"), (Sandbox(tmp_size_mb=64), "bwrap"), (UidSandbox(uid=4242, gid=4242), "uid")],
)
async def test_ready_and_metrics_report_the_mode(
    make_client: MakeClient, sandbox: Sandbox | UidSandbox | None, mode: str
) -> None:
    client, _ = await make_client(checkers={"lean4": _lean(sandbox)})
    body = (await client.get("/ready")).json()
    assert body["sandbox"]["mode"] == mode
    if mode == "bwrap":
        assert body["sandbox"]["tmp_size_mb"] == 64
    if mode == "uid":
        assert body["sandbox"]["uid"] == 4242 and body["sandbox"]["network"] == "not isolated"
    metrics = (await client.get("/metrics")).text
    assert f'sieve_lean_sandbox_mode{{mode="{mode}"}} 1.0' in metrics
    others = {"bwrap", "uid", "none"} - {mode}
    assert not any(f'sieve_lean_sandbox_mode{{mode="{m}"}}' in metrics for m in others)


async def test_without_lean_the_mode_is_none_and_says_why(make_client: MakeClient) -> None:
    client, _ = await make_client()
    body = (await client.get("/ready")).json()
    assert body["sandbox"] == {"mode": "none", "reason": "lean4 is not enabled"}


async def test_start_up_log_names_checkers_sandbox_and_cache(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="verifier_service"):
        await make_client(checkers={"lean4": _lean(Sandbox())})
    (line,) = [r.getMessage() for r in caplog.records if "starting" in r.getMessage()]
    assert "checkers lean4" in line
    assert "Lean sandbox bwrap" in line
    assert "cache memory" in line
