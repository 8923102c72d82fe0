"""Loading the trainer config: YAML, env vars, overrides, shortcuts and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trainer_client.config import ConfigError, TrainConfig, load_config

REPO = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"model": {"name_or_path": "gpt2"}, "data": {"path": "problems.jsonl"}}


def test_defaults_and_yaml_values(tmp_path):
    cfg = load_config(write(tmp_path, {**BASE, "optim": {"lr": 3e-5}}), env={})
    assert cfg.optim.lr == 3e-5
    assert cfg.loss.objective == "alpha_dpg"
    assert cfg.l_max == cfg.sampling.max_new_tokens


def test_precedence_env_then_set_then_shortcuts(tmp_path):
    path = write(tmp_path, {**BASE, "loss": {"alpha": 0.1}, "optim": {"lr": 1e-3}})
    env = {"SIEVE_TRAIN_LOSS__ALPHA": "0.2", "SIEVE_TRAIN_OPTIM__LR": "5e-4", "OTHER": "x"}
    cfg = load_config(path, ["loss.alpha=0.3", "optim.betas=[0, 0.5]"], env=env, alpha=0.25)
    assert cfg.loss.alpha == 0.25  # shortcut beats --set beats env beats YAML
    assert cfg.optim.lr == 5e-4  # env beats YAML
    assert cfg.optim.betas == (0.0, 0.5)
    cfg = load_config(path, [], env={}, verifier_url="http://v:8000", max_steps=7, alpha=None)
    assert cfg.verifier.url == "http://v:8000" and cfg.run.max_steps == 7
    assert cfg.loss.alpha == 0.1  # None means "not given"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({**BASE, "optim": {"lrr": 1}}, "optim.lrr: unknown key"),
        ({**BASE, "bogus": {}}, "bogus: unknown key"),
        ({"data": {"path": "x"}}, "model: required"),
        ({**BASE, "loss": {"alpha": 1.5}}, "loss.alpha"),
        ({**BASE, "loss": {"objective": "ppo"}}, "loss.objective"),
        # the sweep's fields are the demo's (examples/demo/config.py), not the trainer's
        ({**BASE, "run": {"alphas": [0.5]}}, "run.alphas: unknown key"),
        ({**BASE, "model": {"demo_fit_steps": 5, "name_or_path": "gpt2"}}, "demo_fit_steps"),
        ({**BASE, "model": {}}, "name_or_path: required unless model.random_init"),
        ({**BASE, "model": {"random_init": True}}, "random_init needs model.architecture"),
    ],
)
def test_bad_config_names_the_field(tmp_path, data, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(write(tmp_path, data), env={})


def test_bad_overrides(tmp_path):
    path = write(tmp_path, BASE)
    with pytest.raises(ConfigError, match=r"section\.field=value"):
        load_config(path, ["optim.lr"], env={})
    with pytest.raises(ConfigError, match=r"optim\.nope: unknown key"):
        load_config(path, ["optim.nope=1"], env={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", env={})


def test_alpha_one_is_refused_for_alpha_dpg(tmp_path):
    with pytest.raises(ConfigError, match=r"0\.999"):
        load_config(write(tmp_path, {**BASE, "loss": {"alpha": 1.0}}), env={})


def test_yaml_round_trip(tmp_path):
    cfg = load_config(write(tmp_path, BASE), ["optim.betas=[0.8, 0.9]"], env={})
    again = TrainConfig.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg


@pytest.mark.parametrize("name", ["paper_alpha_dpg.yaml", "smoke_cpu.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(REPO / "configs" / name, env={})
    assert cfg.run.max_steps > 0


def test_paper_recipe():
    """The values of the trainer page's table for ``configs/paper_alpha_dpg.yaml``."""
    cfg = load_config(REPO / "configs" / "paper_alpha_dpg.yaml", env={})
    assert cfg.model.name_or_path == "deepseek-ai/DeepSeek-Prover-V1.5-SFT"
    assert cfg.data.path.endswith("mff-lwb-10k-seen.parquet")
    assert cfg.sampling.prompts_per_step == 128 and cfg.sampling.k == 4
    assert cfg.run.max_steps == 200 and cfg.optim.lr == 2e-6
    assert cfg.optim.warmup_ratio == 0.05 and cfg.optim.mixed_precision == "fp16"
    assert cfg.optim.max_grad_norm == 1.0 and cfg.optim.weight_decay == 0.0
    assert cfg.sampling.max_new_tokens == 1024 and cfg.loss.clip == 10.0
    assert cfg.sampling.max_prompt_tokens == 1024 and cfg.sampling.temperature == 1.0
    assert cfg.verifier.proof_timeout_s == 120


@pytest.mark.parametrize("sampling", [{"temperature": 0.7}, {"top_p": 0.95}])
def test_rft_refuses_a_tempered_base(tmp_path, sampling):
    data = {**BASE, "loss": {"objective": "rft"}, "sampling": sampling}
    with pytest.raises(ConfigError, match=r"sampling\.temperature.*sampling\.top_p"):
        load_config(write(tmp_path, data), env={})
    # α-DPG at the same settings is fine: one tempered π serves reward and gradient.
    load_config(write(tmp_path, {**BASE, "sampling": sampling}), env={})


def test_paper_recipe_is_fp16():
    cfg = load_config(REPO / "configs" / "paper_alpha_dpg.yaml", env={})
    assert cfg.optim.mixed_precision == "fp16" and cfg.model.dtype == "float32"
