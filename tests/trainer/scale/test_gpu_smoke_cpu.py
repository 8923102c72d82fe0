"""benchmarks/gpu_smoke.py's CPU dry run (``--device cpu --tiny``), so the GPU check cannot rot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "gpu_smoke.py"


def test_gpu_smoke_runs_on_cpu(capsys):
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.set_num_threads(1)
    code = module.main(["--device", "cpu", "--tiny", "--steps", "2", "--new-tokens", "8"])
    out = capsys.readouterr().out
    assert code == 0
    assert "step 1:" in out and "step 2:" in out
    assert "[vllm] skipped: vLLM needs a CUDA device" in out
    # Before any update π = a: the first step's log-ratio is (numerically) zero.
    first = next(line for line in out.splitlines() if "step 1:" in line)
    ratio = float(first.split("ref_logratio_max_abs")[1].split()[0])
    assert ratio <= 1e-3
