"""``python -m examples.demo``: the demo's own command, run from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "examples.demo", "--config", "configs/demo_cpu.yaml", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_print_config_shows_the_sweep_and_the_training_config():
    done = _demo("--print-config", "--set", "demo.eval_n=8", "--output-dir", "elsewhere")
    assert done.returncode == 0, done.stderr
    printed = yaml.safe_load(done.stdout)
    assert printed["demo"]["eval_n"] == 8
    assert printed["demo"]["baselines"] == ["dr_grpo"]
    assert printed["model"]["name_or_path"] == str(Path("elsewhere") / "demo" / "base")
    assert printed["run"]["output_dir"] == "elsewhere"


def test_a_bad_override_is_a_usage_error_naming_the_key():
    done = _demo("--set", "demo.alphas=[2]")
    assert done.returncode == 2
    assert "demo.alphas" in done.stderr


def test_seeds_sets_the_number_of_repeats_and_refuses_zero():
    done = _demo("--print-config", "--seeds", "3")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["demo"]["seeds"] == 3
    refused = _demo("--print-config", "--seeds", "0")
    assert refused.returncode == 2
    assert "--seeds" in refused.stderr
