"""Confine each REPL process: Lean proofs are untrusted code.

Elaborating Lean runs arbitrary IO (``#eval``, ``run_cmd``, custom elaborators can read files,
start processes and open sockets). A confinement decides how one REPL process is started
(:class:`Launch`: argv, environment, credentials, rlimits). Three exist, chosen by
``SIEVE_LEAN_SANDBOX``:

- ``bwrap`` (:class:`Sandbox`): bubblewrap with a new user namespace (an unprivileged uid/gid
  inside, no capabilities), new PID/IPC/UTS/network namespaces, only the paths Lean needs mounted
  read-only, a private ``/tmp`` of bounded size, death with the service, a new session. When the
  service runs as root it first switches to an unprivileged uid (``SIEVE_LEAN_SANDBOX_UID``,
  default 65534): a user namespace created by root still maps to root outside, which reads every
  root-owned file the mounts show (``/etc/shadow``) and escapes RLIMIT_NPROC.
- ``uid`` (:class:`UidSandbox`): defence in depth where namespaces are not available (some
  managed clusters): Lean runs as a separate unprivileged uid, so it can read neither the
  service's ``/proc/*/environ`` nor its files, without capabilities (``no_new_privs``), with an
  empty environment and rlimits. It does **not** take the network away.
- ``none``: no confinement (the environment is still cleared).

Every mode starts Lean from an empty environment plus an allowlist (:func:`child_env`): the
service's environment holds API keys, the Redis password, cloud credentials.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "ENV_ALLOWLIST",
    "MODES",
    "Launch",
    "Sandbox",
    "SandboxUnavailable",
    "UidSandbox",
    "Unconfined",
    "child_env",
    "describe",
    "detect",
    "sandbox_report",
]

logger = logging.getLogger(__name__)

#: Values of ``SIEVE_LEAN_SANDBOX``.
MODES = ("auto", "bwrap", "uid", "none")

#: Directories any dynamically linked program needs, mounted read-only.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: The few ``/etc`` files dynamic linking, user lookup and locales need (never all of ``/etc``).
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/hosts",
)
#: Variables passed from the service to Lean (everything else, secrets included, is dropped).
ENV_ALLOWLIST = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "ELAN_HOME",
    "ELAN_TOOLCHAIN",
    "LEAN_PATH",
    "LEAN_SRC_PATH",
    "LEAN_SYSROOT",
    "LAKE_HOME",
)
#: The uid/gid Lean runs as when nothing else is configured (``nobody``/``nogroup``).
NOBODY = 65534
#: Default limits: largest file (MiB), processes of Lean's uid, size of the private ``/tmp``
#: (MiB). The same as ``SIEVE_LEAN_MAX_FILE_MB``, ``SIEVE_LEAN_MAX_PROCESSES`` and
#: ``SIEVE_LEAN_TMP_SIZE_MB`` (a test holds them equal); written here rather than read from the
#: settings because this module runs on the standard library alone (the sandbox tests run it
#: as uid 65534 with a system Python).
DEFAULT_MAX_FILE_MB = 1024
DEFAULT_MAX_PROCESSES = 4096
DEFAULT_TMP_SIZE_MB = 1024
#: Seconds the start-up trial of the REPL command may take (``lake env`` reads the manifest).
TRIAL_TIMEOUT_S = 60.0

_CAP_SETGID, _CAP_SETUID, _CAP_KILL = 6, 7, 5
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4

_DOCKER_FIX = (
    "Inside Docker or Kubernetes bubblewrap needs seccomp=unconfined, systempaths=unconfined and "
    "an AppArmor profile that allows mount and userns (docker/apparmor/sieve-verifier; see "
    "docs/sandbox-and-docker.md); on a host, install bubblewrap and allow unprivileged user "
    "namespaces (Ubuntu >= 23.10: the same AppArmor profile, or sysctl "
    "kernel.apparmor_restrict_unprivileged_userns=0). Where namespaces cannot be had, choose "
    "SIEVE_LEAN_SANDBOX=uid (a separate unprivileged uid, no network isolation) explicitly."
)


class SandboxUnavailable(RuntimeError):
    """The confinement ``SIEVE_LEAN_SANDBOX`` asks for cannot run here; the message says why and
    what fixes it. The service refuses to start rather than run proofs unconfined."""


def _under_tmp(path: str) -> bool:
    path = os.path.abspath(path)
    return path == "/tmp" or path.startswith("/tmp/")


def child_env(
    extra: Mapping[str, str] | None = None, *, pass_names: Sequence[str] = ()
) -> dict[str, str]:
    """The environment a REPL starts with: the allowlist (plus ``pass_names``) taken from this
    process, ``HOME=/tmp``, then ``extra``. Nothing else reaches Lean."""
    names = (*ENV_ALLOWLIST, *pass_names)
    env = {name: os.environ[name] for name in names if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env["HOME"] = "/tmp"
    env.update(extra or {})
    return env


def effective_capabilities() -> int:
    """This process's effective capability mask (``CapEff`` of ``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def _can_switch_uid() -> bool:
    caps = effective_capabilities()
    return os.geteuid() == 0 or bool(caps & (1 << _CAP_SETUID) and caps & (1 << _CAP_SETGID))


