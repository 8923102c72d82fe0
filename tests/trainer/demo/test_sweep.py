"""The CPU demo's sweep at toy size: fit, Dr. GRPO and α runs, evaluation on held-out and
training targets, p-values, plots, and one seed's sweep.json reproduced to the byte."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from examples.demo.config import load_demo_config
from examples.demo.sweep import display_name, distinct_correct, run_sweep, sweep_runs

pytestmark = pytest.mark.slow

if importlib.util.find_spec("math_verify") is None or importlib.util.find_spec("uvicorn") is None:
    pytest.skip(
        "the verifier extra (math-verify, uvicorn) is not installed", allow_module_level=True
    )

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "demo_cpu.yaml"


def toy_config(tmp_path, url, extra=()):
    return load_demo_config(
        CONFIG,
        [
            "demo.fit_steps=5",
            "demo.eval_limit=3",
            "sampling.prompts_per_step=4",
            "demo.eval_n=4",
            "logging.tensorboard=false",
            "logging.progress=false",
            *extra,
        ],
        env={},
        verifier_url=url,
        output_dir=str(tmp_path),
        max_steps=2,
    )


def test_the_demo_config_sweeps_base_dr_grpo_and_four_alphas():
    cfg = load_demo_config(CONFIG, [], env={})
    assert [r.label for r in sweep_runs(cfg)] == ["dr_grpo", "α=0", "α=0.25", "α=0.5", "α=0.999"]
    assert [r.objective for r in sweep_runs(cfg)] == ["dr_grpo", *["alpha_dpg"] * 4]
    assert cfg.demo.eval_n == 256
    assert cfg.demo.eval_ks == [1, 4, 16, 64, 256]
    assert cfg.demo.eval_splits == ["test", "train"]
    assert cfg.demo.seeds == 1
    assert display_name("dr_grpo") == "Dr. GRPO"
    assert display_name("α=0.25") == "α-DPG α=0.25"


def test_sweep_trains_evaluates_and_plots(tmp_path, capsys):
    # No verifier.url: the sweep starts its own local math verifier, as the README's demo does.
    cfg = toy_config(tmp_path, None, ["demo.alphas=[0.0, 0.999]"])
    assert cfg.train.verifier.url is None
    summary = run_sweep(cfg)
    assert "starting the local verifier (math checker)" in capsys.readouterr().err
    root = tmp_path / "demo"
    assert list(summary["models"]) == ["base", "dr_grpo", "α=0", "α=0.999"]
    assert summary["ks"] == [1, 4] and summary["seeds"] == [0]
    for model in summary["models"].values():
        for split in ("heldout", "train"):
            figures = model[split]
            assert 0.0 <= figures["pass@1"] <= figures["pass@4"] <= 1.0
            for key in ("pass@1_se", "pass@4_se", "distinct_correct", "distinct_correct_se"):
                assert figures[key] >= 0.0
            shares = figures["family_share"]
            assert set(shares) == {"product", "sum", "difference", "affine", "other"}
            assert sum(shares.values()) == pytest.approx(1.0)
    assert summary["models"]["dr_grpo"]["objective"] == "dr_grpo"
    assert summary["models"]["α=0"]["objective"] == "alpha_dpg"
    assert len(summary["splits"]["heldout"]["targets"]) == 3
    assert len(summary["splits"]["train"]["targets"]) == 3
    held_out = set(summary["splits"]["heldout"]["targets"])
    assert not held_out & set(summary["splits"]["train"]["targets"])
    written = json.loads((root / "sweep.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["eval_n"] == 4
    labels = set(written["models"])
    for split in ("heldout", "train"):
        assert set(written["pvalues"][split]) == {"pass@1", "pass@4"}
        for matrix in written["pvalues"][split].values():
            assert set(matrix) == labels
            for a, row in matrix.items():
                assert set(row) == labels - {a}
                assert all(0.0 <= p <= 1.0 for p in row.values())
        assert set(written["frontier"][split]) <= labels and written["frontier"][split]
        for label, matrix in written["transitions"][split].items():
            assert sum(map(sum, matrix["counts"])) == 3, label
    assert "timings" not in written
    timings = json.loads((root / "timings.json").read_text())
    assert timings["total_s"] >= timings["fit_s"] + timings["train_seed0_s"] - 1e-6
    assert timings["cpu_s"] > 0
    assert timings["verifications"] > 0
    assert (root / "base" / "config.json").is_file()
    assert (root / "seed0" / "dr_grpo" / "step_2" / "config.json").is_file()
    assert (root / "seed0" / "alpha0.999" / "step_2" / "config.json").is_file()
    assert (root / "seed0" / "eval" / "heldout" / "alpha0.samples.jsonl").is_file()
    # the Dr. GRPO run really trained with its own objective, not as α=0
    text = (root / "seed0" / "dr_grpo" / "config.yaml").read_text()
    assert "objective: dr_grpo" in text
    plots = ["precision_coverage", "pass_at_k", "precision_diversity", "pvalues",
             "transitions_dr_grpo", "transitions_alpha0", "transitions_alpha0.999"]  # fmt: skip
    for folder in (root / "plots", root / "plots" / "train"):
        for plot in plots:
            assert (folder / f"{plot}.png").stat().st_size > 0


def test_one_seed_gives_the_same_sweep_json_twice(tmp_path):
    """Reproducible to the last digit on one machine: base fit, training, sampling, verdicts
    and every statistic, in two fresh run directories."""
    files = []
    for name in ("first", "second"):
        cfg = toy_config(tmp_path / name, None, ["demo.alphas=[0.5]", "demo.eval_n=8"])
        run_sweep(cfg)
        files.append((tmp_path / name / "demo" / "sweep.json").read_bytes())
    assert files[0] == files[1]
    assert json.loads(files[0])["models"]["α=0.5"]["heldout"]["pass@8"] >= 0.0


def test_held_out_evaluation_counts_each_target_once():
    from examples.demo.sweep import _distinct_targets
    from examples.demo.task import demo_problems

    problems = demo_problems(96, split="test")  # 38 held-out targets, repeated
    once = _distinct_targets(problems)
    assert len(once) == 38
    assert {p.answer for p in once} == {p.answer for p in problems}


def test_a_base_fitted_to_another_task_or_fit_is_not_reused(tmp_path):
    from dataclasses import asdict

    from examples.demo.sweep import _fitted_as_asked
    from examples.demo.task import DemoTask

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    described = {"task": asdict(DemoTask()), "fit": {"steps": 10, "seed": 0}}
    (base / "base_distribution.json").write_text(json.dumps(described))
    assert _fitted_as_asked(base, 10, 0)
    assert not _fitted_as_asked(base, 11, 0)
    assert not _fitted_as_asked(base, 10, 1)
    described["task"]["target_max"] = 41  # the demo's earlier task
    (base / "base_distribution.json").write_text(json.dumps(described))
    assert not _fitted_as_asked(base, 10, 0)


def test_the_verdict_cache_asks_once_per_distinct_proof_and_never_keeps_errors():
    from examples.demo.sweep import VerdictCache
    from trainer_client.wire import VerifyResult

    asked: list[str] = []

    class Scripted:
        def verify(self, proofs):
            asked.extend(p["code"] for p in proofs)
            verdict = {"3*8": "valid", "3*9": "invalid"}
            return [VerifyResult(id=p["id"], verdict=verdict.get(p["code"], "error"))
                    for p in proofs]  # fmt: skip

    def request(code, i, answer="24"):
        return {"id": str(i), "checker": "math", "code": code, "answer": answer}

    cache = VerdictCache(Scripted())
    first = cache.verify([request("3*8", 0), request("3*8", 1), request("3*9", 2)])
    assert [r.verdict for r in first] == ["valid", "valid", "invalid"]
    second = cache.verify([request("3*8", 3), request("boom", 4), request("3*8", 5, "25")])
    assert [r.verdict for r in second] == ["valid", "error", "valid"]
    assert asked == ["3*8", "3*9", "boom", "3*8"]  # another answer is another question
    cache.verify([request("boom", 6)])
    assert asked[-1] == "boom"  # an error is asked again
    assert cache.asked == 5 and cache.reused == 2


def test_distinct_correct_counts_unsolved_problems_as_zero(tmp_path):
    rows = [
        {"problem": "a", "completion": "3*8", "verdict": "valid"},
        {"problem": "a", "completion": " 3*8 ", "verdict": "valid"},
        {"problem": "a", "completion": "20+4", "verdict": "valid"},
        {"problem": "a", "completion": "20+5", "verdict": "invalid"},
        {"problem": "b", "completion": "1+1", "verdict": "invalid"},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mean, se = distinct_correct(path, ["a", "b", "c"])
    assert mean == pytest.approx((2 + 0 + 0) / 3)
    assert se > 0
    assert distinct_correct(path)[0] == pytest.approx(1.0)


def test_the_demo_config_loads_overrides_and_names_bad_fields():
    from trainer_client.config import ConfigError

    cfg = load_demo_config(CONFIG, ["demo.alphas=[0, 0.5]", "loss.clip=5"], env={})
    assert cfg.demo.alphas == [0.0, 0.5] and cfg.train.loss.clip == 5.0
    assert cfg.train.run.max_steps > 0
    # the fitted base, cached in the run directory, is every run's starting point
    assert cfg.train.model.name_or_path == str(cfg.train.run_dir / "base")
    with pytest.raises(ConfigError, match=r"demo\.alphas"):
        load_demo_config(CONFIG, ["demo.alphas=[0.5, 2]"], env={})
    with pytest.raises(ConfigError, match=r"demo\.eval_nn: unknown key"):
        load_demo_config(CONFIG, ["demo.eval_nn=3"], env={})


def test_an_unknown_baseline_is_a_config_error_naming_the_key():
    from trainer_client.config import ConfigError

    with pytest.raises(ConfigError, match=r"demo\.baselines"):
        load_demo_config(CONFIG, ["demo.baselines=[ppo]"], env={})


def test_a_random_base_is_built_once_and_shared_by_the_sweep(tmp_path):
    # configs/smoke_cpu.yaml's model.random_init: the sweep must evaluate and fine-tune a saved
    # model, built once, not a fresh random one per run.
    from examples.demo.sweep import _demo_base

    smoke = CONFIG.with_name("smoke_cpu.yaml")
    overrides = ["demo.alphas=[0.0, 0.5]", "demo.fit_base=false"]
    cfg = load_demo_config(smoke, overrides, env={}, output_dir=str(tmp_path))
    base = _demo_base(cfg, cfg.train.run_dir)
    assert base == cfg.train.run_dir / "base"
    assert (base / "config.json").is_file()
