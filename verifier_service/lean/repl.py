"""One Lean REPL process: the wire protocol, its failure modes, and killing it cleanly.

The REPL (leanprover-community/repl) reads one JSON command followed by a blank line and answers
with pretty-printed JSON spread over several lines, followed by a blank line. It has no timeout of
its own and keeps every environment in memory, so the only safe reaction to a slow or sick process
is to kill it together with anything it started (its whole process group) and start another.
:class:`LeanWorker` does exactly that and reports each failure as a distinct exception, so callers
can tell a proof's timeout from a crashed process from a bad header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psutil

__all__ = [
    "HeaderFailed",
    "LeanWorker",
    "PoolUnavailable",
    "ReplCrashed",
    "ReplError",
    "ReplTimeout",
    "UnencodableCommand",
    "encode_command",
]

logger = logging.getLogger(__name__)

#: Stream limit for one reply line; info trees and traces can be megabytes long.
STREAM_LIMIT = 64 * 1024 * 1024
#: Bytes of the process's stderr kept for diagnostics (the rest is read and dropped).
STDERR_KEEP = 64 * 1024


class ReplError(Exception):
    """Base of everything that goes wrong talking to a REPL process."""


class ReplTimeout(ReplError):
    """The command exceeded its budget; the worker was killed."""


class ReplCrashed(ReplError):
    """The process died, closed its pipe, or wrote something that is not a reply."""


class UnencodableCommand(ReplError, ValueError):
    """The command holds text UTF-8 cannot encode (a lone surrogate): nothing was sent, and the
    worker is unharmed and still usable."""


class HeaderFailed(ReplError):
    """The header itself does not elaborate (e.g. an unknown import); ``messages`` says why."""

    def __init__(self, header: str, messages: list[dict[str, Any]]) -> None:
        errors = [str(m.get("data", "")) for m in messages if m.get("severity") == "error"]
        summary = errors[0].splitlines()[0] if errors else "header failed"
        super().__init__(f"header {header!r} does not elaborate: {summary}")
        self.header = header
        self.messages = messages


class ProtocolViolation(ReplError):
    """A reply that cannot be the answer to the command sent: it does not frame, comes out of
    order, or carries an environment number or nonce other than the one expected. Code running
    inside the worker may be forging replies, so the worker is killed and the proof's verdict is
    ``error`` (``protocol_violation``): never ``valid``, never cached."""


class PoolUnavailable(ReplError):
    """No REPL is configured, the pool is closed, or no worker came free in time."""


def encode_command(payload: Mapping[str, Any]) -> bytes:
    """One command on the wire: compact JSON (raw UTF-8), then a blank line."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n\n"


