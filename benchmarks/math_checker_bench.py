"""Time the math checker's comparison on a policy's answers, with and without its shortcuts.

The answers are what ``trainer_bench.py``'s policy writes: a random 2-layer Llama over a 33-token
character tokenizer, 16 new tokens for each demo prompt ("28=") — mostly garbage such as ``81d``
or ``3k18f70``, the answers whose "wrong" verdict math-verify reaches through SymPy's
``simplify``. Each run judges all of them in a fresh process on one thread, as one checker
worker does: with :mod:`verifier_service.checkers.math_shortcuts` and the kept reference parse,
or as math-verify alone (a fresh process each time, so that neither meets SymPy's cache filled
by the other). The runs alternate, ``--repeats`` times each. Both must give the same verdict on
every answer; the script counts those that differ.

    python benchmarks/math_checker_bench.py [--answers 2000] [--warm 500] [--repeats 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# The workload is the CPU demo's task (examples/demo/), importable from a checkout: the
# script runs as `python benchmarks/<name>.py` from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=2000, help="answers timed")
    parser.add_argument(
        "--warm", type=int, default=500, help="answers judged first (warms ANTLR's caches)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--judge", metavar="FILE", help=argparse.SUPPRESS)  # one timed run
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.judge:
        _judge_file(Path(args.judge), warm=args.warm, shortcuts=not args.plain)
        return

    with tempfile.TemporaryDirectory() as tmp:
        answers = Path(tmp) / "answers.json"
        answers.write_text(json.dumps(policy_answers(args.warm + args.answers)))
        runs: dict[bool, list[dict]] = {True: [], False: []}
        for repeat in range(args.repeats):
            for fast in (True, False) if repeat % 2 == 0 else (False, True):
                command = [sys.executable, __file__, "--judge", str(answers)]
                command += ["--warm", str(args.warm)] + ([] if fast else ["--plain"])
                out = subprocess.run(command, check=True, capture_output=True, text=True)
                runs[fast].append(json.loads(out.stdout.splitlines()[-1]))

    fast = statistics.median(r["ms_per_answer"] for r in runs[True])
    slow = statistics.median(r["ms_per_answer"] for r in runs[False])
    differ = sum(
        a != b for a, b in zip(runs[True][0]["verdicts"], runs[False][0]["verdicts"], strict=True)
    )
    print(f"answers: {args.answers} timed after {args.warm}, from trainer_bench's random policy")
    print(f"verdicts: {dict(Counter(runs[True][0]['verdicts']))}")
    print(f"math-verify alone:  {slow:.3f} ms per answer (runs: {_figures(runs[False])})")
    print(f"with the shortcuts: {fast:.3f} ms per answer (runs: {_figures(runs[True])})")
    print(f"speed-up: {slow / fast:.2f}x; verdicts that differ: {differ} of {args.answers}")


def _figures(runs: list[dict]) -> str:
    return ", ".join(f"{r['ms_per_answer']:.3f}" for r in runs)


def _judge_file(path: Path, *, warm: int, shortcuts: bool) -> None:
    """One run: judge every answer in ``path``; print the timed figure and verdicts as JSON."""
    from verifier_service.checkers import math as math_checker
    from verifier_service.checkers import math_shortcuts

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    plain: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if not shortcuts:  # math-verify as it comes: its own comparison, the reference parsed anew
        plain = math_shortcuts.disabled()
        math_checker._extract_reference = math_checker.extract  # type: ignore[assignment]
    pairs = json.loads(path.read_text())
    with plain:
        for code, answer in pairs[:warm]:
            math_checker.judge(code, answer, 30.0)
        began = time.perf_counter()
        verdicts = [math_checker.judge(c, a, 30.0)["status"] for c, a in pairs[warm:]]
        elapsed = time.perf_counter() - began
    print(json.dumps({"ms_per_answer": elapsed / len(verdicts) * 1e3, "verdicts": verdicts}))


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


if __name__ == "__main__":
    main()
