"""The smoke config in one process, in two (DDP) and under FSDP2; two processes, one gradient.

Two CPU processes talk over gloo. Each layout is launched once (``accelerate launch``) and runs
both the smoke run and the fixed-samples gradient step (:mod:`tests.trainer.scale.launched`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.trainer.scale import launched

ROOT = Path(__file__).resolve().parents[3]
LAYOUTS = {
    "ddp": "configs/accelerate/ddp_cpu.yaml",
    "fsdp2": "configs/accelerate/fsdp2_cpu.yaml",
}


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _load(path: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path)


def _check_smoke(run_dir: Path, world_size: int, *, resumed: bool = False) -> None:
    model = _load(run_dir / "step_2")  # a plain model directory transformers loads
    assert type(model).__name__ == "LlamaForCausalLM"
    assert json.loads((run_dir / "step_2" / "config.json").read_text())["architectures"] == [
        "LlamaForCausalLM"
    ]
    metrics = _metrics(run_dir)
    assert [m["step"] for m in metrics] == ([1, 2, 3] if resumed else [1, 2])
    if resumed:  # the third step continued from step_2's weights and optimiser state
        assert _load(run_dir / "step_3") is not None
    assert all(m["dist/world_size"] == world_size for m in metrics)
    assert all(m["samples"] == 16 / world_size for m in metrics)  # 4 prompts × 4, split


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one")
    launched.run(out / "grads")
    return out


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def two_processes(request, tmp_path_factory) -> tuple[str, Path]:
    layout = request.param
    out = tmp_path_factory.mktemp(layout)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", LAYOUTS[layout],
        "--main_process_port", str(_free_port()),
        "tests/trainer/scale/launched.py", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return layout, out


def _free_port() -> int:
    from verifier_service.launcher import free_port

    return free_port()


def test_smoke_in_one_process(tmp_path):
    from typer.testing import CliRunner

    from trainer_client.train import cli

    result = CliRunner().invoke(
        cli, ["--config", str(ROOT / "configs/smoke_cpu.yaml"), "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    _check_smoke(tmp_path / "smoke", world_size=1)


def test_smoke_in_two_processes(two_processes):
    _layout, out = two_processes
    _check_smoke(out / "smoke" / "smoke", world_size=2, resumed=True)


def test_two_processes_give_the_gradient_of_one(one_process, two_processes):
    _layout, out = two_processes
    one = torch.load(one_process / "grads" / "grads.pt")
    two = torch.load(out / "grads" / "grads.pt")
    assert one["metrics"]["pass_rate"] not in (0.0, 1.0)  # the step has a learning signal
    assert two["metrics"]["dist/world_size"] == 2 and one["metrics"]["dist/world_size"] == 1
    assert sorted(one["grads"]) == sorted(two["grads"])
    for name, grad in one["grads"].items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(two["grads"][name], grad, rtol=1e-4, atol=1e-7, msg=name)


def test_the_saved_step_is_the_same_model(one_process, two_processes):
    _layout, out = two_processes
    one = _load(one_process / "grads" / "run" / "step_1").state_dict()
    two = _load(out / "grads" / "run" / "step_1").state_dict()
    for name, value in one.items():
        torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-6, msg=name)