def header_errors(reply: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The messages that make a header's reply a failure, or None when the header is usable."""
    if "message" in reply and "env" not in reply:  # a REPL-level failure
        return [{"severity": "error", "data": str(reply["message"])}]
    messages = list(reply.get("messages") or [])
    return messages if any(m.get("severity") == "error" for m in messages) else None


class LeanWorker:
    """One REPL process that has imported (or is importing) one header.

    Commands go through :meth:`send`, one at a time. Any failure kills the process group and
    leaves the worker dead (``alive`` is False, ``death`` says why); a dead worker is never reused.
    """

    def __init__(self, process: asyncio.subprocess.Process, *, header: str, slot: int) -> None:
        self.process = process
        self.header = header
        #: Which CPU slot the pool placed this worker on (replacements reuse it).
        self.slot = slot
        #: Env number of the header's environment (the REPL's first command answers 0).
        self.header_env: int | None = None
        #: Leases served so far (the pool recycles after ``max_proofs_per_worker``).
        self.proofs = 0
        #: Why the worker died (``"timeout"``, ``"crash"``, ``"recycled"``, ``"evicted"``,
        #: ``"killed"``); None while it lives.
        self.death: str | None = None
        self._stderr: deque[bytes] = deque()
        self._stderr_size = 0
        self._busy = False
        self._killed = False
        self._drain = asyncio.create_task(self._drain_stderr(), name=f"lean-stderr-{process.pid}")

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        header: str,
        slot: int = 0,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        credentials: Mapping[str, Any] | None = None,
    ) -> LeanWorker:
        """Start one process in a session of its own, so its whole group can be killed.

        ``credentials`` are the ``user``/``group``/``extra_groups`` to switch to between fork and
        exec (the sandbox's unprivileged uid; :meth:`~.sandbox.Launch.popen_kwargs`), only those
        that are set: uvloop's subprocess rejects these keywords even as None. ``preexec_fn`` runs
        after the switch.
        """
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=preexec_fn,
            limit=STREAM_LIMIT,
            **(credentials or {}),
        )
        return cls(process, header=header, slot=slot)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.death is None and self.process.returncode is None

    async def import_header(self, timeout_s: float) -> None:
        """Run the header as the process's first command; its env becomes ``header_env``."""
        reply = await self.send({"cmd": self.header}, timeout_s)
        errors = header_errors(reply)
        if errors is not None:
            self.kill("killed")
            raise HeaderFailed(self.header, errors)
        self.header_env = int(reply.get("env", 0))

    async def send(self, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one command and return the parsed reply.

        On timeout the process group is killed and :class:`ReplTimeout` raised; on EOF, a broken
        pipe or output that is not a reply, :class:`ReplCrashed`. If the caller is cancelled
        mid-command the process is killed too: its next reply would be the stale one.
        """
        if not self.alive:
            raise ReplCrashed(f"worker {self.pid} is dead ({self.death or 'exited'})")
        if self._busy:
            raise RuntimeError("LeanWorker.send called concurrently; lease one worker per task")
        try:
            command = encode_command(payload)
        except UnicodeEncodeError as exc:  # before anything is written: the REPL stays in step
            raise UnencodableCommand(f"command cannot be encoded as UTF-8: {exc.reason}") from None
        self._busy = True
        try:
            return await asyncio.wait_for(self._roundtrip(command), timeout_s)
        except asyncio.TimeoutError:
            self.kill("timeout")
            await self._exited()
            raise ReplTimeout(f"no reply within {timeout_s:g}s; worker {self.pid} killed") from None
        except ReplCrashed:
            self.kill("crash")
            await self._exited()
            raise
        except BaseException:
            self.kill("killed")
            raise
        finally:
            self._busy = False

    async def _roundtrip(self, command: bytes) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(command)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ReplCrashed(self._diagnose(f"cannot write to REPL: {exc}")) from None
        lines: list[bytes] = []
        while True:
            try:
                line = await stdout.readline()
            except (ValueError, asyncio.LimitOverrunError) as exc:
                raise ReplCrashed(self._diagnose(f"reply line too long: {exc}")) from None
            if not line:
                await self._exited()
                code = self.process.returncode
                raise ReplCrashed(self._diagnose(f"REPL exited (code {code}) before replying"))
            if line.strip():
                lines.append(line)
            elif lines:
                break
        try:
            reply = json.loads(b"".join(lines))
        except json.JSONDecodeError as exc:
            raise ReplCrashed(self._diagnose(f"unparsable reply: {exc}")) from None
        if not isinstance(reply, dict):
            raise ReplCrashed(self._diagnose(f"reply is not a JSON object: {reply!r:.200}"))
        return reply

    def kill(self, reason: str = "killed") -> None:
        """Kill the process group (and any descendant that left it) now; reaping goes on behind."""
        if self.death is None:
            self.death = reason
        if self._killed:
            return
        self._killed = True
        descendants: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            descendants = psutil.Process(self.pid).children(recursive=True)
        # The process leads its own group (start_new_session). Signal the group, never the Popen:
        # Popen.kill() polls first and would reap the child behind asyncio's watcher.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for child in descendants:  # ones that called setsid() escaped the group
            with contextlib.suppress(psutil.Error):
                child.kill()

    async def close(self) -> None:
        """Kill the process and wait until it and its stderr reader are gone."""
        self.kill("killed")
        await self._reap()

    async def _exited(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            await self.process.wait()

    async def _reap(self) -> None:
        await self._exited()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._drain), 1.0)
        if not self._drain.done():
            self._drain.cancel()

    def rss_mb(self) -> float:
        """Resident memory of the process and all its descendants, in MiB (0 if it is gone)."""
        try:
            root = psutil.Process(self.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total / (1 << 20)

    def stderr_tail(self, limit: int = 2048) -> str:
        """The last ``limit`` bytes the process wrote to stderr, for error reports."""
        data = b"".join(self._stderr)[-limit:]
        return data.decode("utf-8", errors="replace")

    async def _drain_stderr(self) -> None:
        """Read stderr for the process's life, so a chatty proof never blocks on a full pipe."""
        stream = self.process.stderr
        assert stream is not None
        while chunk := await stream.read(65536):
            self._stderr.append(chunk)
            self._stderr_size += len(chunk)
            while self._stderr_size - len(self._stderr[0]) >= STDERR_KEEP:
                self._stderr_size -= len(self._stderr.popleft())

    def _diagnose(self, problem: str) -> str:
        tail = self.stderr_tail(1024).strip()
        return f"{problem}; stderr: {tail}" if tail else problem

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"dead:{self.death}"
        return (
            f"<LeanWorker pid={self.pid} header={self.header!r:.40} proofs={self.proofs} {state}>"
        )
