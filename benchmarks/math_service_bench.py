"""Answers per second of the math checker through the service, on the trainer's batches, against
math-verify called in-process.

The answers are what ``trainer_bench.py``'s random policy writes (``math_checker_bench.py``'s
``policy`` workload), each (answer, reference) pair once, so no verdict comes from the cache or
from de-duplication. The service (``python -m verifier_service serve``, ``math`` checker, its
default workers) gets them as the trainer sends them: ``POST /verify`` batches of
``--batch`` (32: 8 prompts × 4 samples), one after the other. In process, on this thread:

- ``judge``: the checker's own judge (its strict reading over math-verify), answer by answer;
- ``math-verify``: math-verify's ``parse`` and ``verify`` alone, as a trainer would call it.

The runs alternate, ``--repeats`` times each, so drift on a shared machine moves all of them;
the figure is the median. ``--baseline-tree DIR`` also serves from another checkout (an older
revision) and times it in the same rounds, for a before-and-after figure; ``--service-tree DIR``
serves only from another checkout. Torch, BLAS and OpenMP are pinned to one thread.

    python benchmarks/math_service_bench.py [--answers 2048] [--warm 256] [--batch 32]
        [--repeats 3] [--baseline-tree DIR] [--service-tree DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=2048, help="distinct answers timed")
    parser.add_argument("--warm", type=int, default=256, help="answers sent first, untimed")
    parser.add_argument("--batch", type=int, default=32, help="answers per POST /verify")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--service-tree", type=Path, help="serve from this checkout instead")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="also serve from this checkout (an older revision), timed in the same rounds",
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    from math_checker_bench import policy_answers

    pairs = _distinct(policy_answers(3 * (args.warm + args.answers)))
    if len(pairs) < args.warm + args.answers:
        raise SystemExit(f"only {len(pairs)} distinct answers; ask for fewer")
    warm, timed = pairs[: args.warm], pairs[args.warm : args.warm + args.answers]
    print(f"load average before: {_load()}")
    print(
        f"{len(timed)} distinct answers of the benchmark policy after {len(warm)}; "
        f"service batches of {args.batch}; {os.cpu_count()} CPUs"
    )
    runs: dict[str, list[float]] = {"service": [], "judge": [], "math-verify": []}
    if args.baseline_tree is not None:
        runs["baseline"] = []
    with contextlib.ExitStack() as stack:
        from trainer_client.client import VerifierClient

        clients = {}
        for name, tree in (("service", args.service_tree), ("baseline", args.baseline_tree)):
            if name in runs:
                url = stack.enter_context(_service(tree))
                clients[name] = stack.enter_context(
                    VerifierClient(url, max_batch=args.batch, max_concurrency=1)
                )
        for client in clients.values():
            _through_service(client, warm, args.batch)
        _in_process_judge(warm)
        _in_process_math_verify(warm)
        for repeat in range(args.repeats):
            for name, client in clients.items():
                runs[name].append(_through_service(client, timed, args.batch, repeat))
            runs["judge"].append(_in_process_judge(timed))
            runs["math-verify"].append(_in_process_math_verify(timed))
    print(f"load average after: {_load()}")
    med = {name: statistics.median(rates) for name, rates in runs.items()}
    for name, rates in runs.items():
        figures = ", ".join(f"{rate:.0f}" for rate in rates)
        print(f"  {name:<12} {med[name]:8.0f} answers/s (runs: {figures})")
    print(f"service / in-process judge:       {med['service'] / med['judge']:.2f}")
    print(f"service / in-process math-verify: {med['service'] / med['math-verify']:.2f}")
    if "baseline" in med:
        print(f"baseline / in-process judge:       {med['baseline'] / med['judge']:.2f}")
        print(f"baseline / in-process math-verify: {med['baseline'] / med['math-verify']:.2f}")
        print(f"service / baseline:                {med['service'] / med['baseline']:.2f}")


def _distinct(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(pairs))


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def _service(tree: Path | None) -> Iterator[str]:
    """The real service on loopback (this checkout's, or ``tree``'s); yields its URL."""
    from verifier_service.launcher import serve_subprocess

    env = {"SIEVE_CHECKERS": "math", "SIEVE_LOG_LEVEL": "warning", "SIEVE_CACHE_SIZE": "1"}
    if tree is not None:
        env["PYTHONPATH"] = str(tree.resolve())
    with serve_subprocess(env, cwd=tree) as url:
        yield url


def _through_service(client, pairs, batch: int, repeat: int = -1) -> float:
    """Answers/s of the service on ``pairs``, sent ``batch`` at a time, one batch after another.

    The service runs with a verdict cache of one entry (``SIEVE_CACHE_SIZE``), so a repeat of
    the same answers is checked again, not answered from the cache.
    """
    proofs = [
        {"id": f"{repeat}-{i}", "checker": "math", "code": code, "answer": answer}
        for i, (code, answer) in enumerate(pairs)
    ]
    began = time.perf_counter()
    for start in range(0, len(proofs), batch):
        results = client.verify(proofs[start : start + batch])
        bad = [r for r in results if r.verdict == "error"]
        if bad:
            raise SystemExit(f"the service answered error: {bad[0]}")
    return len(proofs) / (time.perf_counter() - began)


def _in_process_judge(pairs: list[tuple[str, str]]) -> float:
    from verifier_service.checkers.math import judge

    began = time.perf_counter()
    for code, answer in pairs:
        judge(code, answer, 30.0)
    return len(pairs) / (time.perf_counter() - began)


def _in_process_math_verify(pairs: list[tuple[str, str]]) -> float:
    from math_verify import parse, verify

    began = time.perf_counter()
    for code, answer in pairs:
        try:
            gold = parse(answer, parsing_timeout=None)
            verify(gold, parse(code, parsing_timeout=None), timeout_seconds=None)
        except Exception:  # math-verify raising is an answer's verdict here
            pass
    return len(pairs) / (time.perf_counter() - began)


if __name__ == "__main__":
    main()
