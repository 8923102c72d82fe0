"""``sieve-verifier selftest --sandbox``: does the sandbox hold on this deployment, for real?

Run it where the service runs (``docker compose exec verifier sieve-verifier selftest --sandbox``).
It builds the Lean pool exactly as the service does (same ``SIEVE_*`` settings, same sandbox
detection), starts one REPL and sends it code that tries what a hostile proof would: read a secret
from the environment or from another process's ``/proc/*/environ``, write outside ``/tmp``, open a
TCP connection and a Unix socket, signal the service, keep capabilities, run without limits. The
code goes straight to the REPL through the pool, never through the public API and its soundness
rules (which would refuse ``#eval`` before Lean ran it). Each attempt is ``#eval`` IO code for real
Lean followed by the REPL double's ``-- double:probe`` marker in a comment, which makes the double
(CI, the image built without Lean) try the same from inside the sandboxed process.

Each attempt reports ``blocked`` or ``ESCAPED``. The command prints a table and exits 0 only when
every attempt the chosen mode must stop was stopped; ``uid`` mode does not isolate the network
or the filesystem's shared places, and its table says so instead of failing on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from verifier_service.lean.pool import ReplPool
from verifier_service.lean.sandbox import SandboxUnavailable, describe
from verifier_service.settings import VerifierSettings

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Probe",
    "ProbeResult",
    "SandboxReport",
    "probe_code",
    "probes",
    "run_sandbox_selftest",
]

#: Modes that must stop every probe (``uid`` stops those whose ``modes`` include it).
ALL = frozenset({"bwrap", "uid"})
BWRAP = frozenset({"bwrap"})


@dataclass(frozen=True)
class Probe:
    """One escape attempt: ``double`` is the REPL double's probe, ``lean`` the Lean code."""

    name: str
    what: str
    double: str
    lean: str
    #: Sandbox modes that must block it.
    modes: frozenset[str] = ALL


@dataclass
class ProbeResult:
    probe: Probe
    #: ``blocked``, ``ESCAPED`` or ``no answer``.
    outcome: str
    detail: str

    def failed(self, mode: str) -> bool:
        """An escape the mode promises to stop, or no answer at all."""
        if self.outcome == "no answer":
            return True
        return self.outcome == "ESCAPED" and (mode not in ALL or mode in self.probe.modes)


@dataclass
class SandboxReport:
    mode: str
    sandbox: dict
    results: list[ProbeResult] = field(default_factory=list)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and not any(r.failed(self.mode) for r in self.results)


def _lean_result(spec: str, escaped: str, detail: str) -> str:
    """Lean that prints ``probe SPEC: ESCAPED|blocked: DETAIL`` (both Lean ``String`` terms)."""
    return (
        f'IO.println ("probe {spec}: " ++ (if {escaped} then "ESCAPED" else "blocked") ++ ": " '
        f"++ {detail})"
    )


def _lean_try(spec: str, action: str, detail: str) -> str:
    """``#eval`` that runs ``action`` (an ``IO Unit``): success is an escape."""
    return (
        f"#eval show IO Unit from do\n"
        f"  try\n"
        f"    {action}\n"
        f'    IO.println "probe {spec}: ESCAPED: {detail}"\n'
        f"  catch e =>\n"
        f'    IO.println s!"probe {spec}: blocked: {{e}}"\n'
    )


def _lean_shell(spec: str, script: str) -> str:
    """``#eval`` that runs ``bash -c script``: exit 0 is an escape."""
    return (
        "#eval show IO Unit from do\n"
        "  try\n"
        '    let out ← IO.Process.output { cmd := "bash", args := #["-c", '
        + _lean_string(script)
        + "] }\n"
        + "    "
        + _lean_result(spec, "out.exitCode == 0", "(out.stdout ++ out.stderr).trim")
        + "\n"
        f"  catch e =>\n"
        f'    IO.println s!"probe {spec}: blocked: {{e}}"\n'
    )