def _drop_privileges_hook() -> Callable[[], None]:
    """A child-side hook: clear ambient capabilities, set ``no_new_privs`` and die with the
    service (SIGKILL when it goes), before exec.

    A service that holds CAP_SETUID as an ambient capability (the image's ``uid`` mode) would
    otherwise pass it on through exec; ``no_new_privs`` makes setuid binaries and file
    capabilities inert for Lean and everything it starts. The parent-death signal is set here,
    after the uid switch, because changing credentials clears it.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl

    def hook() -> None:
        prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)  # SIGKILL
        if prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")

    return hook


@dataclass
class Launch:
    """How to start one confined process: what :func:`subprocess.Popen` needs, and a hook."""

    argv: list[str]
    env: dict[str, str]
    #: Credentials to switch to between fork and exec (None: keep the service's).
    user: int | None = None
    group: int | None = None
    extra_groups: list[int] | None = None
    #: ``(resource, limit)`` pairs set in the child (soft = hard), after the credential switch.
    rlimits: list[tuple[int, int]] = field(default_factory=list)
    #: Runs in the child after the credential switch, before exec.
    hooks: list[Callable[[], None]] = field(default_factory=list)

    def popen_kwargs(self) -> dict[str, Any]:
        """``user``/``group``/``extra_groups`` for Popen, only those that are set."""
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs["user"] = self.user
        if self.group is not None:
            kwargs["group"] = self.group
        if self.extra_groups is not None:
            kwargs["extra_groups"] = self.extra_groups
        return kwargs

    def preexec(
        self,
        more: Sequence[tuple[int, int]] = (),
        cpus: set[int] | None = None,
        *,
        switch_credentials: bool = False,
    ) -> Callable[[], None] | None:
        """One function for Popen's ``preexec_fn``: rlimits (``more`` too, each capped by the
        current hard limit), CPU affinity, then the hooks.

        ``switch_credentials``: first take ``extra_groups``, ``group`` and ``user`` here, in the
        order Popen does, for callers that cannot pass :meth:`popen_kwargs`. The service's
        asyncio loop is uvloop under uvicorn, and uvloop's subprocess refuses ``user``, ``group``
        and ``extra_groups`` outright ("unexpected kwargs"), which stopped every REPL in ``uid``
        mode and in ``bwrap`` mode started as root.
        """
        limits = []
        for kind, value in [*self.rlimits, *more]:
            hard = resource.getrlimit(kind)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            limits.append((kind, value))
        hooks = list(self.hooks)
        groups = self.extra_groups if switch_credentials else None
        gid = self.group if switch_credentials else None
        uid = self.user if switch_credentials else None
        if not limits and not cpus and not hooks and groups is None and gid is None and uid is None:
            return None
        setrlimit, setaffinity = resource.setrlimit, getattr(os, "sched_setaffinity", None)

        def apply() -> None:
            if groups is not None:
                os.setgroups(groups)
            if gid is not None:
                os.setresgid(gid, gid, gid)
            if uid is not None:
                os.setresuid(uid, uid, uid)
            for kind, value in limits:
                setrlimit(kind, (value, value))
            if cpus and setaffinity is not None:
                with contextlib.suppress(OSError):
                    setaffinity(0, cpus)
            for hook in hooks:
                hook()

        return apply

    def run(
        self, *, cwd: str | None = None, timeout_s: float = TRIAL_TIMEOUT_S, **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run to completion (stdin at EOF) and return the CompletedProcess; for trials/tests."""
        return subprocess.run(
            self.argv,
            env=self.env,
            cwd=cwd,
            stdin=None if "input" in kwargs else kwargs.pop("stdin", subprocess.DEVNULL),
            capture_output=True,
            timeout=timeout_s,
            check=False,
            start_new_session=True,
            preexec_fn=self.preexec(),
            **self.popen_kwargs(),
            **kwargs,
        )


