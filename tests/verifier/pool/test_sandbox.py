"""Bubblewrap confinement: what a proof's code can and cannot reach."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from verifier_service.lean.pool import ReplPool, ReplTimeout
from verifier_service.lean.sandbox import Sandbox, SandboxUnavailable
from verifier_service.testing import repl_double

from .conftest import HEADER, REPO_ROOT, eventually, gone


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    sandbox = Sandbox()
    problem = sandbox.problem()
    if problem is not None:
        pytest.skip(f"bubblewrap cannot run in this environment: {problem}")
    return sandbox


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A writable directory on the host that is not under /tmp."""
    for parent in ("/var/tmp", str(Path.home())):
        if os.access(parent, os.W_OK) and not parent.startswith("/tmp"):
            path = Path(tempfile.mkdtemp(prefix="sieve-sandbox-", dir=parent))
            yield path
            shutil.rmtree(path, ignore_errors=True)
            return
    pytest.skip("no writable directory outside /tmp to probe")


def _python(code: str, sandbox: Sandbox | None) -> str:
    argv = [sys.executable, "-c", code]
    if sandbox is not None:
        argv = sandbox.argv(argv)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


WRITE = """
try:
    open({path!r}, "w").write("x")
    print("written")
except OSError as exc:
    print("refused", exc.errno)
"""

CONNECT = """
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
    print("connected")
except OSError as exc:
    print("blocked", exc.errno)
"""


def test_cannot_write_outside_tmp(sandbox: Sandbox, outside_tmp: Path) -> None:
    target = outside_tmp / "escaped"
    assert _python(WRITE.format(path=str(target)), sandbox).startswith("refused")
    assert not target.exists()
    assert _python(WRITE.format(path=str(target)), None) == "written"  # the probe itself works


def test_no_network_even_to_localhost(sandbox: Sandbox) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert _python(CONNECT.format(port=port), sandbox).startswith("blocked")
        assert _python(CONNECT.format(port=port), None) == "connected"


def test_tmp_is_private(sandbox: Sandbox, tmp_path: Path) -> None:
    host_file = tmp_path / "host-secret"
    host_file.write_text("secret")
    probe = f"/tmp/sieve-probe-{os.getpid()}"
    code = (
        "import os\n"
        f"print(os.path.exists({str(host_file)!r}))\n"
        f"open({probe!r}, 'w').write('x')\n"
        f"print(os.path.exists({probe!r}))"
    )
    assert _python(code, sandbox).split() == ["False", "True"]
    assert not Path(probe).exists()


def test_listed_paths_only_hide_the_rest(outside_tmp: Path) -> None:
    (outside_tmp / "config").write_text("secret")
    paths = (sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)))
    sandbox = Sandbox(readonly_paths=tuple(dict.fromkeys([*paths, str(REPO_ROOT)])))
    if sandbox.problem() is not None:
        pytest.skip(f"bubblewrap cannot run in this environment: {sandbox.problem()}")
    code = f"import os; print(os.path.exists({str(outside_tmp / 'config')!r}))"
    assert _python(code, sandbox) == "False"


def test_detect_modes(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert Sandbox.detect("none") is None
    assert "UNSANDBOXED" in caplog.text
    with pytest.raises(ValueError, match="lean_sandbox"):
        Sandbox.detect("docker")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="not on PATH"):
        Sandbox.detect("bwrap")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert Sandbox.detect("auto") is None
    assert "UNSANDBOXED" in caplog.text


async def test_pool_runs_workers_inside_the_sandbox(sandbox: Sandbox) -> None:
    # cwd: the double is this checkout's module, which may live under the sandbox's private /tmp
    pool = ReplPool(
        repl_double.command("--no-transcripts"), workers=1, sandbox=sandbox, cwd=str(REPO_ROOT)
    )
    try:
        await pool.start([HEADER])
        async with pool.lease(HEADER, acquire_timeout_s=60) as worker:
            reply = await worker.send({"cmd": "theorem t : True := trivial", "env": 0}, 30)
            assert reply == {"env": 1}
            family = [worker.pid, *(p.pid for p in psutil.Process(worker.pid).children(True))]
            assert len(family) >= 2  # bwrap, then the REPL inside it
            assert worker.rss_mb() > psutil.Process(worker.pid).memory_info().rss / (1 << 20)
            with pytest.raises(ReplTimeout):
                await worker.send({"cmd": "-- double:hang", "env": 0}, 0.5)
        await eventually(lambda: all(gone(pid) for pid in family), "sandboxed processes killed")
    finally:
        await pool.aclose()


@pytest.mark.parametrize("readonly", [(), ("/opt/toolchain", "/tmp/mathlib")])
def test_paths_under_tmp_are_mounted_again_over_the_private_tmp(readonly) -> None:
    argv = Sandbox(readonly_paths=readonly).argv(["repl"], cwd="/tmp/mathlib")
    tmpfs = argv.index("--tmpfs")
    after = argv[tmpfs + 2 : argv.index("--")]
    assert after[after.index("--ro-bind-try") :][:3] == [
        "--ro-bind-try",
        "/tmp/mathlib",
        "/tmp/mathlib",
    ]
    assert "/opt/toolchain" not in after
