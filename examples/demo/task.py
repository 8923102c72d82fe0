"""The CPU demo's task: arithmetic "proofs" of a target number, and their base distribution.

The task is small enough to train on one CPU thread yet has the structure that makes α matter:
for each target number there are *many* correct "proofs" (arithmetic expressions that evaluate to
it), which the base model weights very unevenly, plus near-miss wrong ones. Targets differ
widely in difficulty: the base pass rate ``Z(x)`` is drawn log-uniformly between
``pass_rate_min`` and ``pass_rate_max``, so on the hardest targets a correct answer is rare
(about 1 in 300) and even 64 samples often miss it. Coverage (pass@64) can therefore be won or
lost by fine-tuning, not only precision. The verifier-filtered target ``p ∝ a·1[correct]``
keeps the uneven spread of correct answers, and α decides how much of it a fine-tuned model
retains (small α: coverage; α → 1: precision).
"""

from __future__ import annotations

import ast
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from trainer_client.data import Problem

__all__ = [
    "BaseDistribution",
    "DemoTask",
    "base_distribution",
    "demo_problems",
    "evaluate_expression",
    "is_correct",
    "prompt_for",
]


@dataclass(frozen=True)
class DemoTask:
    """The demo's task and its base distribution's shape; saved with the fitted base model.

    Targets are two-digit numbers, so every prompt (``"24="``) has the same length and a batch of
    prompts needs no padding. Every fourth target is held out (``split="test"``); the base model
    is fitted on all targets (it plays the pretrained model, which has seen everything),
    fine-tuning uses the train targets only.
    """

    target_min: int = 10
    target_max: int = 41
    #: Each target's base pass rate ``Z`` is drawn log-uniformly in
    #: ``[pass_rate_min, pass_rate_max]``: a few easy targets, many hard ones with rare correct
    #: answers (with the defaults the exact base has pass@1 ≈ 0.1 and pass@64 ≈ 0.7).
    pass_rate_min: float = 0.003
    pass_rate_max: float = 0.5
    #: Zipf exponent of the frequency of the ranked expressions (correct and wrong alike).
    zipf_s: float = 1.2
    #: At most this many distinct correct (and, separately, wrong) expressions per target.
    max_expressions: int = 24
    #: Operands of the generated expressions are in ``1..max_operand``.
    max_operand: int = 12
    seed: int = 0

    def __post_init__(self) -> None:
        if not 10 <= self.target_min <= self.target_max <= 99:
            raise ValueError("target_min/target_max: targets must be two-digit, min <= max")
        if not 0.0 < self.pass_rate_min <= 1.0:
            raise ValueError(f"pass_rate_min: must be in (0, 1], got {self.pass_rate_min}")
        if not self.pass_rate_min <= self.pass_rate_max < 1.0:
            raise ValueError(
                f"pass_rate_max: must be in [pass_rate_min, 1), got {self.pass_rate_max}"
            )
        if self.zipf_s < 0:
            raise ValueError(f"zipf_s: must be >= 0, got {self.zipf_s}")
        if self.max_expressions < 1:
            raise ValueError(f"max_expressions: must be >= 1, got {self.max_expressions}")

    @property
    def targets(self) -> list[int]:
        return list(range(self.target_min, self.target_max + 1))

    def split_of(self, target: int) -> str:
        return "test" if target % 4 == 1 else "train"


def prompt_for(target: int) -> str:
    """The question the model completes with an expression: ``"24="``."""
    return f"{target}="


@dataclass(frozen=True)
class BaseDistribution:
    """The exact base distribution for one target: expressions, their probabilities, and truth."""

    target: int
    expressions: tuple[str, ...]
    probabilities: tuple[float, ...]
    correct: tuple[bool, ...]

    @property
    def pass_rate(self) -> float:
        """``Z(x)``: the base probability of a correct answer."""
        return sum(p for p, c in zip(self.probabilities, self.correct, strict=True) if c)

    def sample(self, rng: random.Random, k: int = 1) -> list[str]:
        return rng.choices(self.expressions, weights=self.probabilities, k=k)


def base_distribution(target: int, task: DemoTask = DemoTask()) -> BaseDistribution:
    """The base distribution the tiny model is fitted to, for one target.

    Its pass rate ``Z`` is drawn log-uniformly in ``[task.pass_rate_min, task.pass_rate_max]``
    (so targets differ in difficulty, and correct answers are rare on the hard ones).
    Correct expressions (``a+b``, ``a-b``, ``a*b``, ``a*b+c``, ``a*b-c``, ``(a+b)*c``, ...) and
    wrong near-misses (one operand off by one or two) are each put in a random order fixed by
    ``task.seed`` and the target, and weighted by a Zipf law over that order: a few answers are
    frequent and many are rare, which is what lets α trade precision against coverage.
    """
    return _base_distribution(target, task)


