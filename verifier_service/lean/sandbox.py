"""Run each REPL inside bubblewrap: Lean proofs are untrusted code.

Elaborating Lean runs arbitrary IO (``#eval``, ``run_cmd``, custom elaborators can read files,
start processes and open sockets). :class:`Sandbox` builds the ``bwrap`` argv prefix that takes
that away: no network, a read-only filesystem, a private ``/tmp``, fresh PID/IPC/UTS namespaces,
death with the service, plus rlimits on file size and process count (applied by the pool in the
child before ``exec``, and inherited by everything in the sandbox).
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Sandbox", "SandboxUnavailable"]

logger = logging.getLogger(__name__)

#: Directories any dynamically linked program needs; mounted read-only when only some paths are.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")

_UNSANDBOXED = (
    "UNTRUSTED LEAN PROOFS WILL RUN UNSANDBOXED: %s. Any proof can read and write files, start "
    "processes and open network connections as this user. Install bubblewrap (Debian package "
    "`bubblewrap`) and allow user namespaces, or set SIEVE_LEAN_SANDBOX=none to accept this."
)


def _under_tmp(path: str) -> bool:
    path = os.path.abspath(path)
    return path == "/tmp" or path.startswith("/tmp/")


class SandboxUnavailable(RuntimeError):
    """``lean_sandbox = "bwrap"`` was asked for but bubblewrap cannot run here."""


@dataclass(frozen=True)
class Sandbox:
    """A bubblewrap confinement for one command.

    With no ``readonly_paths`` the whole filesystem is mounted read-only (``--ro-bind / /``);
    with some, only :data:`SYSTEM_PATHS`, those paths and ``cwd`` are visible (read-only), which
    also hides the rest of the machine (home directories, the service's config) from proofs.
    """

    executable: str = "bwrap"
    readonly_paths: tuple[str, ...] = ()
    #: Largest file a proof may write (RLIMIT_FSIZE), MiB; 0 leaves it alone.
    max_file_mb: int = 1024
    #: Processes/threads the service's user may have (RLIMIT_NPROC); 0 leaves it alone.
    max_processes: int = 4096

    def argv(self, command: Sequence[str], *, cwd: str | None = None) -> list[str]:
        """``command`` wrapped in ``bwrap``, starting in ``cwd``."""
        tmp_mounts: list[str] = []
        if self.readonly_paths:
            mounts: list[str] = []
            extra = [cwd] if cwd else []
            for path in dict.fromkeys([*SYSTEM_PATHS, *self.readonly_paths, *extra]):
                mounts += ["--ro-bind-try", path, path]
        else:
            mounts = ["--ro-bind", "/", "/"]
        # The private /tmp would hide a Mathlib project or toolchain that lives under /tmp:
        # mount those again on top of it.
        visible = [*self.readonly_paths, *([cwd] if cwd else [])]
        for path in dict.fromkeys(p for p in visible if _under_tmp(p)):
            tmp_mounts += ["--ro-bind-try", path, path]
        prefix = [
            self.executable,
            *mounts,
            "--tmpfs", "/tmp",
            *tmp_mounts,
            "--dev", "/dev",
            "--proc", "/proc",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--new-session",
        ]  # fmt: skip
        if cwd:
            prefix += ["--chdir", cwd]
        return [*prefix, "--", *command]

    def rlimits(self) -> list[tuple[int, int]]:
        """``(resource, limit)`` pairs to set in the child before it execs ``bwrap``."""
        limits = [(resource.RLIMIT_CORE, 0)]
        if self.max_file_mb > 0:
            limits.append((resource.RLIMIT_FSIZE, self.max_file_mb << 20))
        if self.max_processes > 0:
            limits.append((resource.RLIMIT_NPROC, self.max_processes))
        return limits

    def problem(self) -> str | None:
        """Why this sandbox cannot run here (a trial run of ``true`` inside it), or None."""
        if shutil.which(self.executable) is None:
            return f"{self.executable!r} is not on PATH"
        try:
            trial = subprocess.run(
                self.argv(["true"]), capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{self.executable} does not start: {exc}"
        if trial.returncode != 0:
            reason = trial.stderr.decode("utf-8", "replace").strip() or f"exit {trial.returncode}"
            return f"{self.executable} cannot create its namespaces here: {reason}"
        return None

    @classmethod
    def detect(cls, mode: str, *, readonly_paths: Sequence[str] = ()) -> Sandbox | None:
        """The sandbox ``mode`` (settings ``lean_sandbox``) asks for, or None to run unconfined.

        ``auto``: bubblewrap when it works here, else None with a loud warning. ``bwrap``: raise
        :class:`SandboxUnavailable` when it does not work. ``none``: None, with a warning.
        """
        if mode == "none":
            logger.warning(_UNSANDBOXED, "SIEVE_LEAN_SANDBOX=none")
            return None
        if mode not in ("auto", "bwrap"):
            raise ValueError(f"lean_sandbox: expected 'auto', 'bwrap' or 'none', got {mode!r}")
        paths = tuple(os.path.abspath(p) for p in readonly_paths)
        sandbox = cls(readonly_paths=paths)
        problem = sandbox.problem()
        if problem is None:
            return sandbox
        if mode == "bwrap":
            raise SandboxUnavailable(f"lean_sandbox=bwrap but {problem}")
        logger.warning(_UNSANDBOXED, problem)
        return None
