"""End to end: ``sieve-train`` on a tiny random GPT-2 through the real HTTP client against the real
verifier service (``math`` checker, uvicorn subprocess on loopback)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import yaml

from tests.trainer.models import save_tiny_gpt2
from trainer_client.checkpoint import latest_checkpoint
from trainer_client.config import load_config
from trainer_client.tracking import read_metrics

pytestmark = pytest.mark.slow

if importlib.util.find_spec("math_verify") is None or importlib.util.find_spec("uvicorn") is None:
    pytest.skip(
        "the verifier extra (math-verify, uvicorn) is not installed", allow_module_level=True
    )


@pytest.fixture(scope="module")
def verifier_url():
    from trainer_client.local_verifier import local_verifier

    with local_verifier(["math"]) as url:
        yield url


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """A random 2-layer GPT-2 and the demo tokenizer, saved like any HF checkpoint."""
    from examples.demo.tokenizer import char_tokenizer

    return save_tiny_gpt2(tmp_path_factory.mktemp("base"), char_tokenizer())


@pytest.fixture(scope="module")
def problems_file(tmp_path_factory):
    """One-digit answers: a random model's one-token completions hit some of them."""
    from trainer_client.data import Problem, save_problems

    problems = [
        Problem(name=f"add{a}{b}", statement=f"{a}+{b}=", checker="math", answer=str(a + b))
        for a in range(1, 5)
        for b in range(1, 5)
        if a + b < 10
    ]
    return save_problems(problems, tmp_path_factory.mktemp("data") / "problems.jsonl")


def write_config(tmp_path, base_model, problems_file, verifier_url):
    data = {
        "model": {"name_or_path": str(base_model)},
        "data": {"path": str(problems_file)},
        "sampling": {"k": 4, "prompts_per_step": 8, "max_new_tokens": 1, "max_prompt_tokens": 16},
        "loss": {"objective": "alpha_dpg", "alpha": 0.5},
        "optim": {"lr": 3e-2, "warmup_steps": 0},
        "verifier": {"url": verifier_url, "proof_timeout_s": 10},
        "logging": {"tensorboard": True, "progress": False},
        "run": {
            "output_dir": str(tmp_path / "runs"),
            "name": "straight",
            "max_steps": 3,
            "save_every": 1,
            "seed": 3,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def comparable(record):
    return {
        k: v
        for k, v in record.items()
        if not k.startswith(("time/", "verifier/client_", "verifier/latency"))
        and k != "tokens_per_s"
    }


def test_train_verify_checkpoint_and_resume(tmp_path, base_model, problems_file, verifier_url):
    from typer.testing import CliRunner

    from trainer_client.build import run_training
    from trainer_client.train import cli

    config = write_config(tmp_path, base_model, problems_file, verifier_url)
    result = CliRunner().invoke(cli, ["--config", str(config)])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "straight"

    # Parameters changed, every step was logged, checkpoints are HF models.
    from transformers import AutoModelForCausalLM

    start = AutoModelForCausalLM.from_pretrained(base_model).state_dict()
    final = AutoModelForCausalLM.from_pretrained(run_dir / "step_3").state_dict()
    assert any(not torch.equal(start[k], final[k]) for k in start)
    records = read_metrics(run_dir)
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(r["verifier/errors"] == 0 for r in records)  # the real service judged them all
    assert sum(r["pass_rate"] for r in records) > 0
    assert all(r["verifier/latency_s"] > 0 for r in records)
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "plots" / "training.png").stat().st_size > 0
    assert latest_checkpoint(run_dir).name == "step_3"

    # Resume from step 2 into a fresh run directory: the next step is identical.
    cfg = load_config(config, ["run.name=resumed"], env={}, resume=str(run_dir / "step_2"))
    last = run_training(cfg)
    assert last.name == "step_3"
    resumed = AutoModelForCausalLM.from_pretrained(last).state_dict()
    for key, value in final.items():
        assert torch.equal(value, resumed[key]), key
    again = read_metrics(tmp_path / "runs" / "resumed")
    assert [r["step"] for r in again] == [3]
    assert comparable(again[0]) == comparable(records[2])