def _lean_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def probes(*, canary: str, outside: Path, unix_socket: Path, tcp_port: int, pid: int,
           tmp_size_mb: int) -> list[Probe]:  # fmt: skip
    """The attempts, aimed at what this run set up (a canary process, a listener, a directory)."""
    target = outside / "escaped"
    env_lean = (
        "#eval show IO Unit from do\n"
        f'  let v ← IO.getEnv "{canary}"\n'
        "  " + _lean_result(f"env {canary}", "v.isSome", '(if v.isSome then "set" else "unset")')
    ) + "\n"
    procenv_lean = (
        "#eval show IO Unit from do\n"
        '  let entries ← System.FilePath.readDir "/proc"\n'
        "  let mut found : Array String := #[]\n"
        "  for e in entries do\n"
        "    if e.fileName.all Char.isDigit then\n"
        "      try\n"
        '        let text ← IO.FS.readFile (e.path / "environ")\n'
        f'        if (text.splitOn "{canary}=").length > 1 then found := found.push e.fileName\n'
        "      catch _ => pure ()\n"
        "  " + _lean_result(f"procenv {canary}", "!found.isEmpty", 's!"in pids {found}"')
    ) + "\n"
    caps_lean = (
        "#eval show IO Unit from do\n"
        '  let status ← IO.FS.readFile "/proc/self/status"\n'
        '  let line := (status.splitOn "\\n").filter (·.startsWith "CapEff:")\n'
        '  let caps := ((line.headD "CapEff:\\t0").drop 7).trim\n'
        "  " + _lean_result("caps", "caps.any (· != '0')", 's!"CapEff {caps}"')
    ) + "\n"
    return [
        Probe(
            "environment",
            "read a secret from Lean's own environment",
            f"env {canary}",
            env_lean,
        ),
        Probe(
            "service environ",
            "read the secret from another process's /proc/*/environ",
            f"procenv {canary}",
            procenv_lean,
        ),
        Probe(
            "write outside /tmp",
            f"create {target} (a directory of the service)",
            f"write {target}",
            _lean_try(f"write {target}", f'IO.FS.writeFile "{target}" "escaped"', "written"),
        ),
        Probe(
            "TCP",
            f"connect to 127.0.0.1:{tcp_port} (a listener this selftest opened)",
            f"tcp 127.0.0.1:{tcp_port}",
            _lean_shell(f"tcp 127.0.0.1:{tcp_port}", f"exec 3<>/dev/tcp/127.0.0.1/{tcp_port}"),
            BWRAP,
        ),
        Probe(
            "Unix socket",
            f"connect to {unix_socket} (a socket this selftest opened)",
            f"unix {unix_socket}",
            _lean_shell(
                f"unix {unix_socket}",
                "python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); "
                f"s.connect(sys.argv[1])' {shlex.quote(str(unix_socket))}",
            ),
            BWRAP,
        ),
        Probe(
            "signal the service",
            f"kill -0 the service (pid {pid})",
            f"kill {pid}",
            _lean_shell(f"kill {pid}", f"kill -0 {pid}"),
        ),
        Probe("capabilities", "hold any capability", "caps", caps_lean),
        Probe(
            "root",
            "run as uid 0",
            "root",
            _lean_shell("root", 'test "$(id -u)" = 0; echo "uid $(id -u)"'),
        ),
        Probe(
            "limits",
            "run without a process or file-size limit",
            "rlimits",
            _lean_shell(
                "rlimits",
                'u=$(ulimit -u); f=$(ulimit -f); echo "processes $u, file size $f"; '
                '[ "$u" = unlimited ] || [ "$f" = unlimited ]',
            ),
        ),
        Probe(
            "/tmp size",
            f"find a /tmp larger than {tmp_size_mb} MiB",
            f"tmpsize {tmp_size_mb}",
            _lean_shell(
                f"tmpsize {tmp_size_mb}",
                "m=$(( $(df -Pk /tmp | tail -n 1 | tr -s ' ' | cut -d ' ' -f 2) / 1024 )); "
                f'echo "/tmp holds $m MiB"; [ "$m" -gt {tmp_size_mb + 1} ]',
            ),
            BWRAP,
        ),
    ]


@contextlib.contextmanager
def _targets() -> Iterator[tuple[str, Path, Path, int]]:
    """A canary process holding a secret, a directory outside /tmp, a Unix socket, a TCP port."""
    canary = "SIEVE_SELFTEST_CANARY_" + secrets.token_hex(4).upper()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), canary: secrets.token_hex(16)}
    holder = subprocess.Popen(["sleep", "600"], env=env)
    parents = [p for p in ("/var/tmp", str(Path.home())) if os.access(p, os.W_OK)]
    outside = Path(tempfile.mkdtemp(prefix="sieve-selftest-", dir=parents[0] if parents else None))
    outside.chmod(0o755)  # the service's own directory: Lean must not write there
    unix_path = outside / "service.sock"
    unix_server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tcp_server = socket.create_server(("127.0.0.1", 0))
    try:
        unix_server.bind(str(unix_path))
        unix_path.chmod(0o777)
        unix_server.listen(8)
        yield canary, outside, unix_path, tcp_server.getsockname()[1]
    finally:
        holder.kill()
        holder.wait()
        unix_server.close()
        tcp_server.close()
        shutil.rmtree(outside, ignore_errors=True)


