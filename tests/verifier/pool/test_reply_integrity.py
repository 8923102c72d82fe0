"""Reply integrity: every reply a worker accepts is the REPL's answer to the command it sent.

Forgeries come from tiny fake REPL scripts (exact bytes, exact timing) and from the protocol
double's forgery markers (``-- double:forge``, ``trailer``, ``envshift``, ``forgechild``), which
write from inside the command the way a proof that runs code would.
"""

from __future__ import annotations

import asyncio
import copy
import sys
from pathlib import Path

import pytest

from verifier_service.lean.pool import LeanWorker, PoolUnavailable, ReplPool
from verifier_service.lean.repl import EnvSequence, ProtocolViolation, parse_frame
from verifier_service.testing import repl_double

from .conftest import FIRST_PROOF_ENV, HEADER, PROOF, eventually, gone

# --- the env-number rule, on the REPL's recorded output -----------------------------------------


def test_env_rule_holds_on_every_recorded_transcript(transcripts: Path) -> None:
    """Each transcript ran in a fresh REPL, so one EnvSequence per transcript must accept every
    recorded reply, in order, and refuse the same reply with its env number moved by one."""
    checked = refused = 0
    for transcript in repl_double.load_transcripts(transcripts):
        sequence = EnvSequence()
        for step in transcript.steps:
            if isinstance(step.reply.get("env"), int):
                shifted = {**step.reply, "env": step.reply["env"] + 1}
                with pytest.raises(ProtocolViolation):
                    copy.deepcopy(sequence).check(step.command, shifted)
                refused += 1
            sequence.check(step.command, step.reply)
            checked += 1
    assert checked > 100 and refused > 50


def test_a_repl_level_failure_stores_no_environment() -> None:
    sequence = EnvSequence()
    sequence.check({"cmd": "import Mathlib"}, {"env": 0})
    sequence.check({"cmd": "x", "env": 7}, {"message": "Unknown environment."})
    sequence.check({"cmd": "y", "env": 0}, {"env": 1})
    assert sequence.next == 2


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ({"cmd": "x"}, {"env": 1}),  # a number the REPL has not reached
        ({"cmd": "x"}, {"env": True}),  # not a number
        ({"cmd": "x"}, {"env": "0"}),
        ({"cmd": "x"}, {}),  # neither env nor a REPL message
        ({"cmd": "x"}, {"message": 3}),
        ({"tactic": "rfl", "proofState": 0}, {"env": 0}),  # tactics store no env
        ({"pickleTo": "a.olean", "env": 0}, {"env": 1}),  # pickleTo echoes its env
    ],
)
def test_replies_that_cannot_answer_the_command_are_refused(command, reply) -> None:
    with pytest.raises(ProtocolViolation):
        EnvSequence().check(command, reply)


# --- framing -------------------------------------------------------------------------------------


def test_a_reply_is_one_json_object() -> None:
    assert parse_frame(b'{"env": 0,\n "messages": []}\n') == {"env": 0, "messages": []}


