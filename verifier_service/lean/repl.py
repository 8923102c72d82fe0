"""One Lean REPL process: the wire protocol, its failure modes, and killing it cleanly.

The REPL (leanprover-community/repl) reads one JSON command followed by a blank line and answers
with pretty-printed JSON spread over several lines, followed by a blank line. It has no timeout of
its own and keeps every environment in memory, so the only safe reaction to a slow or sick process
is to kill it together with anything it started (its whole process group) and start another.
:class:`LeanWorker` does exactly that and reports each failure as a distinct exception, so callers
can tell a proof's timeout from a crashed process from a bad header.

**Reply integrity.** The REPL answers from the process in which the proof's code runs, so a proof
that gets code to run (an ``#eval`` the rules missed, a child process it starts) can write to the
REPL's stdout and forge the replies the verdict is read from. :class:`LeanWorker` therefore ties
every reply to the command that asked for it and treats anything else as a
:class:`ProtocolViolation`, which kills the worker:

- *framing*: a reply is exactly one JSON object (no duplicate keys) starting at the first byte
  after the previous reply, ended by the first blank line;
- *order*: bytes on stdout while no command is outstanding, bytes already there before a command
  is written, or bytes beyond a reply's blank line when it is read, cannot be the REPL's (it
  writes one reply per command and then waits for the next), so the worker dies at once;
- *environment numbers*: every reply carries the number :class:`EnvSequence` says the REPL must
  hand out next (derived from the REPL's recorded transcripts and tested against them), so an
  extra reply shifts every later one out of step and is caught at the next command;
- *nonces*: replies to the service's own trusted Lean programs carry a fresh random nonce per
  command, checked by the code that runs them;
- *the sync*: :meth:`LeanWorker.sync`, which the pool sends when a lease ends, asks for a file
  that cannot exist under a fresh random name. The REPL answers ``{"message": "no such file or
  directory ... file: NAME"}`` (the REPL's own test ``no_such_file`` fixes the text) without
  elaborating anything or storing an environment, so it costs one round trip and leaves the env
  numbers alone. The REPL answers in order, so by the time this reply arrives every real reply to
  the lease's commands has been written before it. The lease read exactly one frame per command
  and then this one, so if any frame it took was forged, a real reply is still in the stream
  where the sync's answer should be, and it cannot name the fresh file. Every reply a verdict
  was read from is thereby proven the REPL's, however the forger timed its writes; output that
  arrives later can no longer change that verdict (and still kills the worker).

What these checks cannot do: code running inside the worker shares its pipes, so it can read the
commands from stdin and answer in the REPL's place, predicting env numbers and echoing nonces and
the sync's file name. No check on the same channel can tell such an impostor from the REPL. What
they do stop is every forger that writes without reading: a reply printed or left to a child
process while the REPL also answers, a wrong number, anything that does not frame, writes after
a reply. So the first line of defence cannot be on the pipe: it is that a proof never runs code
(the allowlist refuses every command that does: ``#eval``, ``run_cmd``, attributes,
``initialize``, ...), and that code which slips through is confined (bubblewrap: a PID namespace
and a process limit, so the children a proof leaves holding the pipe are few and die with the
worker; no network, a private ``/tmp``, a file-size limit, no secrets in the environment).
Reply integrity makes what remains fail closed: a detected forgery is ``error``
(``protocol_violation``), never ``valid``, never cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import struct
import termios
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psutil

__all__ = [
    "EnvSequence",
    "HeaderFailed",
    "LeanWorker",
    "PoolUnavailable",
    "ProtocolViolation",
    "ReplCrashed",
    "ReplError",
    "ReplTimeout",
    "UnencodableCommand",
    "encode_command",
    "parse_frame",
]

logger = logging.getLogger(__name__)

#: The most bytes one reply may take; info trees and traces can be megabytes long.
STREAM_LIMIT = 64 * 1024 * 1024
#: Seconds the REPL may take to answer :meth:`LeanWorker.sync` (a missing file: microseconds).
SYNC_TIMEOUT_S = 10.0
#: Where the sync's file is asked for: a directory nobody in the sandbox can create.
SYNC_DIRECTORY = "/nonexistent"
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


#: Command keys that make the REPL store a new environment (when it answers with one).
NEW_ENV_COMMANDS = ("cmd", "path", "unpickleEnvFrom")


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object hook that refuses repeated keys: parsers disagree on which one wins."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_frame(frame: bytes) -> dict[str, Any]:
    """One reply as the REPL frames it: a single JSON object from the first byte, in UTF-8.

    ``frame`` is what came before the blank line (its last newline included). Anything else (a
    leading blank line, text, two objects, a list, a repeated key) is not a reply the REPL writes,
    so it is a :class:`ProtocolViolation`, not a crash.
    """
    if not frame.startswith(b"{"):
        raise ProtocolViolation(f"reply does not start with a JSON object: {frame[:80]!r}")
    try:
        reply = json.loads(frame, object_pairs_hook=_unique_keys)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a duplicate key
        raise ProtocolViolation(f"reply is not one JSON object: {exc}") from None
    if not isinstance(reply, dict):  # pragma: no cover - a frame starting with '{' parses so
        raise ProtocolViolation(f"reply is not a JSON object: {reply!r:.80}")
    return reply


def _is_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class EnvSequence:
    """The environment number the REPL must hand out next, checked against every reply.

    The REPL numbers environments 0, 1, 2, ... in the order it stores them and never reuses a
    number (every recorded transcript under ``tests/fixtures/lean-repl`` follows this, and the tests
    replay them all through it):

    - a ``cmd``, ``path`` or ``unpickleEnvFrom`` command answered with an ``env`` got the next
      number, whatever its messages say (errors included);
    - a REPL-level failure (``{"message": ...}``: unknown environment, bad JSON) stores nothing;
    - ``pickleTo`` echoes the environment it pickled; tactic-mode commands answer with proof
      states and never with an ``env``.

    A forged reply that the REPL's own reply follows shifts every later reply by one, so the
    next command of the same worker sees a number it did not expect.
    """

    def __init__(self, first: int = 0) -> None:
        #: The number the next stored environment gets.
        self.next = first

    def check(self, payload: Mapping[str, Any], reply: Mapping[str, Any]) -> None:
        """Raise :class:`ProtocolViolation` unless ``reply`` can answer ``payload`` now; advance
        the counter when it stored an environment."""
        has_env = "env" in reply
        env = reply.get("env")
        if any(key in payload for key in NEW_ENV_COMMANDS):
            if not has_env:
                if isinstance(reply.get("message"), str):
                    return  # a REPL-level failure: no environment was stored
                raise ProtocolViolation("a command's reply has neither 'env' nor 'message'")
            if not _is_number(env) or env != self.next:
                raise ProtocolViolation(f"reply carries env {env!r}; the REPL gives {self.next}")
            self.next += 1
        elif "pickleTo" in payload and "env" in payload:
            if has_env and env != payload["env"]:
                raise ProtocolViolation(f"pickleTo of env {payload['env']!r} answered env {env!r}")
        elif has_env:
            raise ProtocolViolation(f"a command that stores no environment answered env {env!r}")


class _StdoutReader(asyncio.Protocol):
    """Hands every chunk of the REPL's stdout to its worker as it arrives (no buffer between)."""

    def __init__(self, worker: LeanWorker) -> None:
        self._worker = worker

    def data_received(self, data: bytes) -> None:
        self._worker._on_stdout(data)

    def eof_received(self) -> bool:
        self._worker._on_stdout_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._worker._on_stdout_eof(closed=True)