def probe_code(probe: Probe) -> str:
    """What the REPL is sent: the Lean ``#eval``, then the double's marker as a Lean comment.

    Real Lean runs the ``#eval`` and ignores the comment; the REPL double runs the marker. One
    text for both, because the command does not say which answers: the image built without Lean
    puts the double behind the real REPL's command and paths.
    """
    return f"{probe.lean}\n-- double:probe {probe.double}\n"


async def run_sandbox_selftest(
    settings: VerifierSettings, *, timeout_s: float = 120.0
) -> SandboxReport:
    """Start one REPL as the service would and try every probe in it."""
    if not settings.lean_repl:
        return SandboxReport("none", {"mode": "none"}, problem="SIEVE_LEAN_REPL is not set")
    try:
        pool = ReplPool.from_settings(settings.model_copy(update={"lean_workers": 1}))
    except SandboxUnavailable as exc:
        return SandboxReport(settings.lean_sandbox, {}, problem=str(exc))
    sandbox = describe(pool.sandbox)
    report = SandboxReport(sandbox["mode"], sandbox)
    with _targets() as (canary, outside, unix_socket, port):
        attempts = probes(
            canary=canary,
            outside=outside,
            unix_socket=unix_socket,
            tcp_port=port,
            pid=os.getpid(),
            tmp_size_mb=settings.lean_tmp_size_mb,
        )
        try:
            await pool.start([""])
            async with pool.lease("", acquire_timeout_s=timeout_s) as worker:
                for probe in attempts:
                    code = probe_code(probe)
                    reply = await worker.send({"cmd": code, "env": 0}, timeout_s)
                    report.results.append(_result(probe, reply))
        except Exception as exc:  # the REPL did not start or answer: say so, fail
            report.problem = f"{type(exc).__name__}: {exc}"
        finally:
            await pool.aclose()
        if (outside / "escaped").exists():  # the host's view, whatever the probe said
            for result in report.results:
                if result.probe.name == "write outside /tmp":
                    result.outcome, result.detail = "ESCAPED", "the file exists on the host"
    return report


def _result(probe: Probe, reply: dict) -> ProbeResult:
    lines = [
        line
        for message in reply.get("messages") or []
        for line in str(message.get("data", "")).splitlines()
        if line.startswith("probe ")
    ]
    for line in lines:
        _spec, _, rest = line[len("probe ") :].partition(": ")
        outcome, _, detail = rest.partition(": ")
        if outcome in ("ESCAPED", "blocked"):
            return ProbeResult(probe, outcome, detail.strip())
    errors = [m.get("data", "") for m in reply.get("messages") or []]
    return ProbeResult(probe, "no answer", "; ".join(map(str, errors))[:300] or str(reply)[:300])


def print_report(report: SandboxReport, console: Console) -> None:
    """The table an operator reads."""
    from rich.markup import escape
    from rich.table import Table

    details = ", ".join(f"{k}={v}" for k, v in report.sandbox.items() if k != "mode")
    console.print(f"Lean sandbox: [bold]{report.mode}[/]" + (f" ({details})" if details else ""))
    if report.problem is not None:
        console.print(f"[bold red]cannot run the sandbox selftest:[/] {escape(report.problem)}")
    table = Table("attempt", "what it tries", "result", "detail", header_style="bold")
    for result in report.results:
        if result.outcome == "blocked":
            shown = "[green]blocked[/]"
        elif result.failed(report.mode):
            shown = "[bold red]ESCAPED[/]" if result.outcome == "ESCAPED" else "[red]no answer[/]"
        else:
            shown = f"[yellow]reachable[/] (not isolated in {report.mode} mode)"
        table.add_row(
            escape(result.probe.name), escape(result.probe.what), shown, escape(result.detail)
        )
    if report.results:
        console.print(table)
    escaped = sum(r.failed(report.mode) for r in report.results)
    if report.ok:
        console.print(f"[bold green]sandbox holds[/]: {len(report.results)} attempts, 0 escaped")
    elif report.mode == "none":
        console.print("[bold red]no sandbox[/]: SIEVE_LEAN_SANDBOX=none or auto found none")
    else:
        console.print(f"[bold red]{escaped} of {len(report.results)} attempts escaped[/]")


def main_sandbox(settings: VerifierSettings, console: Console) -> int:
    """Run, print, and return the exit status (0: holds)."""
    report = asyncio.run(run_sandbox_selftest(settings))
    print_report(report, console)
    return 0 if report.ok else 1
