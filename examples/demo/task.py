"""The CPU demo's task: arithmetic "proofs" of a target number, in families, with held-out targets.

A "proof" of ``24=`` is an arithmetic expression equal to 24. The paper's claim is about
*held-out* problems: RL-style tuning sharpens the model onto what it already prefers, and
what it learns on the training problems carries over to problems it never trained on, so on
those it can lose correct answers the base model still found at large k (coverage), while
the filtered target ``p ∝ a·1[correct]`` keeps every correct answer in the base's proportion.
This task is built so that the loss *can* happen through generalisation, and so that whether
it does is left to the objectives:

* **Answer families shared across targets.** Every correct expression belongs to one family:
  ``product`` (``a*b``, ``(a+b)*c``), ``sum`` (``a+b``), ``difference`` (``a-b``) or ``affine``
  (``a*b+c``, ``a*b-c``). A family is a style of answer, the same for every target, so what a
  single network learns about families on one prompt applies to every other prompt.
* **The base prefers one family.** For every target the base puts ``preferred_family_mass``
  (0.88) of its probability on the product family and splits the rest evenly over the other
  three. Within a family a share ``acc(x)`` of the mass goes to correct expressions and the rest
  to near-misses of the same family (expressions whose value is 1 to 3 off the target);
  ``acc(x)`` is drawn log-uniformly in ``[pass_rate_min, pass_rate_max]`` per target, so
  targets differ in difficulty. Within each part, expressions are weighted by a Zipf law over
  a random order (a few frequent answers, many rare ones).
* **Primes cannot be written as products.** On a composite target every family has correct
  answers and the base's pass rate is ``acc(x)``; on a prime, every product the base draws is
  a near-miss, and only the rarely drawn families (12 % of the mass) can be right: its pass
  rate is ``0.12·acc(x)``, between 0.2 % and 6 %, so 256 samples find an answer on most primes
  but not all.
* **The split.** Every prime and every fourth composite is held out; fine-tuning sees the other
  composites only, where the base's preferred family solves the task. The base model is fitted
  on all targets: it plays the pretrained model, which has seen everything.

Why this can show the effect if the method works: on a training composite the filtered target
``p`` keeps the families in the base's proportion (every family is right as often), so a
mass-covering fit (α → 0) has no reason to drop the rare families, and keeps drawing them on
held-out primes, where they are the only way to be right. A mode-seeking fit (RL, α → 1) gains
pass@1 on composites by concentrating on the most frequent correct answers, which are products;
if that concentration carries over to the primes, their rare correct answers disappear and
pass@256 on held-out targets falls below the base's. Nothing in the task forces either outcome:
the held-out composites are the control (products work there too), the families' masses and
accuracies are set once for all targets, and whether a 2-layer network carries a family
preference from one prompt to another is exactly what is measured.
"""

from __future__ import annotations

import ast
import math
import random
import re
from dataclasses import dataclass
from functools import lru_cache

from trainer_client.data import Problem

__all__ = [
    "FAMILIES",
    "PREFERRED_FAMILY",
    "BaseDistribution",
    "DemoTask",
    "answer_family",
    "base_distribution",
    "demo_problems",
    "evaluate_expression",
    "is_correct",
    "is_prime",
    "prompt_for",
]

#: The answer families, the base's preferred one first.
FAMILIES: tuple[str, ...] = ("product", "sum", "difference", "affine")
PREFERRED_FAMILY = FAMILIES[0]
_FAMILY_PATTERNS = {
    "product": re.compile(r"\d+\*\d+|\(\d+\+\d+\)\*\d+"),
    "sum": re.compile(r"\d+\+\d+"),
    "difference": re.compile(r"\d+-\d+"),
    "affine": re.compile(r"\d+\*\d+[+-]\d+"),
}
#: Near-misses are expressions of the same family whose value is this far off the target.
_NEAR_MISS_OFFSETS = (-3, -2, -1, 1, 2, 3)


def answer_family(expression: str) -> str:
    """The family of an expression (:data:`FAMILIES`), by its shape; ``other`` if none."""
    text = expression.strip()
    for family, pattern in _FAMILY_PATTERNS.items():
        if pattern.fullmatch(text):
            return family
    return "other"


def is_prime(number: int) -> bool:
    return number >= 2 and all(number % d for d in range(2, math.isqrt(number) + 1))