@lru_cache(maxsize=4096)
def _base_distribution(target: int, task: DemoTask) -> BaseDistribution:
    rng = random.Random(f"{task.seed}:{target}")
    log_z = rng.uniform(math.log(task.pass_rate_min), math.log(task.pass_rate_max))
    wrong_mass = 1.0 - math.exp(log_z)
    correct = sorted(_correct_expressions(target, task.max_operand))
    rng.shuffle(correct)
    correct = correct[: task.max_expressions]
    wrong = sorted(_near_misses(correct, target, task.max_operand))
    rng.shuffle(wrong)
    wrong = wrong[: task.max_expressions]
    weights_c = _zipf(len(correct), task.zipf_s, 1.0 - wrong_mass)
    weights_w = _zipf(len(wrong), task.zipf_s, wrong_mass) if wrong else []
    if not wrong:  # cannot happen for two-digit targets; keep the mass on the correct ones
        weights_c = _zipf(len(correct), task.zipf_s, 1.0)
    return BaseDistribution(
        target=target,
        expressions=tuple(correct + wrong),
        probabilities=tuple(weights_c + weights_w),
        correct=tuple([True] * len(correct) + [False] * len(wrong)),
    )


def _zipf(n: int, s: float, mass: float) -> list[float]:
    raw = [1.0 / (rank + 1) ** s for rank in range(n)]
    total = sum(raw)
    return [mass * r / total for r in raw]


def _correct_expressions(target: int, m: int) -> set[str]:
    out: set[str] = set()
    operands = range(1, m + 1)
    for a in range(1, target):
        b = target - a
        if b <= 99:
            out.add(f"{a}+{b}")
    for b in operands:
        out.add(f"{target + b}-{b}")
    for a in operands:
        if target % a == 0 and a > 1 and target // a > 1:
            out.add(f"{a}*{target // a}")
        for b in operands:
            rest = target - a * b
            if 0 < rest <= m:
                out.add(f"{a}*{b}+{rest}")
            over = a * b - target
            if 0 < over <= m:
                out.add(f"{a}*{b}-{over}")
            if target % b == 0 and target // b - a > 0:
                out.add(f"({a}+{target // b - a})*{b}")
    return {e for e in out if evaluate_expression(e) == target}


def _near_misses(correct: Sequence[str], target: int, m: int) -> set[str]:
    """Wrong expressions one small slip away from a correct one (an operand off by 1 or 2)."""
    out: set[str] = set()
    for expr in correct:
        tree = ast.parse(expr, mode="eval")
        numbers = [node for node in ast.walk(tree) if isinstance(node, ast.Constant)]
        for node in numbers:
            old = node.value
            if not isinstance(old, int):  # every operand is an int literal
                continue
            for delta in (-2, -1, 1, 2):
                value = old + delta
                if value < 1:
                    continue
                node.value = value
                candidate = ast.unparse(tree).replace(" ", "")
                node.value = old
                result = evaluate_expression(candidate)
                if result is not None and result != target:
                    out.add(candidate)
    return out


_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def evaluate_expression(text: str) -> int | None:
    """The integer value of an expression of digits, ``+ - *`` and parentheses; else ``None``.

    Parsed with :mod:`ast` and walked over a whitelist of node types: never ``eval``. Anything
    else (names, calls, division, powers, floats, leading zeros) is malformed and gives ``None``.
    """
    text = text.strip()
    if not text or len(text) > 64 or any(c not in "0123456789+-*() " for c in text):
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    return _eval_node(tree.body)


def _eval_node(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _eval_node(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval_node(node.left), _eval_node(node.right)
        if left is None or right is None:
            return None
        return _BINARY[type(node.op)](left, right)
    return None


def is_correct(expression: str, target: int) -> bool:
    """Whether ``expression`` is well formed and evaluates to ``target``."""
    return evaluate_expression(expression) == target


def demo_problems(
    n: int, *, seed: int = 0, split: str = "train", task: DemoTask = DemoTask()
) -> list[Problem]:
    """``n`` demo problems from the ``split`` targets, in a shuffled order fixed by ``seed``.

    When ``n`` exceeds the number of targets in the split they are repeated (each pass shuffled
    anew); the name carries the position so names stay unique.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if n < 0:
        raise ValueError(f"n: must be >= 0, got {n}")
    pool = [t for t in task.targets if task.split_of(t) == split]
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < n:
        batch = pool[:]
        rng.shuffle(batch)
        order.extend(batch)
    return [
        Problem(
            name=f"demo-{split}-{i}-{target}",
            statement=prompt_for(target),
            checker="math",
            header="",
            answer=str(target),
            split=split,
        )
        for i, target in enumerate(order[:n])
    ]
