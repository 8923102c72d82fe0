"""What Lean's parse and the kernel-term statement check cost per proof, measured with the REPL
double. Prints figures; asserts nothing.

The ``lean4`` checker runs three trusted programs per proof besides the proof itself: the parse
(before the proof: Lean's parse of the code and statement, then the rules on it and the check
against the pre-filter), the statement (the statement elaborated alone, once per worker and
statement) and the target (kind and type of the target constant). With the double (no delay)
every Lean command answers at once, so the figures are this service's own cost: building the
commands (the escaped data literal), the round trips through the REPL protocol, reading the
answers and judging them. On a real Lean add Lean's time to parse and elaborate.

Proofs: the published prover proofs (``data/prover_proofs.jsonl``, with their
statements) when present, else ``--proofs`` synthetic ones. Usage::

    python benchmarks/lean_parse_bench.py [--proofs 200] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from verifier_service.checkers import lean as lean_checker  # noqa: E402
from verifier_service.checkers.base import InvalidInput, Policy  # noqa: E402
from verifier_service.lean import trusted  # noqa: E402
from verifier_service.lean.pool import ReplPool  # noqa: E402
from verifier_service.testing import prover_proofs  # noqa: E402
from verifier_service.testing.repl_double import command as double_command  # noqa: E402

P = ParamSpec("P")
R = TypeVar("R")

HEADER = prover_proofs.STANDARD_HEADER


def corpus(n: int) -> list[tuple[str, str, str | None]]:
    """(header, code, statement) triples."""
    if prover_proofs.DATA.is_file():
        # the rows that run on the standard header (miniCTX's project headers are refused)
        rows = [
            r
            for r in prover_proofs.load_rows()
            if prover_proofs.source_of(r) in ("kimina", "internlm")
        ][:n]
        return [(prover_proofs.header_of(r), r["proof"], r["formal_statement"]) for r in rows]
    out: list[tuple[str, str, str | None]] = []
    for i in range(n):
        statement = f"theorem bench_{i} (a b : ℕ) : a + b + {i} = b + a + {i} := by\n"
        out.append((HEADER, statement + "  omega", statement))
    return out


def timed(
    stage: str, totals: dict[str, list[float]], fn: Callable[P, Coroutine[Any, Any, R]]
) -> Callable[P, Coroutine[Any, Any, R]]:
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            totals[stage].append(time.perf_counter() - started)

    return wrapper


async def measure(args: argparse.Namespace) -> None:
    logging.disable(logging.WARNING)  # refused headers and proofs are part of the data
    totals: dict[str, list[float]] = defaultdict(list)
    lean_checker.parse_code = timed("parse", totals, trusted.parse_code)
    lean_checker.elaborate_statement = timed("statement", totals, trusted.elaborate_statement)
    lean_checker.target_type = timed("target", totals, trusted.target_type)
    pool = ReplPool(double_command("--no-transcripts"), workers=args.workers, header_timeout_s=60)
    settings = lean_checker.VerifierSettings(lean_repl=None, lean_max_timeout_s=60)
    checker = lean_checker.LeanChecker(settings, pool=pool)
    proofs = corpus(args.proofs)
    verdicts: dict[str, int] = defaultdict(int)
    checks: list[float] = []
    try:
        for header, code, statement in proofs:
            try:
                job = checker.prepare(
                    code=code,
                    header=header,
                    statement=statement,
                    answer=None,
                    timeout_s=60.0,
                    policy=Policy(),
                )
            except InvalidInput:
                verdicts["refused by prepare"] += 1
                continue
            started = time.perf_counter()
            outcome = await checker.check(job)
            checks.append(time.perf_counter() - started)
            verdicts[outcome.verdict.value] += 1
            for reason in outcome.reasons:
                verdicts[reason] += 1
    finally:
        await checker.aclose()
    sizes = [len(code) for _, code, _ in proofs]
    median = statistics.median(sizes)
    print(f"{len(proofs)} proofs (median {median:.0f} characters), verdicts and reasons:")
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    print(f"whole check: median {1e3 * statistics.median(checks):.2f} ms per proof")
    for stage in ("parse", "statement", "target"):
        values = totals.get(stage, [])
        if not values:
            print(f"{stage:>9}: not run")
            continue
        print(
            f"{stage:>9}: {len(values)} runs, median {1e3 * statistics.median(values):.2f} ms, "
            f"mean {1e3 * statistics.mean(values):.2f} ms, max {1e3 * max(values):.2f} ms"
        )
    checked = len(totals.get("parse", [])) or 1
    parse_cost = sum(totals.get("parse", [])) / checked
    statement_cost = (sum(totals.get("statement", [])) + sum(totals.get("target", []))) / checked
    print(
        f"per proof that reached Lean ({checked}): parse check {1e3 * parse_cost:.2f} ms, ", end=""
    )
    print(f"statement check (statement + target programs) {1e3 * statement_cost:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--proofs", type=int, default=200, help="proofs to check")
    parser.add_argument("--workers", type=int, default=1, help="REPL doubles")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
