"""EvalResult aggregates and JSON round trip; plots come out as real PNG files."""

import json
import math

import pytest

from trainer_client.evaluation import EvalResult, ProblemResult, pass_at_k, transition_matrix
from trainer_client.evaluation.plots import (
    plot_pass_at_k,
    plot_precision_coverage,
    plot_precision_diversity,
    plot_pvalues,
    plot_transitions,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_result(label="run", counts=((8, 2), (8, 0), (8, 8), (6, 3)), errors=(0, 0, 0, 2)):
    problems = [
        ProblemResult(
            name=f"p{i}",
            n=n,
            c=c,
            errors=e,
            diversity={"proofs": c, "tactic_shannon": i},
            paper_diversity={"proofs": n, "tactic_shannon": 10 * i},
        )
        for i, ((n, c), e) in enumerate(zip(counts, errors, strict=True))
    ]
    return EvalResult.from_problems(label, problems, n=8, config={"n": 8}, n_boot=200)


def test_aggregates_are_means_of_per_problem_pass_at_k():
    result = make_result()
    assert result.ks == list(range(1, 9))
    p1, se1 = result.precision
    assert p1 == pytest.approx((2 / 8 + 0 + 1 + 3 / 6) / 4)
    assert se1 > 0
    # pass@8: the problem with n = 6 < 8 and c = 3 counts as solved (1.0), not dropped.
    p8, _ = result.coverage
    assert p8 == pytest.approx((1 + 0 + 1 + 1) / 4)
    assert result.problems[0].pass_at_k[4] == pytest.approx(pass_at_k(8, 2, 4))
    assert sorted(result.problems[3].pass_at_k) == [1, 2, 4, 6]
    assert result.errors == 2
    assert result.difficulty_counts() == {"easy": 1, "medium": 1, "hard": 1, "unsolved": 1}
    # verified: mean over problems with a verified proof (p1 has none); paper: over all problems
    assert result.diversity["verified"]["tactic_shannon"] == pytest.approx((0 + 2 + 3) / 3)
    assert result.diversity["paper"]["tactic_shannon"] == pytest.approx((0 + 10 + 20 + 30) / 4)
    assert set(result.summary()["diversity_definitions"]) == {"paper", "verified"}


def test_older_flat_diversity_reads_as_the_verified_definition(tmp_path):
    data = make_result().to_dict()
    data["diversity"] = {"tactic_shannon": 1.5}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    assert EvalResult.from_json(path).diversity == {"verified": {"tactic_shannon": 1.5}}


def test_problem_without_any_verdict_is_kept_but_not_scored():
    problems = [ProblemResult("a", n=4, c=1), ProblemResult("b", n=0, c=0, errors=4)]
    result = EvalResult.from_problems("r", problems, n=4, n_boot=50)
    assert result.precision[0] == pytest.approx(0.25)
    assert result.summary()["problems_scored"] == 1
    assert result.summary()["samples_with_error"] == 4


def test_json_round_trip_is_strict_json(tmp_path):
    result = make_result()
    result.transitions = transition_matrix(
        {"p0": 0.0, "p1": 1.0}, result.correct_fractions()
    ).to_dict()
    path = result.to_json(tmp_path / "out" / "results.json")
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    loaded = EvalResult.from_json(path)
    assert loaded.label == result.label
    assert loaded.ks == result.ks
    assert loaded.pass_at_k == pytest.approx(result.pass_at_k)
    assert loaded.problems[0].pass_at_k == pytest.approx(result.problems[0].pass_at_k)
    assert loaded.transitions == result.transitions
    assert loaded.precision == pytest.approx(result.precision)
    assert loaded.diversity == result.diversity
    assert loaded.problems[2].paper_diversity == result.problems[2].paper_diversity


def test_from_json_rejects_other_files(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"schema": "something-else"}')
    with pytest.raises(ValueError, match="schema"):
        EvalResult.from_json(path)


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000


def test_plots_are_written_as_png(tmp_path):
    a = make_result("alpha=0.25")
    b = make_result("grpo", counts=((8, 5), (8, 0), (8, 8), (6, 6)))
    curves = {r.label: (r.ks, r.pass_at_k, r.pass_at_k_se) for r in (a, b)}
    assert_png(plot_pass_at_k(curves, tmp_path / "pass_at_k.png"))
    points = {r.label: (r.precision[0], r.coverage[0]) for r in (a, b)}
    points["base"] = (0.1, 0.5)
    errors = {r.label: (r.precision[1], r.coverage[1]) for r in (a, b)}
    assert_png(plot_precision_coverage(points, tmp_path / "pc.png", errors=errors, n=8))
    assert_png(plot_precision_coverage(points, tmp_path / "pcp.png", n=8, rule="paper"))
    with pytest.raises(ValueError, match="rule"):
        plot_precision_coverage(points, tmp_path / "bad.png", rule="hull")
    # every point at coverage 1 (a saturated task): one frontier point, no tick above 1
    flat = {"a": (0.4, 1.0), "b": (0.8, 1.0)}
    assert_png(plot_precision_coverage(flat, tmp_path / "flat.png", n=8))
    m = transition_matrix(a.correct_fractions(), b.correct_fractions())
    assert_png(plot_transitions(m, tmp_path / "transitions.png", vmax=10))
    lower = {"a": {"b": 0.01}, "b": {"a": 0.01}}
    upper = {"a": {"b": 0.5}, "b": {"a": 0.5}}
    assert_png(plot_pvalues(lower, upper, tmp_path / "pvalues.png", upper_name="pass@8"))
    diversity = {"base": (0.4, 6.3, 0.04, 0.5), "alpha=0": (0.87, 4.8, None)}
    assert_png(plot_precision_diversity(diversity, tmp_path / "pd.png"))
    with pytest.raises(ValueError, match="points"):
        plot_precision_diversity({}, tmp_path / "none.png")
    with pytest.raises(ValueError, match="curves"):
        plot_pass_at_k({}, tmp_path / "empty.png")
    assert not math.isnan(points["alpha=0.25"][0])


@pytest.mark.parametrize("rule", ["concave", "paper"])
def test_the_frontier_legend_names_its_rule(tmp_path, monkeypatch, rule):
    import trainer_client.evaluation.plots as plots
    from trainer_client.evaluation import PARETO_RULES

    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or save(fig, path))
    points = {"base": (0.1, 0.5), "a": (0.4, 0.8), "b": (0.8, 0.6)}
    assert_png(plot_precision_coverage(points, tmp_path / "pc.png", n=8, rule=rule))
    (legend,) = [ax.get_legend() for ax in figures[0].axes]
    texts = [t.get_text() for t in legend.get_texts()]
    assert f"Pareto frontier ({PARETO_RULES[rule]})" in texts
    assert {"base", "a", "b"} <= set(texts)
