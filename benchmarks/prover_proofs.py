"""False negatives on published proofs: every row of ``shared/data/prover_proofs.jsonl`` through
the service, with the REPL double standing in for Lean, posted two ways.

- ``split``: ``header`` + ``statement`` + ``code`` (the proof), as the data gives them;
- ``file``: the whole ``.lean`` text (header, then proof) as ``code``, the statement, no header.

InternLM rows import ``MiniF2F.Minif2fImport`` (a LeanDojo project); they run with the standard
Mathlib header instead, as ``shared/data/README.md`` advises. Prints, per source and posting, how
many rows came back ``valid`` and the reasons of the others. The double accepts every proof Lean
would accept here (it has no tactics to fail), so a refusal is the static rules' doing.

    PYTHONPATH=. python benchmarks/prover_proofs.py [--policy-native]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shlex
import sys
from collections import Counter, defaultdict
from pathlib import Path

from verifier_service.checkers.base import DEFAULT_AXIOMS, Policy
from verifier_service.checkers.lean import LeanChecker
from verifier_service.service import ProofItem, VerificationService
from verifier_service.settings import VerifierSettings
from verifier_service.testing.repl_double import command

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "prover_proofs.jsonl"
STANDARD_HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n"
)


def source_of(row: dict) -> str:
    if row["model"].startswith("Seed-Prover"):
        return "seed-imo2025" if "/imo2025/" in row["source"] else "seed-minictx"
    if row["model"].startswith("InternLM"):
        return "internlm"
    return "kimina"


def header_of(row: dict) -> str:
    return STANDARD_HEADER if source_of(row) == "internlm" else row["header"]


def items(rows: list[dict], way: str) -> list[ProofItem]:
    out = []
    for i, row in enumerate(rows):
        header = header_of(row)
        if way == "split":
            item = ProofItem(str(i), row["proof"], header=header, statement=row["formal_statement"])
        else:
            code = header.rstrip("\n") + "\n\n" + row["proof"]
            item = ProofItem(str(i), code, header=None, statement=row["formal_statement"])
        out.append(item)
    return out


async def run(rows: list[dict], policy: Policy) -> dict[str, dict[str, Counter]]:
    settings = VerifierSettings(
        checkers=["lean4"],
        lean_repl=shlex.join(command("--no-transcripts")),
        lean_workers=2,
        lean_prewarm_headers=[STANDARD_HEADER],
        lean_sandbox="none",
        lean_default_timeout_s=30,
        max_code_bytes=16 * 2**20,  # some miniCTX headers are whole project files
    )
    service = VerificationService({"lean4": LeanChecker(settings)}, None, settings=settings)
    await service.start()
    await service.wait_started()
    table: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    try:
        for way in ("split", "file"):
            batch = items(rows, way)
            for start in range(0, len(batch), 64):
                results = await service.verify(batch[start : start + 64], policy)
                for result in results:
                    row = rows[int(result.id)]
                    outcome = result.outcome
                    label = outcome.verdict.value
                    if outcome.reasons:
                        label += ":" + ",".join(outcome.reasons)
                    table[source_of(row)][way][label] += 1
    finally:
        await service.aclose()
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy-native", action="store_true", help="allow Lean.ofReduceBool")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # header failures of project rows are expected here
    rows = [json.loads(line) for line in args.data.read_text("utf-8").splitlines() if line]
    axioms = DEFAULT_AXIOMS + (("Lean.ofReduceBool",) if args.policy_native else ())
    table = asyncio.run(run(rows, Policy(axioms=axioms)))
    for source in sorted(table):
        for way in ("split", "file"):
            counts = table[source][way]
            total = sum(counts.values())
            valid = counts.get("valid", 0)
            print(f"{source:14s} {way:5s} valid {valid:3d}/{total:3d}  refused {total - valid:3d}")
            for label, n in counts.most_common():
                if label != "valid":
                    print(f"{'':21s}{n:4d}  {label[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
