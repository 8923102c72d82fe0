"""Difficulty bins, the transition matrix and the Pareto frontier on hand-made inputs."""

import random

import pytest

from trainer_client.evaluation import (
    BINS,
    difficulty_bin,
    difficulty_bins,
    paper_pareto_frontier,
    pareto_by_rule,
    pareto_frontier,
    pareto_optimal,
    transition_matrix,
)


def test_bin_edges():
    assert difficulty_bins([1.0, 0.9, 0.8999, 0.3, 0.2999, 1 / 256, 0.0]) == [
        "easy",
        "easy",
        "medium",
        "medium",
        "hard",
        "hard",
        "unsolved",
    ]
    with pytest.raises(ValueError, match="correct_fraction"):
        difficulty_bin(1.5)


def test_transition_matrix_counts_moves_between_bins():
    base = {"p1": 0.95, "p2": 0.5, "p3": 0.1, "p4": 0.0, "p5": 0.0, "only_base": 0.2}
    tuned = {"p1": 1.0, "p2": 0.05, "p3": 0.6, "p4": 0.0, "p5": 0.01, "only_tuned": 1.0}
    m = transition_matrix(base, tuned)
    i = {name: k for k, name in enumerate(BINS)}
    expected = [[0] * 4 for _ in range(4)]
    expected[i["easy"]][i["easy"]] = 1
    expected[i["medium"]][i["hard"]] = 1
    expected[i["hard"]][i["medium"]] = 1
    expected[i["unsolved"]][i["unsolved"]] = 1
    expected[i["unsolved"]][i["hard"]] = 1
    assert m.counts == expected
    assert m.problems == 5
    assert m.missing == 2
    assert m.row_fractions()[i["unsolved"]] == [0.0, 0.0, 0.5, 0.5]
    assert m.to_dict()["bins"] == list(BINS)


def test_pareto_frontier_on_a_hand_made_set():
    points = [
        (0.10, 0.90),  # 0: best coverage
        (0.20, 0.85),  # 1: on the hull
        (0.30, 0.60),  # 2: non-dominated but under the chord 1-3
        (0.50, 0.50),  # 3: best precision
        (0.40, 0.40),  # 4: dominated by 3
        (0.15, 0.88),  # 5: on the hull between 0 and 1
        (0.05, 0.70),  # 6: dominated by 0
    ]
    assert pareto_optimal(points) == [0, 5, 1, 2, 3]
    assert pareto_frontier(points) == [0, 5, 1, 3]


def test_pareto_frontier_edge_cases():
    assert pareto_frontier([]) == []
    assert pareto_frontier([(0.3, 0.7)]) == [0]
    # collinear middle point is not a vertex of the hull
    assert pareto_frontier([(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]) == [0, 2]
    # duplicates count once
    assert pareto_frontier([(0.2, 0.8), (0.2, 0.8)]) == [0]
    with pytest.raises(ValueError, match=r"points\[1\]"):
        pareto_frontier([(0.1, 0.2), (0.3,)])


def test_paper_rule_keeps_non_dominated_hull_vertices_under_a_chord():
    points = [(0.0, 1.0), (1.0, 0.0), (0.4, 0.4), (0.2, 0.75), (0.19, 0.74)]
    # (0.4, 0.4) lies under the chord of the two ends: the concave chain drops it, but it is a
    # hull vertex no point dominates, so the paper's rule keeps it. (0.2, 0.75) is
    # non-dominated but inside the hull; (0.19, 0.74) is dominated by it.
    assert pareto_frontier(points) == [0, 1]
    assert paper_pareto_frontier(points) == [0, 2, 1]
    assert pareto_by_rule(points, "paper") == [0, 2, 1]
    assert pareto_by_rule(points, "concave") == [0, 1]
    with pytest.raises(ValueError, match="rule"):
        pareto_by_rule(points, "hull")


def test_paper_rule_on_the_hand_made_set_and_edge_cases():
    points = [(0.10, 0.90), (0.20, 0.85), (0.30, 0.60), (0.50, 0.50), (0.40, 0.40),
              (0.15, 0.88), (0.05, 0.70)]  # fmt: skip
    # (0.30, 0.60) is under the chord 1-3 and inside the hull: both rules drop it
    assert paper_pareto_frontier(points) == pareto_frontier(points)
    assert paper_pareto_frontier([]) == []
    assert paper_pareto_frontier([(0.3, 0.7)]) == [0]
    assert paper_pareto_frontier([(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]) == [0, 2]
    assert paper_pareto_frontier([(0.2, 0.8), (0.2, 0.8), (0.1, 0.1)]) == [0]


def test_the_two_rules_differ_on_a_few_percent_of_random_sets():
    rng = random.Random(0)
    differ = 0
    for _ in range(2000):
        points = [(rng.random(), rng.random()) for _ in range(6)]
        concave, paper = set(pareto_frontier(points)), set(paper_pareto_frontier(points))
        assert concave <= paper  # the paper's rule only adds lower-left hull vertices
        assert set(pareto_optimal(points)) >= paper
        differ += concave != paper
    assert 0.005 < differ / 2000 < 0.1
