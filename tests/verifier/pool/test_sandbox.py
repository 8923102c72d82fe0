"""The sandbox against what a hostile proof tries, with the real ``bwrap``.

Every escape is really attempted from inside the sandboxed process, by the REPL double's probe
markers (``-- double:probe KIND ARG``), and each test fails if one attempt succeeds. They run as
the test's user (root in CI: the service started by root on a lab box) and, through
``sandbox_driver.py`` under ``setpriv``, as the unprivileged uid 65534 (the service started by an
ordinary user, as in the Docker image). The double and the driver are copied under ``/tmp``, so
every test also runs a command that the sandbox's private ``/tmp`` would hide.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from verifier_service.lean import sandbox as sandbox_module
from verifier_service.lean.pool import ReplPool, ReplTimeout
from verifier_service.lean.sandbox import (
    Sandbox,
    SandboxUnavailable,
    UidSandbox,
    Unconfined,
    child_env,
    detect,
)
from verifier_service.settings import VerifierSettings

from .conftest import REPO_ROOT, eventually, gone

ROOT = os.geteuid() == 0
NOBODY = 65534
SECRETS = {
    "HF_TOKEN": "hf_sieve_probe_0123456789",
    "AWS_SECRET_ACCESS_KEY": "aws/sieve/probe/secret",
    "REDIS_PASSWORD": "redis-sieve-probe-password",
}
HERE = Path(__file__).resolve().parent


def _runs_as_nobody(python: str) -> bool:
    probe = [python, "-c", "import ctypes, json, socket"]
    try:
        done = subprocess.run(
            probe, capture_output=True, timeout=60, user=NOBODY, group=NOBODY, extra_groups=[]
        )
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


_AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@dataclass
class Kit:
    """A copy under /tmp of what runs inside: the double, the driver and the sandbox module."""

    root: Path
    python: str
    #: Whether ``python`` runs as uid 65534 (root only: for the ordinary-user runs).
    python_for_nobody: bool

    @property
    def double(self) -> list[str]:
        return [self.python, str(self.root / "repl_double.py"), "--no-transcripts"]

    def need_python_for_nobody(self) -> None:
        """Skip unless ``python`` runs as uid 65534 (always so for an ordinary user, whose
        sandbox runs as that user; as root, only if one was found)."""
        if not self.python_for_nobody:
            pytest.skip(f"no Python that uid {NOBODY} can run (tried {sys.executable}, /usr/bin)")


@dataclass
class Host:
    """Host paths outside /tmp: one mounted read-only into the sandbox, one not, and listeners."""

    root: Path
    visible: Path
    hidden: Path
    unix_socket: Path
    tcp_port: int


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    shutil.copyfile(source, target)
    target.chmod(0o644)


@pytest.fixture(scope="module")
def kit() -> Iterator[Kit]:
    root = Path(tempfile.mkdtemp(prefix="sieve-sandbox-kit-", dir="/tmp"))
    root.chmod(0o755)
    package = REPO_ROOT / "verifier_service"
    _copy(package / "testing" / "repl_double.py", root / "repl_double.py")
    _copy(HERE / "sandbox_driver.py", root / "sandbox_driver.py")
    for name in ("__init__.py", "lean/__init__.py", "lean/sandbox.py"):
        _copy(package / name, root / "pkg" / "verifier_service" / name)
    for path in [root / "pkg", *(root / "pkg").rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    # an interpreter uid 65534 can execute (this one may live under /root, mode 700)
    python, for_nobody = sys.executable, not ROOT
    if ROOT and shutil.which("setpriv"):
        for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
            if os.path.exists(candidate) and _runs_as_nobody(candidate):
                python, for_nobody = candidate, True
                break
    yield Kit(root, python, for_nobody)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    parents = [p for p in ("/var/tmp", "/srv", "/opt") if os.access(p, os.W_OK)]
    if not parents:
        pytest.skip("no writable directory outside /tmp to probe from")
    root = Path(tempfile.mkdtemp(prefix="sieve-sandbox-host-", dir=parents[0]))
    root.chmod(0o755)
    visible, hidden = root / "visible", root / "hidden"
    for directory in (visible, hidden):
        directory.mkdir()
        directory.chmod(0o777)  # writable by anyone: only the sandbox can stop a write
    (visible / "root-only").write_text("root's secret\n")
    (visible / "root-only").chmod(0o600)
    (hidden / "service.conf").write_text("REDIS_PASSWORD=redis-sieve-probe-password\n")
    (hidden / "service.conf").chmod(0o644)
    unix_path = hidden / "redis.sock"
    unix_server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix_server.bind(str(unix_path))
    unix_path.chmod(0o777)
    unix_server.listen(64)
    tcp_server = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        yield Host(root, visible, hidden, unix_path, tcp_server.getsockname()[1])
    finally:
        unix_server.close()
        tcp_server.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def bwrap_works() -> None:
    problem = Sandbox().problem()
    if problem is not None:
        pytest.skip(f"bubblewrap cannot run in this environment: {problem}")


@pytest.fixture
def secret_process() -> Iterator[int]:
    """A process of this user whose environment holds the secrets (the service's, in effect)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **SECRETS}
    child = subprocess.Popen(["sleep", "300"], env=env)
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


def _parse(results: list[str]) -> dict[str, tuple[str, str]]:
    """``probe SPEC: VERDICT: detail`` lines -> {SPEC: (VERDICT, detail)}."""
    parsed = {}
    for line in results:
        assert line.startswith("probe "), line
        spec, verdict, detail = line[len("probe ") :].split(": ", 2)
        parsed[spec] = (verdict, detail)
    return parsed


def _assert_all_blocked(probes: list[str], results: dict[str, tuple[str, str]]) -> None:
    missing = [p for p in probes if p not in results]
    assert not missing, f"probes that never reported: {missing}"
    escaped = {p: results[p][1] for p in probes if results[p][0] != "blocked"}
    assert not escaped, f"escapes: {escaped}"


async def _probe_through_pool(
    confinement: Sandbox | UidSandbox, command: list[str], probes: list[str], cwd: str
) -> dict[str, tuple[str, str]]:
    """The probes, sent as one proof to a worker the pool started (the service's real path)."""
    pool = ReplPool(command, workers=1, sandbox=confinement, cwd=cwd, header_timeout_s=60)
    try:
        await pool.start([""])
        async with pool.lease("", acquire_timeout_s=60) as worker:
            text = "\n".join(f"-- double:probe {probe}" for probe in probes)
            reply = await worker.send({"cmd": text, "env": 0}, 120)
    finally:
        await pool.aclose()
    return _parse([m["data"] for m in reply.get("messages", [])])


def _probe_as_nobody(kit: Kit, spec: dict) -> dict:
    """The driver run as uid 65534 with the secrets in its own environment (its service's)."""
    if not ROOT:
        pytest.skip("needs root to switch to uid 65534 (the ordinary-user runs happen in CI)")
    kit.need_python_for_nobody()
    env = [f"{k}={v}" for k, v in SECRETS.items()]
    argv = [
        *_AS_NOBODY,
        "env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", f"PYTHONPATH={kit.root / 'pkg'}", *env,
        kit.python, str(kit.root / "sandbox_driver.py"), json.dumps(spec),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=kit.root)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _hostile_bwrap_probes(host: Host, parent: int | str) -> list[str]:
    return [
        f"remount {host.visible}",
        f"write {host.visible}/escaped",
        f"write {host.hidden}/escaped",
        "env HF_TOKEN",
        "env AWS_SECRET_ACCESS_KEY",
        "env REDIS_PASSWORD",
        "procenv HF_TOKEN",
        "read /etc/shadow",
        f"read {host.hidden}/service.conf",
        f"read {host.visible}/root-only",
        f"unix {host.unix_socket}",
        f"tcp 127.0.0.1:{host.tcp_port}",
        f"kill {parent}",
        "forks 200",
        "fill /tmp/sieve-fill 64",
        "caps",
        "root",
    ]


#: Limits low enough to see them hold: 64 processes, a 16 MiB /tmp.
BOUNDED = {"max_processes": 64, "tmp_size_mb": 16}


def _no_file_escaped(host: Host) -> None:
    assert not (host.visible / "escaped").exists()
    assert not (host.hidden / "escaped").exists()


# --- every probe can see an escape ----------------------------------------------------------


def test_probes_report_escapes_when_nothing_confines_them(
    kit: Kit, host: Host, secret_process: int
) -> None:
    """Without a sandbox each attempt succeeds, so a 'blocked' below means the sandbox did it."""
    probes = [
        "env HF_TOKEN",
        "procenv HF_TOKEN",
        f"write {host.hidden}/escaped",
        f"read {host.hidden}/service.conf",
        f"unix {host.unix_socket}",
        f"tcp 127.0.0.1:{host.tcp_port}",
        f"kill {os.getpid()}",
        "forks 20",
        "fill /tmp/sieve-fill-control 2",
        *(["caps", "root", "read /etc/shadow"] if ROOT else []),
    ]
    text = "\n".join(f"-- double:probe {p}" for p in probes)
    stdin = json.dumps({"cmd": ""}) + "\n\n" + json.dumps({"cmd": text, "env": 0}) + "\n\n"
    done = subprocess.run(
        kit.double, input=stdin, capture_output=True, text=True, timeout=60,
        env={**os.environ, **SECRETS},
    )  # fmt: skip
    reply = json.loads(done.stdout.split("\n\n")[1])
    results = _parse([m["data"] for m in reply["messages"]])
    try:
        assert {p: results[p][0] for p in probes} == dict.fromkeys(probes, "ESCAPED")
    finally:
        (host.hidden / "escaped").unlink(missing_ok=True)


# --- bwrap ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("bwrap_works")
async def test_bwrap_holds_against_every_probe_as_this_user(
    kit: Kit, host: Host, secret_process: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    kit.need_python_for_nobody()
    sandbox = Sandbox(readonly_paths=(str(host.visible),), **BOUNDED)
    probes = _hostile_bwrap_probes(host, os.getpid())
    results = await _probe_through_pool(sandbox, kit.double, probes, str(kit.root))
    _assert_all_blocked(probes, results)
    _no_file_escaped(host)
    forks = results["forks 200"][1]
    assert int(forks.split()[0]) < 200, forks
    filled = results["fill /tmp/sieve-fill 64"][1]
    assert int(filled.split()[1]) <= BOUNDED["tmp_size_mb"], filled


@pytest.mark.usefixtures("bwrap_works")
def test_bwrap_holds_against_every_probe_as_an_ordinary_user(kit: Kit, host: Host) -> None:
    probes = _hostile_bwrap_probes(host, "{parent}")  # the driver: this run's service
    spec = {
        "mode": "bwrap",
        "options": {"readonly_paths": [str(host.visible)], **BOUNDED},
        "command": kit.double,
        "cwd": str(kit.root),
        "probes": probes,
    }
    outcome = _probe_as_nobody(kit, spec)
    assert outcome["returncode"] == 0, outcome["stderr"]
    _assert_all_blocked(outcome["probes"], _parse(outcome["results"]))
    _no_file_escaped(host)


@pytest.mark.usefixtures("bwrap_works")
def test_capabilities_are_empty_and_uid_is_unprivileged_inside(kit: Kit) -> None:
    code = "print(open('/proc/self/status').read())"
    done = Sandbox().launch([kit.python, "-c", code]).run()
    kit.need_python_for_nobody()
    assert done.returncode == 0, done.stderr
    status = dict(line.split(":", 1) for line in done.stdout.decode().splitlines() if ":" in line)
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[field].strip(), 16) == 0, (field, status[field])
    assert status["NoNewPrivs"].strip() == "1"
    assert all(int(uid) != 0 for uid in status["Uid"].split())


@pytest.mark.usefixtures("bwrap_works")
async def test_pool_workers_run_sandboxed_and_die_with_their_group(kit: Kit) -> None:
    pool = ReplPool(kit.double, workers=1, sandbox=Sandbox(), cwd=str(kit.root))
    kit.need_python_for_nobody()
    try:
        await pool.start([""])
        async with pool.lease("", acquire_timeout_s=60) as worker:
            reply = await worker.send({"cmd": "theorem t : True := trivial", "env": 0}, 30)
            assert reply == {"env": 1}
            family = [worker.pid, *(p.pid for p in psutil.Process(worker.pid).children(True))]
            assert len(family) >= 2  # bwrap, then the REPL inside it
            if ROOT:
                assert {psutil.Process(pid).uids().real for pid in family} == {NOBODY}
            with pytest.raises(ReplTimeout):
                await worker.send({"cmd": "-- double:hang", "env": 0}, 0.5)
        await eventually(lambda: all(gone(pid) for pid in family), "sandboxed processes killed")
    finally:
        await pool.aclose()


# --- paths under /tmp, and commands the sandbox hides ------------------------------------------


@pytest.mark.usefixtures("bwrap_works")
def test_a_venv_under_tmp_runs_inside_the_sandbox(kit: Kit) -> None:
    """The issue's new user: a venv (here: a bare one) under /tmp, hidden by the private /tmp."""
    kit.need_python_for_nobody()
    version = subprocess.run(
        [kit.python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    venv = Path(tempfile.mkdtemp(prefix="sieve-venv-", dir=kit.root))
    venv.chmod(0o755)
    (venv / "bin").mkdir(mode=0o755)
    (venv / "bin" / "python").symlink_to(os.path.realpath(kit.python))
    (venv / "pyvenv.cfg").write_text(f"home = {os.path.dirname(os.path.realpath(kit.python))}\n")
    site = venv / "lib" / f"python{version}" / "site-packages"
    site.mkdir(parents=True)
    for path in (venv / "lib", site.parent, site):
        path.chmod(0o755)
    (site / "sieve_probe_module.py").write_text("print('imported from the venv')\n")
    command = [str(venv / "bin" / "python"), "-c", "import sieve_probe_module"]
    sandbox = Sandbox()
    assert sandbox.problem(command) is None
    done = sandbox.launch(command).run()
    assert done.returncode == 0, done.stderr
    assert b"imported from the venv" in done.stdout
    argv = sandbox.argv(command)
    after_tmp = argv[argv.index("--tmpfs") + 2 : argv.index("--")]
    assert str(venv) in after_tmp, "paths under /tmp are mounted over the private /tmp"


@pytest.mark.usefixtures("bwrap_works")
def test_a_command_the_sandbox_hides_is_refused_naming_the_sandbox(
    kit: Kit, host: Host, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    modules = host.hidden / "modules"
    modules.mkdir(exist_ok=True)
    modules.chmod(0o755)
    (modules / "sieve_hidden_module.py").write_text("")
    (modules / "sieve_hidden_module.py").chmod(0o644)
    monkeypatch.setenv("PYTHONPATH", str(modules))
    command = [kit.python, "-c", "import sieve_hidden_module"]
    with pytest.raises(SandboxUnavailable) as refused:
        detect("bwrap", command=command, pass_env=["PYTHONPATH"])
    message = str(refused.value)
    assert "SIEVE_LEAN_SANDBOX=bwrap" in message
    assert "not inside the bwrap sandbox" in message
    assert "SIEVE_LEAN_READONLY_PATHS" in message
    assert "ModuleNotFoundError" in message or "Permission denied" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert detect("auto", command=command, pass_env=["PYTHONPATH"]) is None
    assert "UNSANDBOXED" in caplog.text and "not inside the bwrap sandbox" in caplog.text
    # listed, it is seen
    found = detect("bwrap", command=command, pass_env=["PYTHONPATH"], readonly_paths=[str(modules)])
    assert isinstance(found, Sandbox)


def test_paths_under_tmp_are_mounted_again_over_the_private_tmp() -> None:
    argv = Sandbox(readonly_paths=("/opt/toolchain", "/tmp/mathlib")).argv(
        ["/tmp/venv/bin/python", "-m", "x"], cwd="/tmp/mathlib"
    )
    after = argv[argv.index("--tmpfs") + 2 : argv.index("--")]
    assert after[:3] == ["--ro-bind-try", "/tmp/mathlib", "/tmp/mathlib"]
    assert "/tmp/venv" in after
    assert "/opt/toolchain" not in after
    before = argv[: argv.index("--tmpfs")]
    assert "/opt/toolchain" in before
    assert "/" not in before[before.index("--hostname") + 2 :], "never the whole filesystem"
    assert "/etc" not in before and "/etc/passwd" in before, "a few /etc files, not all of /etc"
    assert argv[argv.index("--tmpfs") - 2 : argv.index("--tmpfs")] == ["--size", str(1024 << 20)]


# --- uid mode ------------------------------------------------------------------------------


@pytest.fixture
def root_only_dir(host: Host) -> Iterator[Path]:
    path = host.root / "service-state"
    path.mkdir(mode=0o755, exist_ok=True)
    (path / "api-keys").write_text("sk-sieve-probe\n")
    (path / "api-keys").chmod(0o600)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_uid_mode_lean_cannot_reach_the_service(
    kit: Kit, host: Host, root_only_dir: Path, secret_process: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth without namespaces, for real: CI runs as root, Lean as uid 65534."""
    if not ROOT:
        pytest.skip("uid mode needs a service that can switch uids (root in CI)")
    kit.need_python_for_nobody()
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    probes = [
        "env HF_TOKEN",
        "env AWS_SECRET_ACCESS_KEY",
        "env REDIS_PASSWORD",
        "procenv HF_TOKEN",
        f"read {root_only_dir}/api-keys",
        f"read /proc/{os.getpid()}/environ",
        "read /etc/shadow",
        f"write {root_only_dir}/escaped",
        f"kill {os.getpid()}",
        f"kill {secret_process}",
        "forks 200",
        "caps",
        "root",
    ]
    confinement = UidSandbox(uid=NOBODY, gid=NOBODY, max_processes=64)
    assert confinement.problem(kit.double, cwd=str(kit.root)) is None
    results = await _probe_through_pool(confinement, kit.double, probes, str(kit.root))
    _assert_all_blocked(probes, results)
    assert not (root_only_dir / "escaped").exists()


def test_uid_mode_pool_starts_under_uvloop(kit: Kit) -> None:
    """The service runs under uvicorn's uvloop, whose subprocess refuses Popen's ``user``/
    ``group``/``extra_groups`` ("unexpected kwargs"): the pool must switch uid without them.
    Found by running the image (deploy/smoke.sh): no REPL started in uid mode."""
    uvloop = pytest.importorskip("uvloop", reason="uvloop is uvicorn[standard]'s event loop")
    if not ROOT:
        pytest.skip("uid mode needs a service that can switch uids (root in CI)")
    kit.need_python_for_nobody()
    confinement = UidSandbox(uid=NOBODY, gid=NOBODY, max_processes=64)
    probes = ["root", "caps"]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(_probe_through_pool(confinement, kit.double, probes, str(kit.root)))
    _assert_all_blocked(probes, results)
    assert f"uid {NOBODY}" in results["root"][1], results


def test_uid_mode_refuses_what_it_cannot_do(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "must not be 0" in (UidSandbox(uid=0, gid=0).problem() or "")
    monkeypatch.setattr(sandbox_module.os, "getuid", lambda: 4242)
    assert "own uid" in (UidSandbox(uid=4242, gid=4242).problem() or "")
    monkeypatch.undo()
    # a service that cannot switch uids is told how to get that power
    monkeypatch.setattr(sandbox_module, "_can_switch_uid", lambda: False)
    with pytest.raises(SandboxUnavailable, match="CAP_SETUID") as refused:
        detect("uid", uid=NOBODY + 1, gid=NOBODY + 1)
    assert "SIEVE_LEAN_SANDBOX=uid" in str(refused.value)


def test_uid_mode_as_an_ordinary_user_is_refused(kit: Kit) -> None:
    outcome = _probe_as_nobody(
        kit, {"mode": "uid", "options": {"uid": NOBODY + 1, "gid": NOBODY + 1}, "problem": True,
              "command": kit.double}
    )  # fmt: skip
    assert "cannot switch to uid" in outcome["problem"]


# --- modes, messages, settings -------------------------------------------------------------


def test_detect_modes(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert detect("none") is None
    assert "UNSANDBOXED" in caplog.text
    assert "set SIEVE_LEAN_SANDBOX=none" not in caplog.text, "it is already set"
    with pytest.raises(ValueError, match="lean_sandbox"):
        detect("docker")
    monkeypatch.setattr(shutil, "which", lambda name, **kwargs: None)
    with pytest.raises(SandboxUnavailable, match="install bubblewrap"):
        detect("bwrap")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert detect("auto") is None
    assert "UNSANDBOXED" in caplog.text and "SIEVE_LEAN_SANDBOX=none" in caplog.text


def test_namespace_failure_names_the_docker_fix() -> None:
    problem = Sandbox(executable="false").problem()
    assert problem is not None
    assert "cannot create its namespaces" in problem
    for fix in ("seccomp=unconfined", "systempaths=unconfined", "docker/apparmor/sieve-verifier"):
        assert fix in problem


def test_lean_starts_from_an_empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SECRETS, "SIEVE_API_KEYS": "k", "PYTHONPATH": "/x"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ELAN_HOME", "/opt/elan")
    env = child_env({"LEAN_NUM_THREADS": "2"})
    assert not set(env) & {*SECRETS, "SIEVE_API_KEYS", "PYTHONPATH"}
    assert env["ELAN_HOME"] == "/opt/elan" and env["HOME"] == "/tmp"
    assert env["LEAN_NUM_THREADS"] == "2" and "PATH" in env
    assert child_env(pass_names=["PYTHONPATH"])["PYTHONPATH"] == "/x"
    for confinement in (Sandbox(), UidSandbox(), Unconfined()):
        assert not set(confinement.launch(["repl"]).env) & set(SECRETS)


def test_settings_reach_the_sandbox(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    if Sandbox().problem() is not None:
        pytest.skip("bubblewrap cannot run here")
    kit.need_python_for_nobody()
    monkeypatch.setenv("SIEVE_LEAN_TMP_SIZE_MB", "32")
    monkeypatch.setenv("SIEVE_LEAN_MAX_PROCESSES", "100")
    monkeypatch.setenv("SIEVE_LEAN_PASS_ENV", "FOO,BAR")
    settings = VerifierSettings(
        lean_repl=" ".join(kit.double), lean_cwd=str(kit.root), lean_sandbox="bwrap"
    )
    pool = ReplPool.from_settings(settings)
    assert isinstance(pool.sandbox, Sandbox)
    assert pool.sandbox.tmp_size_mb == 32 and pool.sandbox.max_processes == 100
    assert pool.sandbox.pass_env == ("FOO", "BAR")
    assert pool.sandbox.describe()["mode"] == "bwrap"


def test_sandbox_defaults_are_the_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox module keeps its own copy of the limits (it runs on the standard library
    alone); a sandbox built in code must confine Lean as ``SIEVE_LEAN_*``'s defaults do."""
    for name in ("SIEVE_LEAN_MAX_FILE_MB", "SIEVE_LEAN_MAX_PROCESSES", "SIEVE_LEAN_TMP_SIZE_MB"):
        monkeypatch.delenv(name, raising=False)
    settings = VerifierSettings()
    assert settings.lean_max_file_mb == sandbox_module.DEFAULT_MAX_FILE_MB
    assert settings.lean_max_processes == sandbox_module.DEFAULT_MAX_PROCESSES
    assert settings.lean_tmp_size_mb == sandbox_module.DEFAULT_TMP_SIZE_MB
    for confinement in (Sandbox(), UidSandbox()):
        assert confinement.max_file_mb == settings.lean_max_file_mb
        assert confinement.max_processes == settings.lean_max_processes
    assert Sandbox().tmp_size_mb == settings.lean_tmp_size_mb


def test_refusing_to_start_is_a_clean_cli_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """``sieve-verifier serve`` with bwrap asked for and missing: exit 2 with the reason."""
    import logging.config

    from typer.testing import CliRunner

    from verifier_service.cli import app

    # serve() configures logging for uvicorn (verifier_service stops propagating): not here
    monkeypatch.setattr(logging.config, "dictConfig", lambda config: None)
    monkeypatch.setattr(shutil, "which", lambda name, **kwargs: None)
    monkeypatch.setenv("SIEVE_LEAN_SANDBOX", "bwrap")
    monkeypatch.setenv("SIEVE_LEAN_REPL", "lake env repl")
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "install bubblewrap" in result.output
    assert "Traceback" not in result.output


def test_uid_mode_the_way_the_image_runs_it(kit: Kit, host: Host) -> None:
    """The container started as root with SIEVE_LEAN_SANDBOX=uid: the entrypoint runs the
    service as an ordinary user holding only CAP_SETUID/SETGID/KILL (ambient); Lean, started as
    another uid, must hold none of them and reach nothing of the service."""
    if not ROOT or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv, as the image's entrypoint does")
    kit.need_python_for_nobody()
    secret = host.root / "service-only"
    secret.write_text("the service's own file\n")
    os.chown(secret, NOBODY, NOBODY)
    secret.chmod(0o600)
    probes = [
        "env HF_TOKEN",
        "env REDIS_PASSWORD",
        "procenv HF_TOKEN",
        "read /proc/{parent}/environ",
        f"read {secret}",
        "kill {parent}",
        "forks 200",
        "caps",
        "root",
    ]
    spec = {
        "mode": "uid",
        "options": {"uid": 10001, "gid": 10001, "max_processes": 64},
        "command": kit.double,
        "cwd": str(kit.root),
        "probes": probes,
    }
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(kit.root / "pkg"),
        "SERVICE_USER": "nobody",
        "SIEVE_LEAN_SANDBOX": "uid",
        "BUILD_ENV_FILE": "/nonexistent",
        **SECRETS,
    }
    entrypoint = REPO_ROOT / "docker" / "entrypoint.sh"
    driver = [kit.python, str(kit.root / "sandbox_driver.py"), json.dumps(spec)]
    done = subprocess.run(
        ["sh", str(entrypoint), *driver], env=env, capture_output=True, text=True, timeout=180,
        cwd=kit.root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["returncode"] == 0, outcome["stderr"]
    _assert_all_blocked(outcome["probes"], _parse(outcome["results"]))


# --- sieve-verifier selftest --sandbox, against the double ------------------------------------


def _selftest_settings(kit: Kit, mode: str) -> VerifierSettings:
    return VerifierSettings(
        lean_repl=" ".join(kit.double),
        lean_cwd=str(kit.root),
        lean_sandbox=mode,
        lean_prewarm_headers=[],
        lean_tmp_size_mb=64,
    )


@pytest.mark.usefixtures("bwrap_works")
async def test_selftest_sandbox_holds_under_bwrap(kit: Kit) -> None:
    from verifier_service.selftest.sandbox import run_sandbox_selftest

    kit.need_python_for_nobody()
    report = await run_sandbox_selftest(_selftest_settings(kit, "bwrap"))
    assert report.problem is None, report.problem
    assert report.mode == "bwrap"
    outcomes = {r.probe.name: r.outcome for r in report.results}
    assert len(outcomes) == 10 and set(outcomes.values()) == {"blocked"}, outcomes
    assert report.ok


async def test_selftest_sandbox_sees_every_escape_without_a_sandbox(kit: Kit) -> None:
    from verifier_service.selftest.sandbox import run_sandbox_selftest

    report = await run_sandbox_selftest(_selftest_settings(kit, "none"))
    assert report.problem is None, report.problem
    outcomes = {r.probe.name: r.outcome for r in report.results}
    # the environment is cleared in every mode; everything else gets through
    assert outcomes.pop("environment") == "blocked"
    expected = {"capabilities", "root"} if not ROOT else set()
    assert {k for k, v in outcomes.items() if v != "ESCAPED"} == expected, outcomes
    assert not report.ok


async def test_selftest_sandbox_in_uid_mode_flags_the_network_without_failing(kit: Kit) -> None:
    from verifier_service.selftest.sandbox import run_sandbox_selftest

    if not ROOT or not kit.python_for_nobody:
        pytest.skip("uid mode needs root and a Python uid 65534 can run")
    settings = _selftest_settings(kit, "uid").model_copy(
        update={"lean_sandbox_uid": NOBODY, "lean_sandbox_gid": NOBODY}
    )
    report = await run_sandbox_selftest(settings)
    assert report.problem is None, report.problem
    outcomes = {r.probe.name: r.outcome for r in report.results}
    assert outcomes["TCP"] == "ESCAPED" and outcomes["Unix socket"] == "ESCAPED"
    assert {k for k, v in outcomes.items() if v != "blocked"} <= {"TCP", "Unix socket", "/tmp size"}
    assert report.ok, "uid mode promises no network isolation; the table says so instead"


def test_selftest_sandbox_command(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sieve-verifier selftest --sandbox``: a table, exit 0 when it holds, 1 when not."""
    from typer.testing import CliRunner

    from verifier_service.cli import app

    kit.need_python_for_nobody()
    monkeypatch.setenv("SIEVE_LEAN_REPL", " ".join(kit.double))
    monkeypatch.setenv("SIEVE_LEAN_CWD", str(kit.root))
    monkeypatch.setenv("SIEVE_LEAN_PREWARM_HEADERS", "")
    monkeypatch.setenv("SIEVE_LEAN_SANDBOX", "none")
    result = CliRunner().invoke(app, ["selftest", "--sandbox"])
    assert result.exit_code == 1, result.output
    assert "ESCAPED" in result.output and "service environ" in result.output
    if Sandbox().problem() is None:
        monkeypatch.setenv("SIEVE_LEAN_SANDBOX", "bwrap")
        result = CliRunner().invoke(app, ["selftest", "--sandbox"])
        assert result.exit_code == 0, result.output
        assert "sandbox holds" in result.output and "ESCAPED" not in result.output


async def test_selftest_sandbox_against_real_lean() -> None:
    """The ``#eval`` IO probes, with real Lean, where ``SIEVE_LEAN_REPL`` is set."""
    from verifier_service.selftest.sandbox import run_sandbox_selftest

    settings = VerifierSettings()
    if not settings.lean_repl or "repl_double" in settings.lean_repl:
        pytest.skip("needs a real Lean REPL: set SIEVE_LEAN_REPL (and SIEVE_LEAN_CWD)")
    if settings.lean_sandbox in ("auto", "none"):
        pytest.skip("set SIEVE_LEAN_SANDBOX=bwrap or uid to check a sandbox against real Lean")
    report = await run_sandbox_selftest(settings)
    assert report.problem is None, report.problem
    assert {r.outcome for r in report.results} <= {"blocked", "ESCAPED"}, report.results
    assert report.ok, [(r.probe.name, r.outcome, r.detail) for r in report.results]
