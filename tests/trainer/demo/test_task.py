from __future__ import annotations

import json
import random

import pytest

from examples.demo.task import (
    FAMILIES,
    PREFERRED_FAMILY,
    DemoTask,
    answer_family,
    base_distribution,
    demo_problems,
    evaluate_expression,
    is_correct,
    is_prime,
)

TASK = DemoTask()


@pytest.mark.parametrize(
    ("text", "value"),
    [("3*8", 24), ("(3+5)*3", 24), (" 30-6 ", 24), ("2*(3+9)", 24), ("-4+28", 24), ("7", 7)],
)
def test_evaluate_well_formed(text, value):
    assert evaluate_expression(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "3*", "(3+5", "24/1", "2**5", "x+1", "__import__('os')", "1.5+2", "3 8", "1e3", "0x18"],
)
def test_evaluate_rejects_anything_else(text):
    assert evaluate_expression(text) is None


def test_base_distribution_is_a_distribution_with_many_uneven_correct_answers():
    for target in TASK.targets:
        dist = base_distribution(target)
        assert sum(dist.probabilities) == pytest.approx(1.0)
        assert len(set(dist.expressions)) == len(dist.expressions)
        correct = [p for p, c in zip(dist.probabilities, dist.correct, strict=True) if c]
        assert len(correct) >= 16
        assert max(correct) / min(correct) > 5  # Zipf-like: a few frequent, many rare
        rate = TASK.pass_rate_min * (1 - TASK.preferred_family_mass) - 1e-12
        assert rate <= dist.pass_rate <= TASK.pass_rate_max + 1e-12


def test_every_expression_belongs_to_a_family_and_the_base_prefers_products():
    for target in TASK.targets:
        dist = base_distribution(target)
        assert {answer_family(e) for e in dist.expressions} <= set(FAMILIES)
        mass = dist.family_mass()
        assert mass[PREFERRED_FAMILY] == pytest.approx(TASK.preferred_family_mass)
        rare = (1 - TASK.preferred_family_mass) / (len(FAMILIES) - 1)
        for family in FAMILIES[1:]:
            assert mass[family] == pytest.approx(rare)


@pytest.mark.parametrize(
    ("text", "family"),
    [("3*8", "product"), ("(1+2)*8", "product"), ("20+4", "sum"), ("30-6", "difference"),
     ("5*4+4", "affine"), ("5*5-1", "affine"), ("24", "other"), ("2*(3+9)", "other")],
)  # fmt: skip
def test_answer_family_by_shape(text, family):
    assert answer_family(text) == family


def test_primes_are_held_out_and_only_rare_families_solve_them():
    """The split the paper's claim needs: training targets are composites (products solve
    them), held-out ones are every prime (no product is correct) and some composites."""
    train = [t for t in TASK.targets if TASK.split_of(t) == "train"]
    test = [t for t in TASK.targets if TASK.split_of(t) == "test"]
    assert not any(is_prime(t) for t in train)
    primes = [t for t in test if is_prime(t)]
    assert primes == [t for t in TASK.targets if is_prime(t)] and len(primes) == 21
    assert len(test) - len(primes) >= 10  # held-out composites: the control
    for target in primes:
        dist = base_distribution(target)
        assert dist.family_mass(correct_only=True)[PREFERRED_FAMILY] == 0.0
        assert dist.pass_rate < 1 - TASK.preferred_family_mass
    for target in train:
        by_family = base_distribution(target).family_mass(correct_only=True)
        assert by_family[PREFERRED_FAMILY] > 0.5 * sum(by_family.values())


def test_coverage_can_be_won_or_lost_on_held_out_primes():
    """The exact base's pass@256 on held-out primes sits clearly below 1, but far above 0."""
    rates = [base_distribution(t).pass_rate for t in TASK.targets if is_prime(t)]
    pass_at_256 = sum(1 - (1 - z) ** 256 for z in rates) / len(rates)
    assert 0.6 < pass_at_256 < 0.95
    assert sum(z < 0.005 for z in rates) >= 2  # a correct answer rarer than 1 in 200


def test_truth_labels_match_our_arithmetic():
    for target in TASK.targets:
        dist = base_distribution(target)
        for expression, correct in zip(dist.expressions, dist.correct, strict=True):
            assert evaluate_expression(expression) is not None
            assert is_correct(expression, target) is correct


def test_truth_labels_match_math_verify():
    math_verify = pytest.importorskip("math_verify", reason="math-verify is the math checker")
    rng = random.Random(1)
    checked = 0
    for target in rng.sample(TASK.targets, 8):
        dist = base_distribution(target)
        for i in rng.sample(range(len(dist.expressions)), 12):
            expression = dist.expressions[i]
            gold = math_verify.parse(f"${target}$")
            answer = math_verify.parse(f"${expression}$")
            assert math_verify.verify(gold, answer) is dist.correct[i], expression
            checked += 1
    assert checked == 96


def test_base_distribution_depends_on_the_seed():
    a = base_distribution(24, DemoTask(seed=0))
    b = base_distribution(24, DemoTask(seed=1))
    assert a == base_distribution(24, DemoTask(seed=0))
    assert a.expressions != b.expressions


def test_demo_problems_train_and_test_targets_are_disjoint():
    train = demo_problems(100, split="train")
    test = demo_problems(100, split="test")
    train_targets = {p.answer for p in train}
    test_targets = {p.answer for p in test}
    assert train_targets and test_targets
    assert not train_targets & test_targets
    assert train_targets | test_targets == {str(t) for t in TASK.targets}


def test_demo_problems_shape():
    problems = demo_problems(30, seed=3, split="test")
    assert len(problems) == 30
    assert len({p.name for p in problems}) == 30
    for p in problems:
        assert p.checker == "math"
        assert p.split == "test"
        assert p.statement == f"{p.answer}="
        assert len(p.statement) == 3  # equal prompt lengths: no padding inside a batch
    assert problems == demo_problems(30, seed=3, split="test")
    assert problems != demo_problems(30, seed=4, split="test")


@pytest.mark.parametrize(("kwargs", "field"), [({"split": "dev"}, "split"), ({"n": -1}, "n")])
def test_demo_problems_bad_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        demo_problems(**{"n": 1, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_min": 5}, "target_min"),
        ({"pass_rate_min": 0.0}, "pass_rate_min"),
        ({"pass_rate_min": 0.2, "pass_rate_max": 0.1}, "pass_rate_max"),
        ({"pass_rate_max": 1.0}, "pass_rate_max"),
        ({"max_expressions": 0}, "max_expressions"),
        ({"preferred_family_mass": 1.0}, "preferred_family_mass"),
        ({"max_operand": 1}, "max_operand"),
    ],
)
def test_task_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        DemoTask(**kwargs)


def test_task_is_json_friendly():
    from dataclasses import asdict

    assert DemoTask(**json.loads(json.dumps(asdict(TASK)))) == TASK