@dataclass(frozen=True)
class _Confinement:
    """What every mode shares: limits, the environment allowlist and the start-up trial."""

    mode: ClassVar[str] = "none"

    #: Largest file a proof may write (RLIMIT_FSIZE), MiB; 0 leaves it alone.
    max_file_mb: int = DEFAULT_MAX_FILE_MB
    #: Processes/threads Lean's uid may have (RLIMIT_NPROC); 0 leaves it alone.
    max_processes: int = DEFAULT_MAX_PROCESSES
    #: Extra variable names passed through to Lean (``SIEVE_LEAN_PASS_ENV``).
    pass_env: tuple[str, ...] = ()

    def rlimits(self) -> list[tuple[int, int]]:
        """``(resource, limit)`` pairs set in the child before it execs."""
        limits = [(resource.RLIMIT_CORE, 0)]
        if self.max_file_mb > 0:
            limits.append((resource.RLIMIT_FSIZE, self.max_file_mb << 20))
        if self.max_processes > 0:
            limits.append((resource.RLIMIT_NPROC, self.max_processes))
        return limits

    def argv(self, command: Sequence[str], *, cwd: str | None = None) -> list[str]:
        return list(command)

    def credentials(self) -> tuple[int | None, int | None]:
        """The uid/gid to switch to between fork and exec; ``(None, None)`` keeps the service's."""
        return None, None

    def hooks(self) -> list[Callable[[], None]]:
        """Child-side functions run after the credential switch, before exec."""
        return []

    def launch(
        self,
        command: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Launch:
        """Everything needed to start ``command`` confined, in ``cwd``, with ``env`` added."""
        uid, gid = self.credentials()
        return Launch(
            self.argv(command, cwd=cwd),
            child_env(env, pass_names=self.pass_env),
            user=uid,
            group=gid,
            # a switched uid keeps none of the service's supplementary groups
            extra_groups=[] if uid is not None else None,
            rlimits=self.rlimits(),
            hooks=self.hooks(),
        )

    def describe(self) -> dict[str, Any]:
        """For ``/ready`` and the start-up log."""
        return {"mode": self.mode}

    def command_problem(self, command: Sequence[str], *, cwd: str | None = None) -> str | None:
        """Why ``command`` cannot start confined (a real trial run, stdin at EOF), or None.

        A command that fails the same way unconfined is not the sandbox's problem: None, and the
        pool reports the failure as it would anyway.
        """
        if not command:
            return None
        inside = self._trial(self.launch(command, cwd=cwd), cwd)
        if inside is None:
            return None
        outside = self._trial(Unconfined(pass_env=self.pass_env).launch(command, cwd=cwd), cwd)
        if outside is not None:
            logger.warning("the Lean REPL command fails even unconfined: %s", outside)
            return None
        return (
            f"the Lean REPL command {' '.join(command)!r} works unconfined but not inside the "
            f"{self.mode} sandbox: {inside}. {self._visibility_hint()}"
        )

    @staticmethod
    def _trial(launch: Launch, cwd: str | None) -> str | None:
        try:
            done = launch.run(cwd=cwd, timeout_s=TRIAL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None  # still running after a minute with stdin closed: it did start
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot start it: {exc}"
        if done.returncode == 0:
            return None
        tail = done.stderr.decode("utf-8", "replace").strip()[-600:]
        return f"exit {done.returncode}" + (f", stderr: {tail}" if tail else "")

    def _visibility_hint(self) -> str:
        return ""


@dataclass(frozen=True)
class Unconfined(_Confinement):
    """``SIEVE_LEAN_SANDBOX=none``: Lean runs as the service, with only the environment cleared."""

    mode: ClassVar[str] = "none"

    def rlimits(self) -> list[tuple[int, int]]:
        return []


@dataclass(frozen=True)
class Sandbox(_Confinement):
    """bubblewrap around each REPL (``SIEVE_LEAN_SANDBOX=bwrap``).

    Visible inside, all read-only: :data:`SYSTEM_PATHS`, :data:`ETC_FILES`, ``readonly_paths``,
    ``cwd``, the installation prefix of the command's executable and every absolute path in the
    command. Nothing else of the host (home directories, ``/var/run`` sockets, ``/etc/shadow``,
    the service's config). A private ``/tmp`` of ``tmp_size_mb``; paths under ``/tmp`` that the
    command needs are mounted again on top of it.
    """

    mode: ClassVar[str] = "bwrap"

    executable: str = "bwrap"
    readonly_paths: tuple[str, ...] = ()
    #: Size of the private ``/tmp``, MiB (``SIEVE_LEAN_TMP_SIZE_MB``).
    tmp_size_mb: int = DEFAULT_TMP_SIZE_MB
    #: Unprivileged uid/gid to switch to first when the service runs as root.
    uid: int | None = None
    gid: int | None = None

    def credentials(self) -> tuple[int | None, int | None]:
        """Unprivileged credentials to take before bwrap when the service runs as root."""
        if os.geteuid() != 0:
            return None, None  # already unprivileged: the user namespace maps to this uid
        uid = NOBODY if self.uid is None else self.uid
        gid = NOBODY if self.gid is None else self.gid
        return uid, gid

    def visible_paths(self, command: Sequence[str], *, cwd: str | None = None) -> list[str]:
        """Host paths mounted (read-only) besides the system paths."""
        paths = [*self.readonly_paths]
        if cwd:
            paths.append(cwd)
        if command:
            executable = shutil.which(command[0]) or command[0]
            for path in (executable, os.path.realpath(executable)):
                if os.path.isabs(path):
                    bin_dir = os.path.dirname(path)
                    # .../bin/python -> the prefix (its lib/, site-packages, toolchain);
                    # anything else -> the directory it lives in
                    prefix = (
                        os.path.dirname(bin_dir) if os.path.basename(bin_dir) == "bin" else bin_dir
                    )
                    if prefix not in ("/", "/usr", "/usr/local"):
                        paths.append(prefix)
        paths += [a for a in command[1:] if os.path.isabs(a) and os.path.exists(a)]
        return [os.path.abspath(p) for p in dict.fromkeys(paths)]

    def argv(self, command: Sequence[str], *, cwd: str | None = None) -> list[str]:
        """``command`` wrapped in ``bwrap``, starting in ``cwd``."""
        uid, gid = self.credentials()
        inner_uid = uid if uid is not None else os.getuid()
        inner_gid = gid if gid is not None else os.getgid()
        mounts: list[str] = []
        for path in (*SYSTEM_PATHS, *ETC_FILES):
            mounts += ["--ro-bind-try", path, path]
        visible = self.visible_paths(command, cwd=cwd)
        # The private /tmp would hide a command, venv, checkout or toolchain living under /tmp:
        # those are mounted after it, on top of it.
        for path in visible:
            if not _under_tmp(path):
                mounts += ["--ro-bind-try", path, path]
        tmp_mounts: list[str] = []
        for path in visible:
            if _under_tmp(path):
                tmp_mounts += ["--ro-bind-try", path, path]
        prefix = [
            self.executable,
            "--unshare-user", "--uid", str(inner_uid), "--gid", str(inner_gid),
            "--cap-drop", "ALL",
            *(["--disable-userns"] if _bwrap_supports(self.executable, "--disable-userns") else []),
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
            "--unshare-cgroup-try",
            "--hostname", "sieve-lean",
            *mounts,
            "--size", str(self.tmp_size_mb << 20), "--tmpfs", "/tmp",
            *tmp_mounts,
            "--dev", "/dev",
            "--proc", "/proc",
            "--die-with-parent", "--new-session",
        ]  # fmt: skip
        if cwd:
            prefix += ["--chdir", cwd]
        return [*prefix, "--", *command]

    def describe(self) -> dict[str, Any]:
        uid, _ = self.credentials()
        return {
            "mode": self.mode,
            "uid": uid if uid is not None else os.getuid(),
            "tmp_size_mb": self.tmp_size_mb,
            "max_processes": self.max_processes,
            "max_file_mb": self.max_file_mb,
        }

    def problem(self, command: Sequence[str] = (), *, cwd: str | None = None) -> str | None:
        """Why this sandbox cannot run ``command`` here, or None.

        First a trial of ``true`` (can bubblewrap make its namespaces at all?), then of the real
        command, so a command that lives somewhere the sandbox does not show (a venv under
        ``/tmp``, a toolchain under ``/root``) is found at start-up, named as the sandbox's
        problem, instead of failing every worker later.
        """
        if shutil.which(self.executable) is None:
            return (
                f"{self.executable!r} is not on PATH: install bubblewrap "
                "(Debian/Ubuntu package `bubblewrap`)"
            )
        true = shutil.which("true", path="/usr/bin:/bin") or "true"
        trial = self._trial(self.launch([true]), None)
        if trial is not None:
            return f"{self.executable} cannot create its namespaces here ({trial}). {_DOCKER_FIX}"
        return self.command_problem(command, cwd=cwd)

    def _visibility_hint(self) -> str:
        uid, _ = self.credentials()
        who = f" and readable by uid {uid} (SIEVE_LEAN_SANDBOX_UID)" if uid is not None else ""
        return (
            "The sandbox shows only the system directories, SIEVE_LEAN_READONLY_PATHS, "
            "SIEVE_LEAN_CWD and the command's own installation; everything the command needs "
            f"must be in one of them{who}."
        )


@dataclass(frozen=True)
class UidSandbox(_Confinement):
    """Lean as a separate unprivileged uid/gid (``SIEVE_LEAN_SANDBOX=uid``), no namespaces.

    Protects the service's environment (``/proc/<pid>/environ`` of another uid is unreadable),
    its private files, its processes (no signals across uids) and the machine's process table
    (RLIMIT_NPROC holds for a non-root uid). Does not protect the network, world-readable files
    or a shared ``/tmp``: say so to whoever chooses it.
    """

    mode: ClassVar[str] = "uid"

    uid: int = NOBODY
    gid: int = NOBODY

    def credentials(self) -> tuple[int | None, int | None]:
        return self.uid, self.gid

    def hooks(self) -> list[Callable[[], None]]:
        return [_drop_privileges_hook()]

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "max_processes": self.max_processes,
            "max_file_mb": self.max_file_mb,
            "network": "not isolated",
        }

    def problem(self, command: Sequence[str] = (), *, cwd: str | None = None) -> str | None:
        if self.uid == 0 or self.gid == 0:
            return "SIEVE_LEAN_SANDBOX_UID/GID must not be 0 (root)"
        if self.uid == os.getuid():
            return (
                f"Lean would run as the service's own uid {self.uid}: set SIEVE_LEAN_SANDBOX_UID "
                "to a separate unprivileged uid"
            )
        if not _can_switch_uid():
            return (
                f"the service (uid {os.getuid()}) cannot switch to uid {self.uid}: start it as "
                "root, or with CAP_SETUID, CAP_SETGID and CAP_KILL (the image's entrypoint does "
                "this when started as root with SIEVE_LEAN_SANDBOX=uid)"
            )
        return self.command_problem(command, cwd=cwd)

    def _visibility_hint(self) -> str:
        return (
            f"Everything the command needs (toolchain, Mathlib, REPL, the working directory) "
            f"must be readable by uid {self.uid}."
        )


_BWRAP_HELP: dict[str, str] = {}


def _bwrap_supports(executable: str, option: str) -> bool:
    if executable not in _BWRAP_HELP:
        try:
            done = subprocess.run([executable, "--help"], capture_output=True, timeout=10)
            _BWRAP_HELP[executable] = done.stdout.decode("utf-8", "replace")
        except (OSError, subprocess.SubprocessError):
            _BWRAP_HELP[executable] = ""
    return option in _BWRAP_HELP[executable]


Confinement = Sandbox | UidSandbox | Unconfined


def detect(
    mode: str,
    *,
    command: Sequence[str] = (),
    cwd: str | None = None,
    readonly_paths: Sequence[str] = (),
    tmp_size_mb: int = DEFAULT_TMP_SIZE_MB,
    uid: int | None = None,
    gid: int | None = None,
    max_file_mb: int = DEFAULT_MAX_FILE_MB,
    max_processes: int = DEFAULT_MAX_PROCESSES,
    pass_env: Sequence[str] = (),
) -> Sandbox | UidSandbox | None:
    """The confinement ``mode`` (``SIEVE_LEAN_SANDBOX``) asks for; None means unconfined.

    ``bwrap`` and ``uid`` raise :class:`SandboxUnavailable` (naming the fix) when they cannot run
    ``command`` here; ``auto`` falls back to unconfined with a loud warning; ``none`` is
    unconfined by choice. Both trials run the real command, so a path the sandbox hides is found
    now rather than by every worker.
    """
    if mode not in MODES:
        raise ValueError(f"lean_sandbox: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "none":
        logger.warning(
            "UNTRUSTED LEAN PROOFS RUN UNSANDBOXED (SIEVE_LEAN_SANDBOX=none): any proof can read "
            "and write what this user can, start processes and open network connections. Use "
            "SIEVE_LEAN_SANDBOX=bwrap (or uid where namespaces are unavailable) to confine them."
        )
        return None
    if mode == "uid":
        confined = UidSandbox(
            uid=NOBODY if uid is None else uid,
            gid=NOBODY if gid is None else gid,
            max_file_mb=max_file_mb,
            max_processes=max_processes,
            pass_env=tuple(pass_env),
        )
        problem = confined.problem(command, cwd=cwd)
        if problem is not None:
            raise SandboxUnavailable(f"SIEVE_LEAN_SANDBOX=uid cannot work here: {problem}")
        logger.warning(
            "SIEVE_LEAN_SANDBOX=uid: Lean runs as uid %d without namespaces; proofs still reach "
            "the network and world-readable files",
            confined.uid,
        )
        return confined
    sandbox = Sandbox(
        readonly_paths=tuple(os.path.abspath(p) for p in readonly_paths),
        tmp_size_mb=tmp_size_mb,
        uid=uid,
        gid=gid,
        max_file_mb=max_file_mb,
        max_processes=max_processes,
        pass_env=tuple(pass_env),
    )
    problem = sandbox.problem(command, cwd=cwd)
    if problem is None:
        return sandbox
    if mode == "bwrap":
        raise SandboxUnavailable(f"SIEVE_LEAN_SANDBOX=bwrap cannot work here: {problem}")
    logger.warning(
        "UNTRUSTED LEAN PROOFS WILL RUN UNSANDBOXED: SIEVE_LEAN_SANDBOX=auto found no working "
        "sandbox: %s Any proof can read and write what this user can, start processes and open "
        "network connections. Fix the sandbox, or set SIEVE_LEAN_SANDBOX=none to accept this "
        "(the Docker image sets bwrap and refuses to start instead).",
        problem,
    )
    return None


def describe(confinement: Sandbox | UidSandbox | None) -> dict[str, Any]:
    """``{"mode": ...}`` and the limits of a confinement; ``{"mode": "none"}`` for None."""
    if confinement is None:
        return {"mode": "none"}
    return confinement.describe()


def sandbox_report(checkers: Mapping[str, Any]) -> dict[str, Any]:
    """``/ready``'s ``sandbox`` and the start-up log: how the lean4 checker's REPLs are confined
    (``{"mode": "bwrap"|"uid"|"none", ...}``)."""
    checker = checkers.get("lean4")
    if checker is None:
        return {"mode": "none", "reason": "lean4 is not enabled"}
    pool = getattr(checker, "pool", None)
    if pool is None:
        return {"mode": "none", "reason": "no Lean REPL configured (SIEVE_LEAN_REPL)"}
    return describe(pool.sandbox)
