"""False negatives on published proofs: every row of ``data/prover_proofs.jsonl`` through
the service, with the REPL double standing in for Lean, posted two ways.

- ``split``: ``header`` + ``statement`` + ``code`` (the proof), as the data gives them;
- ``file``: the whole ``.lean`` text (header, then proof) as ``code``, the statement, no header.

InternLM rows import ``MiniF2F.Minif2fImport`` (a LeanDojo project); they run with the standard
Mathlib header instead, as ``data/README.md`` advises (the rows, their sources and the two
postings are :mod:`verifier_service.testing.prover_proofs`, which the test of the same name uses).
Prints, per source and posting, how many rows came back ``valid`` and the reasons of the others.
The double accepts every proof Lean would accept here (it has no tactics to fail), so a refusal
is the static rules' doing.

    PYTHONPATH=. python benchmarks/prover_proofs.py [--policy-native]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections import Counter, defaultdict
from pathlib import Path

from verifier_service.checkers.base import DEFAULT_AXIOMS, Policy
from verifier_service.checkers.lean import LeanChecker
from verifier_service.selftest.cases import NATIVE_AXIOMS
from verifier_service.service import VerificationService
from verifier_service.testing.prover_proofs import (
    DATA,
    WAYS,
    lean_settings,
    load_rows,
    posted,
    source_of,
)


async def run(rows: list[dict], policy: Policy) -> dict[str, dict[str, Counter]]:
    settings = lean_settings(lean_default_timeout_s=30)
    service = VerificationService({"lean4": LeanChecker(settings)}, None, settings=settings)
    await service.start()
    await service.wait_started()
    table: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    try:
        for way in WAYS:
            batch = [posted(row, way, str(i)) for i, row in enumerate(rows)]
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
    rows = load_rows(args.data)
    axioms = NATIVE_AXIOMS if args.policy_native else DEFAULT_AXIOMS
    table = asyncio.run(run(rows, Policy(axioms=axioms)))
    for source in sorted(table):
        for way in WAYS:
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
