"""Run the verifier as a child process on loopback, for as long as a ``with`` block lasts.

The CPU demo starts its own verifier this way, and so do the tests and benchmarks that must talk
to a real ``sieve-verifier serve`` over HTTP. The child gets a clean environment: the caller's
``SIEVE_*`` variables (a Redis URL, API keys) are dropped unless passed again in ``env``, so a
developer's shell cannot change what a test or the demo measures.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import httpx

__all__ = [
    "ServedVerifier",
    "VerifierStartError",
    "free_port",
    "serve_process",
    "serve_subprocess",
]


class VerifierStartError(RuntimeError):
    """The child verifier exited, or did not become ready in time; the message has its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServedVerifier:
    """A running child verifier: its base URL, and its process for a test that must kill it."""

    url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def serve_subprocess(env: Mapping[str, str] | None = None, **options: Any) -> Iterator[str]:
    """Run ``python -m verifier_service serve`` and yield its base URL once ``ready_path`` is 200.

    ``env`` holds ``SIEVE_*`` settings for the child; ``options`` are those of
    :func:`serve_process`.
    """
    with serve_process(env, **options) as served:
        yield served.url


@contextlib.contextmanager
def serve_process(
    env: Mapping[str, str] | None = None,
    *,
    args: Sequence[str] = (),
    host: str = "127.0.0.1",
    port: int | None = None,
    ready_path: str = "/ready",
    startup_timeout_s: float = 60.0,
    cwd: str | os.PathLike[str] | None = None,
    log_path: str | os.PathLike[str] | None = None,
) -> Iterator[ServedVerifier]:
    """:func:`serve_subprocess`, yielding the child's process with its URL, for a caller that
    kills it (terminating it on exit is then a no-op).

    ``args`` are extra ``serve`` flags. The log goes to a file rather than a pipe, so a chatty
    server can never block on a full pipe: a temporary one, or ``log_path`` for a caller that
    reads it afterwards. Its tail is quoted if the server fails to start. The child is
    terminated on exit.
    """
    port = port or free_port(host)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SIEVE_")}
    child_env.update(env or {})
    argv = [sys.executable, "-m", "verifier_service", "serve", "--host", host, "--port", str(port)]
    argv += list(args)
    url = f"http://{host}:{port}"
    with tempfile.TemporaryFile() if log_path is None else open(log_path, "w+b") as log:
        process = subprocess.Popen(argv, env=child_env, cwd=cwd, stdout=log, stderr=log)
        try:
            _wait_until_ready(url + ready_path, process, log, startup_timeout_s)
            yield ServedVerifier(url, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_ready(
    url: str, process: subprocess.Popen[bytes], log: IO[bytes], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise VerifierStartError(
                f"verifier exited with status {process.returncode}:\n{_tail(log)}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise VerifierStartError(f"{url} not ready after {timeout_s:.0f} s:\n{_tail(log)}")
        time.sleep(0.1)


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-limit:]