@dataclass(frozen=True)
class DemoTask:
    """The demo's task and its base distribution's shape; saved with the fitted base model.

    Targets are two-digit numbers, so every prompt (``"24="``) has the same length and a batch of
    prompts needs no padding. Every prime and every fourth composite is held out
    (``split="test"``); the base model is fitted on all targets, fine-tuning uses the train
    targets only.
    """

    target_min: int = 10
    target_max: int = 99
    #: Each target's accuracy within a family, ``acc(x)``, is drawn log-uniformly in
    #: ``[pass_rate_min, pass_rate_max]``; a composite's base pass rate is ``acc(x)``, a prime's
    #: ``(1 − preferred_family_mass)·acc(x)``.
    pass_rate_min: float = 0.02
    pass_rate_max: float = 0.5
    #: The base's probability of answering with the preferred family (products), every target.
    preferred_family_mass: float = 0.88
    #: Zipf exponent of the frequency of the ranked expressions (correct and wrong alike).
    zipf_s: float = 1.2
    #: At most this many distinct correct (and, separately, wrong) expressions per family.
    max_expressions: int = 24
    #: Operands of sums' and differences' subtrahends and of affine terms are in ``1..max_operand``.
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
        if not 0.0 < self.preferred_family_mass < 1.0:
            raise ValueError(
                f"preferred_family_mass: must be in (0, 1), got {self.preferred_family_mass}"
            )
        if self.zipf_s < 0:
            raise ValueError(f"zipf_s: must be >= 0, got {self.zipf_s}")
        if self.max_expressions < 1:
            raise ValueError(f"max_expressions: must be >= 1, got {self.max_expressions}")
        if self.max_operand < 2:
            raise ValueError(f"max_operand: must be >= 2, got {self.max_operand}")

    @property
    def targets(self) -> list[int]:
        return list(range(self.target_min, self.target_max + 1))

    def split_of(self, target: int) -> str:
        """``test`` (held out) for primes and every fourth composite, else ``train``."""
        if is_prime(target):
            return "test"
        composites = [t for t in self.targets if not is_prime(t)]
        return "test" if composites.index(target) % 4 == 3 else "train"


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

    def family_mass(self, *, correct_only: bool = False) -> dict[str, float]:
        """Probability of each family (of the correct expressions only, with ``correct_only``)."""
        out = dict.fromkeys(FAMILIES, 0.0)
        for e, p, c in zip(self.expressions, self.probabilities, self.correct, strict=True):
            if c or not correct_only:
                out[answer_family(e)] += p
        return out

    def sample(self, rng: random.Random, k: int = 1) -> list[str]:
        return rng.choices(self.expressions, weights=self.probabilities, k=k)


def base_distribution(target: int, task: DemoTask = DemoTask()) -> BaseDistribution:
    """The base distribution the tiny model is fitted to, for one target (module docstring).

    Per family, the correct expressions and the near-misses are each put in a random order fixed
    by ``task.seed`` and the target, and weighted by a Zipf law over that order.
    """
    return _base_distribution(target, task)


@lru_cache(maxsize=4096)
def _base_distribution(target: int, task: DemoTask) -> BaseDistribution:
    rng = random.Random(f"{task.seed}:{target}")
    accuracy = math.exp(rng.uniform(math.log(task.pass_rate_min), math.log(task.pass_rate_max)))
    rare = (1.0 - task.preferred_family_mass) / (len(FAMILIES) - 1)
    expressions: list[str] = []
    probabilities: list[float] = []
    correct: list[bool] = []
    for family in FAMILIES:
        mass = task.preferred_family_mass if family == PREFERRED_FAMILY else rare
        right = sorted(_family_expressions(family, target, task.max_operand))
        wrong = sorted(
            set().union(
                *(
                    _family_expressions(family, target + offset, task.max_operand)
                    for offset in _NEAR_MISS_OFFSETS
                )
            )
            - set(right)
        )
        rng.shuffle(right)
        rng.shuffle(wrong)
        right, wrong = right[: task.max_expressions], wrong[: task.max_expressions]
        right_mass = mass * accuracy if right else 0.0
        if not wrong:  # no near-miss of this family exists: its whole mass is correct
            right_mass = mass
        parts = ((right, right_mass, True), (wrong, mass - right_mass, False))
        for part, part_mass, truth in parts:
            if part and part_mass > 0:
                expressions += part
                probabilities += _zipf(len(part), task.zipf_s, part_mass)
                correct += [truth] * len(part)
    return BaseDistribution(
        target=target,
        expressions=tuple(expressions),
        probabilities=tuple(probabilities),
        correct=tuple(correct),
    )


def _zipf(n: int, s: float, mass: float) -> list[float]:
    raw = [1.0 / (rank + 1) ** s for rank in range(n)]
    total = sum(raw)
    return [mass * r / total for r in raw]


def _family_expressions(family: str, value: int, m: int) -> set[str]:
    """Every expression of ``family`` equal to ``value`` (operands positive, none zero)."""
    out: set[str] = set()
    if value < 2:
        return out
    if family == "product":
        for a in range(2, value // 2 + 1):
            if value % a == 0 and value // a >= 2:
                out.add(f"{a}*{value // a}")
                for first in range(1, a):
                    out.add(f"({first}+{a - first})*{value // a}")
    elif family == "sum":
        out |= {f"{a}+{value - a}" for a in range(1, value)}
    elif family == "difference":
        out |= {f"{value + b}-{b}" for b in range(1, m + 1)}
    elif family == "affine":
        for a in range(2, m + 1):
            for b in range(2, m + 1):
                rest = value - a * b
                if 0 < rest <= m:
                    out.add(f"{a}*{b}+{rest}")
                if 0 < -rest <= m:
                    out.add(f"{a}*{b}-{-rest}")
    else:
        raise ValueError(f"family: expected one of {FAMILIES}, got {family!r}")
    return {e for e in out if evaluate_expression(e) == value and answer_family(e) == family}


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
