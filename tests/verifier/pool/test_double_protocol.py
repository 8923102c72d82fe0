"""The double speaks the REPL's framing and replays the recorded transcripts exactly."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from pathlib import Path

from verifier_service.lean.pool import LeanWorker
from verifier_service.lean.repl import encode_command
from verifier_service.testing import repl_double


def _pairs(transcripts: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for source in sorted(transcripts.rglob("*.in")):
        expected = source.with_name(source.name[: -len(".in")] + ".expected.out")
        if expected.is_file():
            pairs.append((source, expected))
    return pairs


def _blocks(path: Path) -> list[str]:
    return list(repl_double.split_blocks(path.read_text("utf-8").splitlines()))


def test_layout_matches_lean_for_every_recorded_reply(transcripts: Path) -> None:
    blocks = [b for _, expected in _pairs(transcripts) for b in _blocks(expected)]
    assert len(blocks) > 100
    for block in blocks:
        assert repl_double.render(json.loads(block)) == block


def test_replay_is_byte_identical_for_every_transcript(transcripts: Path) -> None:
    library = repl_double.load_transcripts(transcripts)
    for source, expected in _pairs(transcripts):
        out = io.BytesIO()
        repl_double.serve(repl_double.ReplDouble(library), io.StringIO(source.read_text()), out)
        assert out.getvalue() == expected.read_bytes(), source.name


def test_subprocess_output_is_byte_identical(transcripts: Path) -> None:
    source = transcripts / "core" / "readme.in"
    done = subprocess.run(
        repl_double.command("--transcripts", str(transcripts)),
        input=source.read_bytes(),
        capture_output=True,
        timeout=30,
        check=True,
    )
    expected = source.with_name("readme.expected.out").read_bytes()
    assert done.stdout == expected
    assert "⊢".encode() in done.stdout and b"\n\n" in done.stdout.rstrip(b"\n")


async def test_every_transcript_replays_through_a_real_worker(transcripts: Path) -> None:
    """Each transcript in a fresh process, as the REPL's own test-suite runs them."""
    command = repl_double.command("--transcripts", str(transcripts))
    limit = asyncio.Semaphore(4)

    async def replay(source: Path, expected: Path) -> int:
        commands = [json.loads(b, strict=False) for b in _blocks(source)]
        replies = [json.loads(b) for b in _blocks(expected)]
        async with limit:
            worker = await LeanWorker.spawn(command, header="")
            try:
                for cmd, want in zip(commands, replies):  # noqa: B905 - .in may outrun .out
                    assert await worker.send(cmd, timeout_s=30) == want, (source.name, cmd)
            finally:
                await worker.close()
        return len(replies)

    counts = await asyncio.gather(*(replay(s, e) for s, e in _pairs(transcripts)))
    assert len(counts) >= 40 and sum(counts) > 100


async def test_worker_reads_multiline_unicode_replies() -> None:
    worker = await LeanWorker.spawn(repl_double.command("--no-transcripts"), header="")
    try:
        assert await worker.send({"cmd": ""}, timeout_s=10) == {"env": 0}
        reply = await worker.send({"cmd": "theorem t (x : ℕ) : x ≤ x := by sorry", "env": 0}, 10)
    finally:
        await worker.close()
    assert reply["env"] == 1
    assert reply["sorries"][0]["goal"] == "⊢ x ≤ x"
    assert reply["messages"][0]["data"] == "declaration uses `sorry`"


def test_commands_are_one_json_object_and_a_blank_line() -> None:
    wire = encode_command({"cmd": "example : 1 ≠ 2 := by decide\n\nexample : True := trivial"})
    assert wire.endswith(b"}\n\n") and wire.count(b"\n") == 2
    assert "≠".encode() in wire
    assert json.loads(wire)["cmd"].count("\n") == 2


def _talk(*commands: str) -> list[dict]:
    double = repl_double.ReplDouble([])
    out = io.BytesIO()
    repl_double.serve(double, io.StringIO("\n\n".join(commands)), out)
    return [json.loads(b) for b in repl_double.split_blocks(out.getvalue().decode().splitlines())]


def test_synthetic_rules() -> None:
    header, sorry, axioms, native, noax, error, exact, unknown = _talk(
        json.dumps({"cmd": "import Mathlib"}),
        json.dumps({"cmd": "theorem a : 0 < 1 := by\n  sorry", "env": 0}),
        json.dumps({"cmd": "#print axioms a", "env": 1}),
        json.dumps({"cmd": "theorem b : 2 = 2 := by native_decide\n#print axioms b", "env": 0}),
        json.dumps({"cmd": "theorem c : True := trivial -- double:noaxioms\n#print axioms c"}),
        json.dumps(
            {"cmd": "theorem d : False := by simp -- double:error unsolved goals", "env": 0}
        ),
        json.dumps({"cmd": "theorem e : 1 = 1 := by\n  exact?", "env": 0}),
        json.dumps({"cmd": "#check a", "env": 42}),
    )
    assert header == {"env": 0}
    assert sorry["sorries"][0]["pos"] == {"line": 2, "column": 2}
    assert sorry["messages"][0]["pos"] == {"line": 1, "column": 8}
    assert axioms["messages"][0]["data"] == "'a' depends on axioms: [propext, sorryAx]"
    assert "Lean.ofReduceBool" in native["messages"][0]["data"]
    assert noax["messages"][0]["data"] == "'c' does not depend on any axioms"
    assert error["messages"][0]["severity"] == "error"
    assert exact["messages"][0]["severity"] == "info"  # the suggestion, as when Lean finds one
    assert exact["messages"][0]["data"].startswith("Try this: exact")
    assert unknown == {"message": "Unknown environment."}


def test_declared_axioms_are_listed_and_unknown_imports_fail() -> None:
    cheat, bad_header = _talk(
        json.dumps(
            {"cmd": "axiom cheat : False\ntheorem f : 1 = 2 := cheat.elim\n#print axioms f"}
        ),
        json.dumps({"cmd": "import Mathlib\nimport Nope"}),
    )
    assert "cheat" in cheat["messages"][0]["data"]
    assert bad_header["messages"][0]["severity"] == "error"
    assert "unknown module prefix 'Nope'" in bad_header["messages"][0]["data"]


def test_crash_after_cuts_the_session() -> None:
    done = subprocess.run(
        repl_double.command("--no-transcripts", "--crash-after", "1"),
        input=b'{"cmd": ""}\n\n{"cmd": "", "env": 0}\n\n',
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout == b'{"env": 0}\n\n'
