"""The math checker against adversarial answers, by class: old (a git revision) and new.

Reads ``tests/verifier/math/adversarial.jsonl``: each case a reference, an answer, the class of
trick it belongs to (the classes of the issue "The math checker an RL policy cannot fool") and
the verdict a careful grader gives. For each checker and class it prints:

* false positives: wrong answers (``invalid`` by the label) the checker calls ``valid``;
* wrong answers the checker calls ``error`` (or ``timeout``): a trainer drops such rows, so the
  answer escapes its penalty;
* false negatives: right answers the checker does not call ``valid`` (of which ``error`` or
  ``timeout``).

Each answer is judged in this process, on the main thread, as a checker worker does.

    python benchmarks/math_adversarial.py [--old main] [--budget 5] [--show]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# This checkout's checker, not an installed one: the script runs as
# `python benchmarks/math_adversarial.py` from the repository root.
sys.path.insert(0, str(ROOT))
CASES = ROOT / "tests" / "verifier" / "math" / "adversarial.jsonl"
Judge = Callable[[str, str, float], dict[str, Any]]


def verdict(judge: Judge, answer: str, reference: str, budget_s: float) -> str:
    """``valid``, ``invalid``, ``error`` or ``timeout``, as the service would report it."""
    try:
        status = judge(answer, reference, budget_s)["status"]
    except Exception:  # the service turns a raising check into ``error``
        return "error"
    if status == "valid":
        return "valid"
    if status == "timeout":
        return "timeout"
    if status == "unparsable_reference":
        return "error"
    return "invalid"


def tally(cases: list[dict[str, str]], judge: Judge, budget_s: float) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "fp": 0, "wrong_error": 0, "fn": 0, "right_error": 0, "misses": []}
    )
    for case in cases:
        got = verdict(judge, case["answer"], case["reference"], budget_s)
        row = rows[case["class"]]
        row["n"] += 1
        if case["verdict"] == "invalid":
            if got == "valid":
                row["fp"] += 1
            elif got in ("error", "timeout"):
                row["wrong_error"] += 1
            else:
                continue
        elif got != "valid":
            row["fn"] += 1
            row["right_error"] += got in ("error", "timeout")
        else:
            continue
        row["misses"].append((case["answer"], case["reference"], case["verdict"], got))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="main", help="git revision of the old checker")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per answer")
    parser.add_argument("--show", action="store_true", help="list every miss")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    from math_baseline import load

    from verifier_service.checkers import math as new

    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    checkers = {f"old ({args.old})": load(args.old).judge, "new": new.judge}
    print(f"{len(cases)} cases from {CASES.relative_to(ROOT)}; budget {args.budget} s an answer")
    header = f"{'class':22} {'cases':>5} {'wrong':>5} {'right':>5}"
    for name in checkers:
        header += f" | {name + ': FP':>16} {'wrong→error':>11} {'FN (error)':>10}"
    print(header)
    results = {name: tally(cases, judge, args.budget) for name, judge in checkers.items()}
    classes = sorted({case["class"] for case in cases})
    totals: defaultdict[tuple[str, str], int] = defaultdict(int)
    for cls in classes:
        wrong = sum(c["class"] == cls and c["verdict"] == "invalid" for c in cases)
        right = sum(c["class"] == cls and c["verdict"] == "valid" for c in cases)
        line = f"{cls:22} {wrong + right:5} {wrong:5} {right:5}"
        for name in checkers:
            row = results[name][cls]
            line += (
                f" | {row['fp']:16} {row['wrong_error']:11} {row['fn']:4} ({row['right_error']})"
            )
            for key in ("fp", "wrong_error", "fn", "right_error"):
                totals[(name, key)] += row[key]
        print(line)
    line = f"{'total':22} {len(cases):5} {sum(c['verdict'] == 'invalid' for c in cases):5}"
    line += f" {sum(c['verdict'] == 'valid' for c in cases):5}"
    for name in checkers:
        line += f" | {totals[(name, 'fp')]:16} {totals[(name, 'wrong_error')]:11}"
        line += f" {totals[(name, 'fn')]:4} ({totals[(name, 'right_error')]})"
    print(line)
    if args.show:
        for name in checkers:
            print(f"\n{name}: misses (answer, reference, label, got)")
            for cls in classes:
                for miss in results[name][cls]["misses"]:
                    print(f"  [{cls}] {miss}")


if __name__ == "__main__":
    main()
