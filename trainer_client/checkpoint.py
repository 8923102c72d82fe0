"""Checkpoints that resume to the *identical* next step.

A checkpoint is a directory ``<run dir>/step_<N>/`` holding:

* the policy and tokenizer as ``save_pretrained`` writes them, so
  ``AutoModelForCausalLM.from_pretrained(path)`` (and ``sieve-eval``) can use it directly;
* ``trainer_state.pt``: optimiser, scheduler, step, data position, sampler position and the RNG
  states of python, numpy and torch (CPU and every CUDA device);
* ``config.yaml``: the run's configuration, for the record.

It is written to a temporary sibling and renamed into place, so a crash mid-save never leaves a
half-written ``step_<N>`` that ``latest`` would pick up.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "TRAINER_STATE",
    "capture_rng",
    "latest_checkpoint",
    "load_trainer_state",
    "restore_rng",
    "save_checkpoint",
]

TRAINER_STATE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def capture_rng() -> dict[str, Any]:
    """Every RNG a training step draws from (dropout, shuffling, sampling without a seed)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | Path,
    *,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    trainer_state: dict[str, Any],
    config_yaml: str | None = None,
    model_state: dict[str, torch.Tensor] | None = None,
    optimizer_state: dict[str, Any] | None = None,
) -> Path:
    """Write one checkpoint directory (see the module docstring); returns its path.

    ``model_state`` and ``optimizer_state`` replace the objects' own state dicts: a sharded
    (FSDP2) run passes the full tensors it gathered, so the directory is a plain model.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    if model_state is None:
        model.save_pretrained(tmp, safe_serialization=True)
    else:
        model.save_pretrained(tmp, state_dict=model_state, safe_serialization=True)
        _plain_architectures(tmp)
    tokenizer.save_pretrained(tmp)
    torch.save(
        {
            **trainer_state,
            "optimizer": optimizer.state_dict() if optimizer_state is None else optimizer_state,
            "scheduler": scheduler.state_dict(),
            "rng": capture_rng(),
        },
        tmp / TRAINER_STATE,
    )
    if config_yaml is not None:
        (tmp / "config.yaml").write_text(config_yaml)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def _plain_architectures(directory: Path) -> None:
    """FSDP2 renames a module's class (``FSDPLlamaForCausalLM``); record the model's own."""
    file = directory / "config.json"
    config = json.loads(file.read_text())
    names = config.get("architectures") or []
    fixed = [name.removeprefix("FSDP") for name in names]
    if fixed != names:
        config["architectures"] = fixed
        file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_trainer_state(path: str | Path) -> dict[str, Any]:
    """The trainer state saved with a checkpoint (optimiser, scheduler, RNG, step, ...)."""
    file = Path(path) / TRAINER_STATE
    if not file.is_file():
        raise FileNotFoundError(f"{path}: not a trainer checkpoint (no {TRAINER_STATE})")
    # The state holds numpy RNG arrays and plain python objects written by this module.
    return torch.load(file, map_location="cpu", weights_only=False)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The ``step_<N>`` directory with the largest N under ``run_dir``, if any."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    found = [
        (int(match.group(1)), child)
        for child in run_dir.iterdir()
        if (match := _STEP_DIR.match(child.name)) and (child / TRAINER_STATE).is_file()
    ]
    return max(found)[1] if found else None