class LeanWorker:
    """One REPL process that has imported (or is importing) one header.

    Commands go through :meth:`send`, one at a time. Any failure kills the process group and
    leaves the worker dead (``alive`` is False, ``death`` says why); a dead worker is never reused.
    The worker reads the REPL's stdout itself (:class:`_StdoutReader`), for the process's whole
    life, so output that no command asked for is seen the moment it arrives (see the module
    docstring, "Reply integrity").
    """

    def __init__(self, process: asyncio.subprocess.Process, *, header: str, slot: int) -> None:
        self.process = process
        self.header = header
        #: Which CPU slot the pool placed this worker on (replacements reuse it).
        self.slot = slot
        #: Env number of the import environment (the REPL's first command answers 0).
        self.import_env: int | None = None
        #: Env number of the environment of the current lease's header: the import env, or the
        #: env derived from it for the rest of that header (the pool sets it for each lease).
        self.header_env: int | None = None
        #: Rest of a header (``open``, ``set_option``, ...) -> the env derived for it from the
        #: import env, least recently used first (the pool bounds and evicts it).
        self.derived: OrderedDict[str, int] = OrderedDict()
        #: Leases served so far (the pool recycles after ``max_proofs_per_worker``).
        self.proofs = 0
        #: Why the worker died (``"timeout"``, ``"crash"``, ``"protocol"``, ``"recycled"``,
        #: ``"evicted"``, ``"killed"``); None while it lives.
        self.death: str | None = None
        #: The first reply-integrity problem seen (the worker was killed for it); None if none.
        self.violation: str | None = None
        #: The environment numbers this process's replies must carry.
        self.envs = EnvSequence()
        self._out = bytearray()  # stdout received and not yet taken as a reply
        self._out_arrived = asyncio.Event()
        self._out_eof = False
        self._out_fd: int | None = None
        self._out_transport: asyncio.ReadTransport | None = None
        self._awaiting = False  # a command is outstanding: its reply may arrive
        #: Commands answered since the last :meth:`sync` (the pool syncs leases that sent any).
        self.unsynced = 0
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
    ) -> LeanWorker:
        """Start one process in a session of its own, so its whole group can be killed.

        A sandbox's uid switch happens inside ``preexec_fn``
        (:meth:`~.sandbox.Launch.preexec` with ``switch_credentials``): the service's loop is
        uvloop, whose subprocess refuses Popen's ``user``/``group``/``extra_groups``.
        """
        # stdout is a pipe of our own, read by a protocol that sees each chunk as it arrives and
        # whose descriptor can be asked how many bytes wait in it (see _pending_in_pipe).
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=write_fd,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                start_new_session=True,
                preexec_fn=preexec_fn,
                limit=STREAM_LIMIT,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        worker = cls(process, header=header, slot=slot)
        try:
            await worker._attach_stdout(read_fd)
        except BaseException:
            worker.kill("killed")
            raise
        return worker

    async def _attach_stdout(self, fd: int) -> None:
        pipe = os.fdopen(fd, "rb", buffering=0)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.connect_read_pipe(lambda: _StdoutReader(self), pipe)
        except BaseException:
            pipe.close()
            raise
        self._out_fd = fd
        self._out_transport = transport

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.death is None and self.process.returncode is None

    async def import_header(self, timeout_s: float) -> None:
        """Run the header (the imports) as the process's first command; its env becomes
        ``import_env`` and ``header_env``."""
        reply = await self.send({"cmd": self.header}, timeout_s)
        errors = header_errors(reply)
        if errors is not None:
            self.kill("killed")
            raise HeaderFailed(self.header, errors)
        self.import_env = self.header_env = int(reply.get("env", 0))

    async def derive(self, rest: str, timeout_s: float) -> tuple[int | None, list[dict[str, Any]]]:
        """The env of ``rest`` (a header's commands after its imports) run on the import env:
        ``(env, [])``, or ``(None, errors)`` when it does not elaborate. Built once per rest and
        remembered in :attr:`derived` (the caller bounds it); a failing rest stores nothing the
        worker keeps, so the worker stays usable."""
        env = self.derived.get(rest)
        if env is not None:
            self.derived.move_to_end(rest)
            return env, []
        assert self.import_env is not None, "derive() before import_header()"
        reply = await self.send({"cmd": rest, "env": self.import_env}, timeout_s)
        errors = header_errors(reply)
        if errors is not None:
            return None, errors
        number = reply.get("env")
        if not isinstance(number, int) or isinstance(number, bool):  # EnvSequence checked it
            raise ProtocolViolation(f"a derived environment's reply carries env {number!r}")
        self.derived[rest] = number
        return number, []

    async def sync(self, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        """Prove that every reply taken since the last sync was the REPL's own.

        Asks for a file under :data:`SYNC_DIRECTORY` with a fresh random name; only the REPL,
        having answered every earlier command, can name it in its ``message`` (see the module
        docstring, "the sync"). Any other answer, or none within ``timeout_s``, is a
        :class:`ProtocolViolation` and kills the worker.
        """
        path = f"{SYNC_DIRECTORY}/sieve-sync-{secrets.token_hex(16)}.lean"
        try:
            reply = await self.send({"path": path}, timeout_s)
        except ReplTimeout:
            self.death = "protocol"  # dead already: a REPL that cannot answer this is not ours
            self.kill_for_protocol(f"no answer to the sync within {timeout_s:g}s")
            raise ProtocolViolation(self.violation or "sync unanswered") from None
        message = reply.get("message")
        if set(reply) != {"message"} or not isinstance(message, str) or path not in message:
            self.kill_for_protocol(f"the sync was answered by {json.dumps(reply)[:200]}")
            raise ProtocolViolation(self.violation or "sync mismatch")
        self.unsynced = 0

    async def send(self, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one command and return the parsed reply.

        On timeout the process group is killed and :class:`ReplTimeout` raised; on EOF or a broken
        pipe, :class:`ReplCrashed`; on a reply that cannot be the answer to this command (it
        does not frame, comes with other output, or carries the wrong env number),
        :class:`ProtocolViolation`. If the caller is cancelled mid-command the process is killed
        too: its next reply would be the stale one.
        """
        if self.violation is not None:
            raise ProtocolViolation(self.violation)
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
            return await asyncio.wait_for(self._roundtrip(payload, command), timeout_s)
        except asyncio.TimeoutError:
            self.kill("timeout")
            await self._exited()
            raise ReplTimeout(f"no reply within {timeout_s:g}s; worker {self.pid} killed") from None
        except ProtocolViolation as exc:
            self.kill_for_protocol(str(exc))
            await self._exited()
            raise
        except ReplCrashed:
            self.kill("crash")
            await self._exited()
            raise
        except BaseException:
            self.kill("killed")
            raise
        finally:
            self._busy = False

    async def _roundtrip(self, payload: Mapping[str, Any], command: bytes) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        self.check_quiet("before the command was sent")
        self._awaiting = True
        try:
            try:
                stdin.write(command)
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise ReplCrashed(self._diagnose(f"cannot write to REPL: {exc}")) from None
            frame = await self._read_frame()
            self.check_quiet("after the reply")
        finally:
            self._awaiting = False
        reply = parse_frame(frame)
        self.envs.check(payload, reply)
        self.unsynced += 1
        return reply

    async def _read_frame(self) -> bytes:
        """The bytes of the next reply, up to its blank line (which is consumed)."""
        scanned = 0
        while True:
            end = self._out.find(b"\n\n", scanned)
            if end >= 0:
                frame = bytes(self._out[: end + 1])
                del self._out[: end + 2]
                return frame
            scanned = max(0, len(self._out) - 1)
            if len(self._out) > STREAM_LIMIT:
                raise ReplCrashed(self._diagnose(f"reply longer than {STREAM_LIMIT} bytes"))
            if self._out_eof:
                await self._exited()
                code = self.process.returncode
                raise ReplCrashed(self._diagnose(f"REPL exited (code {code}) before replying"))
            self._out_arrived.clear()
            await self._out_arrived.wait()

    def check_quiet(self, when: str = "after the last reply") -> None:
        """Raise :class:`ProtocolViolation` if output no command asked for was seen or is waiting.

        The REPL writes nothing between one reply's blank line and the next command, so bytes
        already received beyond a reply, or still in the pipe, were written by someone else.
        The pool calls this when a lease ends, so output written after the last reply of a proof
        makes that proof's verdict ``error``.
        """
        if self.violation is not None:
            raise ProtocolViolation(self.violation)
        if not self.alive:
            return
        waiting = len(self._out) + self._pending_in_pipe()
        if waiting:
            sample = bytes(self._out[:80])
            raise ProtocolViolation(f"{waiting} bytes on stdout {when}: {sample!r}")

    def _pending_in_pipe(self) -> int:
        """Bytes written to stdout that the event loop has not delivered yet (0 at EOF)."""
        if self._out_fd is None or self._out_eof:
            return 0
        try:
            raw = fcntl.ioctl(self._out_fd, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return int(struct.unpack("i", raw)[0])

    def _on_stdout(self, data: bytes) -> None:
        if self._killed:
            return  # the process is going; what it still writes decides nothing
        if not self._awaiting:
            self.kill_for_protocol(
                f"{len(data)} bytes on stdout while no command was outstanding: {data[:80]!r}"
            )
            return
        self._out += data
        self._out_arrived.set()

    def _on_stdout_eof(self, *, closed: bool = False) -> None:
        self._out_eof = True
        if closed:
            self._out_fd = None  # the transport closed it; the number may be reused
        self._out_arrived.set()

    def kill_for_protocol(self, problem: str) -> None:
        """Record a reply-integrity problem and kill the process: it is never spoken to again."""
        if self.violation is None:
            self.violation = problem
            logger.warning("Lean worker %s: protocol violation: %s", self.pid, problem)
        self.kill("protocol")

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
        if self._out_transport is not None:
            self._out_transport.close()
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
