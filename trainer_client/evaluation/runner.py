"""Sample ``n`` completions per problem, verify them, and tally an :class:`EvalResult`.

Sampling (GPU) and verification (the service's CPUs) overlap: while batch ``i`` is being
verified on a worker thread, batch ``i + 1`` is sampled. Samples whose verdict is ``error`` (a
system failure after the client's retries) are dropped from both ``n`` and ``c`` of their
problem and counted separately: an outage must not read as a wrong proof.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from trainer_client.data import Problem, build_prompt, proof_request
from trainer_client.evaluation.diversity import proof_diversity, response_diversity
from trainer_client.evaluation.results import EvalResult, ProblemResult
from trainer_client.wire import ProofRequest, Verdict, Verifier, verify_non_empty

__all__ = ["EvalPlan", "PromptTooLong", "check_prompt_lengths", "evaluate_problems"]


class _Sampler(Protocol):
    def sample(self, prompts: Sequence[str], k: int) -> Any: ...


@dataclass(frozen=True)
class EvalPlan:
    """How many samples to draw and in what slices.

    ``batch_size`` bounds the sequences per sampler call: a problem's ``n`` samples are drawn
    ``min(n, batch_size)`` at a time, and several problems share a call when ``n`` is small.
    """

    n: int = 256
    batch_size: int = 64
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n: expected at least one sample per problem, got {self.n}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: expected at least 1, got {self.batch_size}")

    @property
    def samples_per_call(self) -> int:
        return min(self.n, self.batch_size)

    @property
    def problems_per_call(self) -> int:
        return max(1, self.batch_size // self.samples_per_call)


@dataclass
class _Tally:
    n: int = 0
    c: int = 0
    errors: int = 0
    verified_code: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    diversity: dict[str, float] | None = None
    paper_diversity: dict[str, float] | None = None

    def finish(self) -> None:
        """Measure both diversities once every sample is in, then drop the texts: holding every
        response of every problem until the end would keep ``n × problems`` completions alive."""
        if self.n:
            self.diversity = proof_diversity(self.verified_code).to_dict()
            self.paper_diversity = response_diversity(self.responses).to_dict()
        self.verified_code, self.responses = [], []


class PromptTooLong(ValueError):
    """A problem's prompt does not fit the model's context with the tokens to generate."""


def check_prompt_lengths(
    problems: Sequence[Problem],
    tokenizer: Any,
    *,
    context: int | None,
    max_new_tokens: int,
    prompts: Sequence[str] | None = None,
) -> None:
    """Raise :class:`PromptTooLong` when some prompt plus ``max_new_tokens`` exceeds
    ``context`` (the model's positions), naming how many and the longest; ``None`` checks
    nothing.

    Without this a too-long prompt dies deep inside generation as a bare ``IndexError`` of the
    position embeddings, after the other problems' samples were already drawn.
    """
    if context is None:
        return
    prompts = list(prompts) if prompts is not None else [build_prompt(p) for p in problems]
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    too_long = [
        (p, n) for p, n in zip(problems, lengths, strict=True) if n + max_new_tokens > context
    ]
    if too_long:
        problem, length = max(too_long, key=lambda item: item[1])
        raise PromptTooLong(
            f"{len(too_long)} of {len(problems)} prompts do not fit the model's context of "
            f"{context} tokens with max_new_tokens={max_new_tokens}; the longest is problem "
            f"{problem.name!r} at {length} prompt tokens. Lower --max-new-tokens to at most "
            f"{max(0, context - length)}, or leave such problems out."
        )


def evaluate_problems(
    problems: Sequence[Problem],
    sampler: _Sampler,
    verifier: Verifier,
    *,
    plan: EvalPlan,
    label: str,
    config: dict[str, Any] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    samples_out: IO[str] | None = None,
    n_boot: int = 1000,
    prompt_fn: Callable[[Problem], str] | None = None,
) -> EvalResult:
    """Evaluate ``problems`` with ``plan.n`` samples each; see the module docstring.

    ``prompt_fn`` renders a problem's prompt (default :func:`~trainer_client.data.build_prompt`,
    the plain text); ``sieve-eval`` passes the paper's evaluation prompt: the chat template with
    :data:`~trainer_client.data.EVAL_SYSTEM_PROMPT`.

    ``on_progress(samples_done, verified, errors)`` is called after each verified batch;
    ``samples_out``, if given, receives one JSON line per sample (problem, completion, verdict).
    Diversity is measured both ways (:mod:`.diversity`): the paper's over all of a problem's
    responses, verified or not, and ours over its *verified* proofs (the checked code).
    """
    if not problems:
        raise ValueError("problems: nothing to evaluate")
    names = [p.name for p in problems]
    if len(set(names)) != len(names):
        raise ValueError("problems: names must be unique (they key the per-problem results)")
    tallies = [_Tally() for _ in problems]
    prompts = [(prompt_fn or build_prompt)(p) for p in problems]
    done = verified = errors = 0

    def verify(batch: list[tuple[int, int, str]]) -> list[tuple[int, str, ProofRequest, Verdict]]:
        requests = [
            proof_request(problems[i], prompts[i], text, id=f"{i}:{s}", timeout_s=plan.timeout_s)
            for i, s, text in batch
        ]
        results = verify_non_empty(verifier, requests)
        return [
            (i, text, req, res)
            for (i, _, text), req, res in zip(batch, requests, results, strict=True)
        ]

    def record(outcomes: list[tuple[int, str, ProofRequest, Verdict]]) -> None:
        nonlocal done, verified, errors
        for i, text, request, result in outcomes:
            tally = tallies[i]
            tally.responses.append(text)
            if result.failed:
                tally.errors += 1
                errors += 1
            else:
                tally.n += 1
                if result.ok:
                    tally.c += 1
                    verified += 1
                    tally.verified_code.append(str(request.get("code", text)))
            if len(tally.responses) == plan.n:
                tally.finish()
            if samples_out is not None:
                row = {
                    "problem": problems[i].name,
                    "completion": text,
                    "verdict": result.verdict,
                    "reasons": list(getattr(result, "reasons", []) or []),
                }
                samples_out.write(json.dumps(row, ensure_ascii=False) + "\n")
        done += len(outcomes)
        if on_progress is not None:
            on_progress(done, verified, errors)

    pending: Future | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sieve-eval-verify") as pool:
        for batch in _sample_batches(problems, prompts, sampler, plan):
            if pending is not None:
                record(pending.result())
            pending = pool.submit(verify, batch)
        if pending is not None:
            record(pending.result())
    for tally in tallies:
        if tally.responses:  # every problem has n samples; kept in case a sampler ever differs
            tally.finish()

    results = [
        ProblemResult(
            name=p.name,
            n=t.n,
            c=t.c,
            errors=t.errors,
            diversity=t.diversity,
            paper_diversity=t.paper_diversity,
        )
        for p, t in zip(problems, tallies, strict=True)
    ]
    return EvalResult.from_problems(label, results, n=plan.n, config=config, n_boot=n_boot)


def _sample_batches(
    problems: Sequence[Problem], prompts: Sequence[str], sampler: _Sampler, plan: EvalPlan
) -> Iterator[list[tuple[int, int, str]]]:
    """Yield lists of ``(problem index, sample index, completion)``, one per sampler call."""
    rounds = math.ceil(plan.n / plan.samples_per_call)
    for start in range(0, len(problems), plan.problems_per_call):
        indices = list(range(start, min(start + plan.problems_per_call, len(problems))))
        for r in range(rounds):
            k = min(plan.samples_per_call, plan.n - r * plan.samples_per_call)
            samples = sampler.sample([prompts[i] for i in indices], k)
            texts = list(samples.texts)
            if len(texts) != len(indices) * k:
                raise RuntimeError(f"sampler returned {len(texts)} texts for {len(indices)}×{k}")
            # Prompt i's k samples are contiguous (the Sampler contract).
            first = r * plan.samples_per_call
            yield [(indices[pos // k], first + pos % k, text) for pos, text in enumerate(texts)]
