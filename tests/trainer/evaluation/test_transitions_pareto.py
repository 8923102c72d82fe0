"""Difficulty bins, the transition matrix and the Pareto frontier on hand-made inputs."""

import pytest

from trainer_client.evaluation import (
    BINS,
    difficulty_bin,
    difficulty_bins,
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