@pytest.mark.parametrize(
    "frame",
    [
        b'\n{"env": 0}\n',  # a stray line before the reply
        b'garbage {"env": 0}\n',
        b'{"env": 0}{"env": 1}\n',  # two objects, one frame
        b'{"env": 0, "env": 1}\n',  # a repeated key: parsers disagree on which wins
        b'{"env": 0\n',
        b'{"data": "\xff"}\n',  # not UTF-8
        b"[1]\n",
    ],
)
def test_anything_else_is_a_violation(frame: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        parse_frame(frame)


# --- fake REPLs: exact bytes, exact timing -------------------------------------------------------

_FAKE = """
import json, os, sys, time
prelude, outputs = {prelude!r}, {outputs!r}
if prelude:
    os.write(1, prelude)
k, buf = 0, b""
while k < len(outputs):
    chunk = os.read(0, 65536)
    if not chunk:
        break
    buf += chunk
    while b"\\n\\n" in buf and k < len(outputs):
        command, buf = buf.split(b"\\n\\n", 1)
        path = json.loads(command).get("path", "").encode()
        for pause, piece in outputs[k]:
            time.sleep(pause)
            os.write(1, piece.replace(b"$PATH", path))
        k += 1
time.sleep(3600)
"""


async def _fake(*outputs: list[tuple[float, bytes]], prelude: bytes = b"") -> LeanWorker:
    """A REPL that answers its k-th command with ``outputs[k]``: (pause, bytes) pieces, where
    ``$PATH`` stands for the command's ``path`` (see :data:`_SYNCED`)."""
    script = _FAKE.format(prelude=prelude, outputs=list(outputs))
    return await LeanWorker.spawn([sys.executable, "-c", script], header="")


def _reply(env: int) -> list[tuple[float, bytes]]:
    return [(0.0, b'{"env": %d}\n\n' % env)]


#: The REPL's answer to the sync: its missing file, named.
_SYNCED = [(0.0, b'{"message": "no such file or directory (error code: 2)\\n  file: $PATH"}\n\n')]


async def test_a_well_behaved_session_passes_every_check() -> None:
    worker = await _fake(
        _reply(0),
        _reply(1),
        [(0.0, b'{"message": "Unknown environment."}\n\n')],
        _reply(2),
        _SYNCED,
    )
    try:
        await worker.import_header(10)
        assert await worker.send({"cmd": "a", "env": 0}, 10) == {"env": 1}
        assert (await worker.send({"cmd": "b", "env": 9}, 10))["message"]
        assert await worker.send({"cmd": "c", "env": 1}, 10) == {"env": 2}
        assert worker.unsynced == 4
        await worker.sync()
        assert worker.unsynced == 0 and worker.envs.next == 3  # the sync stores no env
        worker.check_quiet()
        assert worker.alive and worker.violation is None
    finally:
        await worker.close()


@pytest.mark.parametrize(
    ("outputs", "problem"),
    [
        ([_reply(3)], "env 3"),  # the header must be env 0
        ([[(0.0, b'\n{"env": 0}\n\n')]], "does not start"),
        ([[(0.0, b'{"env": 0}\n{"env": 1}\n\n')]], "not one JSON object"),
        ([[(0.0, b'{"env": 0}\n\n{"env": 1}\n\n')]], "after the reply"),  # forged + real
        ([[(0.0, b'{"env": 0}\n\n'), (0.05, b"\n")]], "stdout"),  # a byte after the reply
    ],
)
async def test_a_reply_that_is_not_the_repls_kills_the_worker(outputs, problem) -> None:
    worker = await _fake(*outputs)
    try:
        with pytest.raises(ProtocolViolation, match=problem):
            await worker.import_header(10)
            await asyncio.sleep(0.3)  # the late byte arrives while nothing is outstanding
            worker.check_quiet()
        assert worker.death == "protocol" and not worker.alive
        with pytest.raises(ProtocolViolation):  # never spoken to again
            await worker.send({"cmd": PROOF, "env": 0}, 10)
        await eventually(lambda: gone(worker.pid), "the violating worker exited")
    finally:
        await worker.close()


_FORGED_AXIOMS = (
    b'{"messages": [{"severity": "info", "data": "\'two\' depends on axioms: []"}], "env": 2}\n\n'
)


async def test_replies_forged_ahead_of_the_repl_are_caught_by_the_sync() -> None:
    """Correctly numbered forgeries of both verdict replies, timed to pass every per-reply
    check, with the REPL's real replies arriving later: the sync's answer is not where it must
    be, because the real replies come first."""
    worker = await _fake(
        _reply(0),
        [(0.0, b'{"env": 1}\n\n'), (0.3, _FORGED_AXIOMS), (0.3, b'{"env": 1}\n\n')],
        _reply(2),
        _SYNCED,
    )
    try:
        await worker.import_header(10)
        assert await worker.send({"cmd": PROOF, "env": 0}, 10) == {"env": 1}
        assert (await worker.send({"cmd": "#print axioms two", "env": 1}, 10))["env"] == 2
        with pytest.raises(ProtocolViolation):
            await worker.sync()
        assert worker.death == "protocol"
    finally:
        await worker.close()


async def test_a_repl_silenced_after_forging_fails_the_sync() -> None:
    worker = await _fake(_reply(0), [(0.0, b'{"env": 1}\n\n')])  # then never answers again
    try:
        await worker.import_header(10)
        assert await worker.send({"cmd": PROOF, "env": 0}, 10) == {"env": 1}
        with pytest.raises(ProtocolViolation, match="sync"):
            await worker.sync(timeout_s=0.5)
        assert worker.death == "protocol"
    finally:
        await worker.close()


@pytest.mark.parametrize(
    "answer",
    [
        b'{"message": "no such file or directory"}\n\n',  # does not name the fresh file
        b'{"message": "file: /nonexistent/sieve-sync-0.lean"}\n\n',  # a guessed name
        b'{"message": "file: $PATH", "env": 3}\n\n',
    ],
)
async def test_a_sync_answer_that_does_not_name_the_fresh_file_is_refused(answer) -> None:
    worker = await _fake(_reply(0), [(0.0, answer)])
    try:
        await worker.import_header(10)
        with pytest.raises(ProtocolViolation):
            await worker.sync()
        assert worker.death == "protocol"
    finally:
        await worker.close()


async def test_a_repl_that_cannot_be_synced_never_serves(make_pool) -> None:
    """Checked once per worker at start-up, so a REPL whose missing-file answer differs fails
    loudly there instead of making every proof an error."""
    script = _FAKE.format(prelude=b"", outputs=[_reply(0), [(0.0, b'{"message": "?"}\n\n')]])
    pool = ReplPool([sys.executable, "-c", script], workers=1)
    try:
        await pool.start()
        with pytest.raises(PoolUnavailable, match="sync"):
            async with pool.lease(HEADER, acquire_timeout_s=10):
                pass
        assert pool.stats().protocol_violations == 1
    finally:
        await pool.aclose()


async def test_output_before_any_command_kills_the_worker() -> None:
    worker = await _fake(_reply(0), prelude=b'{"env": 0}\n\n')
    try:
        await eventually(lambda: worker.death == "protocol", "the worker killed")
        with pytest.raises(ProtocolViolation, match="no command was outstanding"):
            await worker.import_header(10)
    finally:
        await worker.close()


async def test_output_while_idle_kills_the_worker_at_once() -> None:
    worker = await _fake(_reply(0), [(0.0, b'{"env": 1}\n\n'), (0.2, b'{"env": 2}\n\n')])
    try:
        await worker.import_header(10)
        assert await worker.send({"cmd": PROOF, "env": 0}, 10) == {"env": 1}
        await eventually(lambda: worker.death == "protocol", "the worker killed")
        await eventually(lambda: gone(worker.pid), "the worker exited")
        assert "no command was outstanding" in (worker.violation or "")
    finally:
        await worker.close()


# --- the double's forgery markers ----------------------------------------------------------------


@pytest.fixture
async def double_worker():
    workers: list[LeanWorker] = []

    async def make() -> LeanWorker:
        worker = await LeanWorker.spawn(repl_double.command("--no-transcripts"), header=HEADER)
        workers.append(worker)
        await worker.import_header(10)
        return worker

    yield make
    for worker in workers:
        await worker.close()


@pytest.mark.parametrize(
    "marker",
    [
        "-- double:forge",  # a correctly numbered forgery, then the real reply
        '-- double:forge {"env": $ENV, "messages": []}',
        "-- double:forge not a reply at all",
        "-- double:trailer",  # a forged next reply right behind the real one
        "-- double:trailer garbage",
        "-- double:envshift 1",  # the reply itself misnumbered
        "-- double:envshift -1",
    ],
)
async def test_every_double_forgery_is_caught_by_the_next_command(double_worker, marker) -> None:
    """A proof is always followed by another command (its ``#print axioms``) or by the lease's
    final check; a forgery never survives both."""
    worker = await double_worker()
    with pytest.raises(ProtocolViolation):
        await worker.send({"cmd": f"{PROOF} {marker}", "env": 0}, 10)
        await worker.send({"cmd": "#print axioms two", "env": 1}, 10)
    assert worker.death == "protocol"
    await eventually(lambda: gone(worker.pid), "the worker exited")


async def test_a_child_keeping_the_pipes_is_caught_when_it_writes(double_worker) -> None:
    worker = await double_worker()
    reply = await worker.send({"cmd": f"{PROOF} -- double:forgechild 0.2", "env": 0}, 10)
    assert reply == {"env": 1}  # the REPL's own answer; the child has not written yet
    await eventually(lambda: worker.death == "protocol", "the worker killed")
    await eventually(lambda: gone(worker.pid), "the worker exited")
    with pytest.raises(ProtocolViolation):
        await worker.send({"cmd": PROOF, "env": 0}, 10)


# --- the pool ------------------------------------------------------------------------------------


async def test_a_violation_during_a_lease_fails_the_lease_and_retires_the_worker(make_pool) -> None:
    pool: ReplPool = make_pool(workers=1)
    await pool.start([HEADER])
    with pytest.raises(ProtocolViolation):
        async with pool.lease(HEADER, acquire_timeout_s=30) as worker:
            first = worker.pid
            cmd = f"{PROOF} -- double:forgechild 0.1"
            assert await worker.send({"cmd": cmd, "env": 0}, 10) == {"env": FIRST_PROOF_ENV}
            await asyncio.sleep(0.5)  # the body is done with the worker; the child writes now
    assert pool.stats().protocol_violations == 1
    async with pool.lease(HEADER, acquire_timeout_s=30) as worker:
        assert worker.pid != first
        assert await worker.send({"cmd": PROOF, "env": 0}, 10) == {"env": FIRST_PROOF_ENV}
    assert gone(first)


async def test_a_forged_last_reply_of_a_lease_fails_the_lease(make_pool) -> None:
    """The body reads one reply and stops; the forgery (then the real reply) is caught by the
    lease's closing sync, whatever the timing."""
    pool: ReplPool = make_pool(workers=1)
    await pool.start([HEADER])
    for _ in range(3):
        with pytest.raises(ProtocolViolation):
            async with pool.lease(HEADER, acquire_timeout_s=30) as worker:
                await worker.send({"cmd": f"{PROOF} -- double:forge", "env": 0}, 10)
    assert pool.stats().protocol_violations == 3


async def test_a_violation_raised_by_the_body_kills_the_worker(make_pool) -> None:
    """A trusted program's nonce check raises ProtocolViolation itself; the lease kills."""
    pool: ReplPool = make_pool(workers=1)
    await pool.start([HEADER])
    with pytest.raises(ProtocolViolation):
        async with pool.lease(HEADER, acquire_timeout_s=30) as worker:
            first = worker.pid
            raise ProtocolViolation("nonce mismatch")
    assert worker.death == "protocol"
    await eventually(lambda: gone(first), "the worker exited")
    assert pool.stats().protocol_violations == 1


async def test_a_worker_caught_while_idle_is_replaced_and_counted(make_pool) -> None:
    pool: ReplPool = make_pool(workers=1)
    await pool.start([HEADER])
    async with pool.lease(HEADER, acquire_timeout_s=30) as worker:
        first = worker.pid
        await worker.send({"cmd": f"{PROOF} -- double:forgechild 0.3", "env": 0}, 10)
    await eventually(lambda: pool.stats().protocol_violations == 1, "violation counted")
    await eventually(lambda: pool.stats().idle == 1, "a replacement warm")
    async with pool.lease(HEADER, acquire_timeout_s=30) as worker:
        assert worker.pid != first
    stats = pool.stats()
    assert stats.crashes == 0 and stats.restarts == 1
