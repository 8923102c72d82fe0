"""``sieve-train``'s command line: config resolution and errors, without training."""

from __future__ import annotations

import subprocess
import sys

import yaml
from typer.testing import CliRunner

from trainer_client.train import cli

BASE = {"model": {"name_or_path": "gpt2"}, "data": {"path": "problems.jsonl"}}


def test_print_config_applies_shortcuts_and_overrides(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(BASE))
    args = [
        "--config",
        str(path),
        "--alpha",
        "0.25",
        "--verifier-url",
        "http://v:8000",
        "--set",
        "optim.lr=1e-5",
        "--max-steps",
        "7",
        "--print-config",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    assert resolved["loss"]["alpha"] == 0.25
    assert resolved["verifier"]["url"] == "http://v:8000"
    assert resolved["optim"]["lr"] == 1e-5
    assert resolved["run"]["max_steps"] == 7


def test_unknown_key_is_a_usage_error_naming_it(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**BASE, "optim": {"learning_rate": 1e-5}}))
    result = CliRunner().invoke(cli, ["--config", str(path)])
    assert result.exit_code == 2
    assert "optim.learning_rate: unknown key" in result.output


def test_module_entry_point_and_no_vllm_import(tmp_path):
    """``python -m trainer_client.train`` (what ``accelerate launch -m`` runs) works, and
    importing the trainer does not import vLLM."""
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(BASE))
    code = (
        "import sys, runpy; sys.argv = ['x', '--config', sys.argv[1], '--print-config'];"
        "import trainer_client.loop, trainer_client.rollout;"
        "assert 'vllm' not in sys.modules;"
        "runpy.run_module('trainer_client.train', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["model"]["name_or_path"] == "gpt2"
