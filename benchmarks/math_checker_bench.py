"""Time the math checker on a policy's answers: the old checker (a git revision) against this one.

The workloads: ``policy``, what ``trainer_bench.py``'s random policy writes (a 2-layer Llama
over a 33-token character tokenizer, 16 new tokens for each demo prompt ("28=") — mostly garbage
such as ``81d`` or ``3k18f70``, the answers whose "wrong" verdict math-verify reaches through
SymPy's ``simplify``); ``wellformed``, the answers a trained policy writes (right answers and near
misses, boxed, on final-answer lines, as products, fractions, decimals and assignments); and,
on request, the cases of ``tests/verifier/math/adversarial.jsonl`` (``adversarial``; the old
checker's timeouts dominate its figure). Each run judges all of them in a fresh process on one
thread (torch, BLAS and OpenMP pinned to 1), as one checker worker does: with the old revision's
``judge`` (``benchmarks/math_baseline.py``; by default git ``main``) or this tree's. The runs
alternate, ``--repeats`` times each, so drift on a shared machine moves both. The script prints
the cost per answer of each, their ratio, and how many verdicts differ (the strict reading
refuses answers the old one accepted: that is the point, not a fault).

    python benchmarks/math_checker_bench.py [--answers 2000] [--warm 500] [--repeats 2]
        [--old main] [--workloads policy,wellformed,adversarial]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADVERSARIAL = ROOT / "tests" / "verifier" / "math" / "adversarial.jsonl"
#: One thread everywhere, as one checker worker has.
ONE_THREAD = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    )
}

# The workload is the CPU demo's task (examples/demo/), importable from a checkout: the
# script runs as `python benchmarks/<name>.py` from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=2000, help="answers timed per workload")
    parser.add_argument(
        "--warm", type=int, default=500, help="answers judged first (warms ANTLR's caches)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--old", default="main", help="git revision of the old checker")
    parser.add_argument(
        "--workloads",
        default="policy,wellformed",
        help="comma-separated: policy, wellformed, adversarial",
    )
    parser.add_argument("--judge", metavar="FILE", help=argparse.SUPPRESS)  # one timed run
    parser.add_argument("--checker", choices=("old", "new"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.judge:
        _judge_file(Path(args.judge), warm=args.warm, checker=args.checker, old=args.old)
        return
    for workload in args.workloads.split(","):
        pairs = WORKLOADS[workload](args.warm + args.answers)
        _compare_checkers(workload, pairs, args)


def _compare_checkers(
    workload: str, pairs: list[tuple[str, str]], args: argparse.Namespace
) -> None:
    """Time the old and the new checker on ``pairs``, alternating, and print the figures."""
    warm = min(args.warm, len(pairs) // 5)
    timed = len(pairs) - warm
    env = {**os.environ, **ONE_THREAD}
    with tempfile.TemporaryDirectory() as tmp:
        answers = Path(tmp) / "answers.json"
        answers.write_text(json.dumps(pairs))
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for repeat in range(args.repeats):
            for checker in ("new", "old") if repeat % 2 == 0 else ("old", "new"):
                command = [sys.executable, __file__, "--judge", str(answers), "--old", args.old]
                command += ["--warm", str(warm), "--checker", checker]
                out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
                runs[checker].append(json.loads(out.stdout.splitlines()[-1]))

    old = statistics.median(r["ms_per_answer"] for r in runs["old"])
    new = statistics.median(r["ms_per_answer"] for r in runs["new"])
    old_verdicts, new_verdicts = runs["old"][0]["verdicts"], runs["new"][0]["verdicts"]
    differ = [
        (pairs[warm + i], a, b)
        for i, (a, b) in enumerate(zip(old_verdicts, new_verdicts, strict=True))
        if (a == "valid") != (b == "valid")
    ]
    print(f"[{workload}] {timed} answers timed after {warm}; one thread")
    print(f"  old ({args.old}) verdicts: {dict(Counter(old_verdicts))}")
    print(f"  new verdicts: {dict(Counter(new_verdicts))}")
    print(f"  old: {old:.3f} ms per answer (runs: {_figures(runs['old'])})")
    print(f"  new: {new:.3f} ms per answer (runs: {_figures(runs['new'])})")
    print(f"  new / old: {new / old:.2f}x; valid in one only: {len(differ)} of {timed}")
    for (code, answer), a, b in differ[:5]:
        print(f"    {code!r} for {answer!r}: old {a}, new {b}")


def _figures(runs: list[dict]) -> str:
    return ", ".join(f"{r['ms_per_answer']:.3f}" for r in runs)


def _judge_file(path: Path, *, warm: int, checker: str, old: str) -> None:
    """One run: judge every answer in ``path``; print the timed figure and verdicts as JSON."""
    logging.disable(logging.WARNING)
    if checker == "old":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from math_baseline import load

        judge = load(old).judge
    else:
        from verifier_service.checkers.math import judge
    pairs = json.loads(path.read_text())
    for code, answer in pairs[:warm]:
        _status(judge, code, answer)
    began = time.perf_counter()
    verdicts = [_status(judge, c, a) for c, a in pairs[warm:]]
    elapsed = time.perf_counter() - began
    print(json.dumps({"ms_per_answer": elapsed / len(verdicts) * 1e3, "verdicts": verdicts}))


def _status(judge: Callable[[str, str, float], dict[str, Any]], code: str, answer: str) -> str:
    try:
        return judge(code, answer, 30.0)["status"]
    except Exception as exc:  # the service's ``error``
        return f"error:{type(exc).__name__}"


def policy_answers(n: int) -> list[tuple[str, str]]:
    """``(answer, reference)`` pairs: the random policy's completions of demo prompts."""
    import random

    import torch
    from trainer_bench import ALPHABET_EXTRA, bench_model

    from examples.demo.task import demo_problems
    from examples.demo.tokenizer import DEMO_ALPHABET, char_tokenizer
    from trainer_client.data import build_prompt
    from trainer_client.rollout import HFSampler

    torch.set_num_threads(1)
    tokenizer = char_tokenizer(DEMO_ALPHABET + ALPHABET_EXTRA)
    model = bench_model(tokenizer)
    problems = demo_problems(64)
    sampler = HFSampler(model, tokenizer, max_new_tokens=16, seed=1, return_logprobs=False)
    pairs: list[tuple[str, str]] = []
    step = 0
    while len(pairs) < n:
        chosen = random.Random(step).sample(problems, 8)
        samples = sampler.sample([build_prompt(p) for p in chosen], 4)
        for i, text in enumerate(samples.texts):
            if text.strip():  # an empty answer never reaches the checker
                pairs.append((text.strip(), str(chosen[i // 4].answer)))
        step += 1
    return pairs[:n]


def wellformed_answers(n: int) -> list[tuple[str, str]]:
    """``(answer, reference)`` pairs a trained policy writes: right and near-miss answers in the
    usual forms (boxed, final-answer lines, products, fractions, decimals, assignments)."""
    import random

    rng = random.Random(0)
    templates = (
        "\\boxed{{{v}}}",
        "The answer is {v}.",
        "So $x = {v}$, and the final answer is $\\boxed{{{v}}}$.",
        "{a}*{b}",
        "\\frac{{{twice}}}{{2}}",
        "{v}.0",
        "x = {v}",
        "Final answer: {a} \\cdot {b}",
    )
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n:
        a, b = rng.randint(2, 30), rng.randint(2, 30)
        reference = a * b
        value = reference + rng.choice((0, 0, 1, -1))  # a third of them near misses
        template = rng.choice(templates)
        answer = template.format(
            v=value, a=a, b=b if value == reference else b + 1, twice=2 * value
        )
        pairs.append((answer, str(reference)))
    return pairs


def adversarial_answers(n: int) -> list[tuple[str, str]]:
    """The adversarial set's cases, repeated up to ``n``."""
    cases = [json.loads(line) for line in ADVERSARIAL.read_text().splitlines() if line]
    pairs = [(case["answer"], case["reference"]) for case in cases]
    return (pairs * (n // len(pairs) + 1))[:n]


WORKLOADS = {
    "policy": policy_answers,
    "wellformed": wellformed_answers,
    "adversarial": adversarial_answers,
}


if __name__ == "__main__":
    main()
