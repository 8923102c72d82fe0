"""The published prover proofs of ``data/prover_proofs.jsonl``, as the false-negative
test (``tests/verifier/lean/test_prover_proofs.py``) and benchmark (``benchmarks/prover_proofs.py``)
post them: which source a row is from, the header it runs with, and the two ways of posting it.

InternLM rows import ``MiniF2F.Minif2fImport`` (a LeanDojo project); they run with the standard
Mathlib header instead, as ``data/README.md`` advises.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from verifier_service.selftest.cases import DEFAULT_HEADER
from verifier_service.service import ProofItem
from verifier_service.settings import VerifierSettings
from verifier_service.testing.settings import double_settings
from verifier_service.vendored import data_file

__all__ = [
    "DATA",
    "STANDARD_HEADER",
    "WAYS",
    "header_of",
    "lean_settings",
    "load_rows",
    "posted",
    "source_of",
]

#: Vendored with the repository (not in the package), like the REPL transcripts.
DATA = data_file("prover_proofs.jsonl")
#: The header most data sets use (the selftest's); InternLM rows run with it.
STANDARD_HEADER = DEFAULT_HEADER
#: ``split``: ``header`` + ``statement`` + ``code`` (the proof), as the data gives them;
#: ``file``: the whole ``.lean`` text (header, then proof) as ``code``, the statement, no header.
WAYS = ("split", "file")


def load_rows(path: Path = DATA) -> list[dict]:
    """The rows of the data file (one JSON object a line)."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def source_of(row: dict) -> str:
    """``imo2025`` and ``minictx`` (Seed-Prover), ``internlm`` or ``kimina``."""
    if row["model"].startswith("Seed-Prover"):
        return "imo2025" if "/imo2025/" in row["source"] else "minictx"
    return "internlm" if row["model"].startswith("InternLM") else "kimina"


def header_of(row: dict) -> str:
    return STANDARD_HEADER if source_of(row) == "internlm" else row["header"]


def posted(row: dict, way: str, pid: str) -> ProofItem:
    """The row as one request item, posted ``way`` (one of :data:`WAYS`)."""
    header = header_of(row)
    if way == "split":
        return ProofItem(pid, row["proof"], header=header, statement=row["formal_statement"])
    code = header.rstrip("\n") + "\n\n" + row["proof"]
    return ProofItem(pid, code, header=None, statement=row["formal_statement"])


def lean_settings(**overrides: Any) -> VerifierSettings:
    """A ``lean4``-only service on two REPL doubles, the standard header prewarmed."""
    # A few miniCTX headers are whole project files.
    return double_settings(
        prewarm=STANDARD_HEADER, workers=2, **{"max_code_bytes": 16 * 2**20, **overrides}
    )
