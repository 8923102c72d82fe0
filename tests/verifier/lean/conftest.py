"""Shared fixtures for the Lean tests: the REPL transcripts vendored in ``tests/fixtures/``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from verifier_service.vendored import TRANSCRIPTS

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Transcript:
    name: str  # "core/readme", "mathlib/exact"
    commands: list[dict]
    replies: list[dict]


def _chunks(text: str) -> list[str]:
    """Commands and replies are JSON objects separated by a blank line."""
    return [chunk for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]


def load_transcripts() -> list[Transcript]:
    transcripts = []
    for out in sorted(TRANSCRIPTS.glob("*/*.expected.out")):
        stem = out.name.removesuffix(".expected.out")
        commands_file = out.with_name(f"{stem}.in")
        # the REPL itself accepts raw newlines inside command strings (``line_breaks.in``)
        commands = [json.loads(c, strict=False) for c in _chunks(commands_file.read_text())]
        replies = [json.loads(r) for r in _chunks(out.read_text())]
        transcripts.append(Transcript(f"{out.parent.name}/{stem}", commands, replies))
    return transcripts


@pytest.fixture(scope="session")
def transcripts() -> dict[str, Transcript]:
    # Vendored with the repository: a missing one is a broken checkout, not a reason to skip.
    found = {t.name: t for t in load_transcripts()}
    if not found:
        pytest.fail(f"no REPL transcripts under {TRANSCRIPTS} (vendored in the repository)")
    return found
