"""The demo's config: a ``demo:`` section of sweep settings beside an ordinary training config.

A demo config file is a trainer config (:class:`~trainer_client.config.TrainConfig`'s sections)
plus a ``demo:`` section (:class:`SweepSettings`). ``model.name_or_path`` may be left out: the
demo fits its own base model under ``<run dir>/base``; ``data.path`` too: the training
problems are the demo task's (``data.split``, ``data.limit``). Overrides ``demo.<field>=value``
go to the sweep settings, every other one to the training config, with the trainer's parser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trainer_client.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    read_config_file,
    resolve_config,
)
from trainer_client.objectives import OBJECTIVES

__all__ = ["DemoConfig", "SweepSettings", "load_demo_config"]

SECTION = "demo"

Split = Literal["test", "train"]
SPLITS: tuple[Split, ...] = ("test", "train")


class SweepSettings(BaseModel):
    """What the sweep trains and how it evaluates."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: Fit the demo's base model (cached under ``<run dir>/base``); false: start every run
    #: from the training config's own model (e.g. ``model.random_init``).
    fit_base: bool = True
    #: Steps of the base model's fit.
    fit_steps: int = Field(default=600, ge=1)
    #: Objectives trained beside the α values (each under ``<run dir>/<objective>``):
    #: ``dr_grpo`` is the paper's RL baseline.
    baselines: list[str] = Field(default_factory=list)
    #: One α-DPG run per α (each under ``<run dir>/alpha<α>``).
    alphas: list[float] = Field(default_factory=list)
    #: The demo targets evaluated, each split a table of its own: ``test`` (held out, the
    #: paper's claim) and ``train`` (the targets fine-tuning saw).
    eval_splits: list[Split] = Field(default_factory=lambda: list(SPLITS))
    #: Targets drawn from each split (each counted once); none: all of them.
    eval_limit: int | None = Field(default=None, ge=1)
    #: Samples per target; pass@k is reported for every k of ``eval_ks`` up to it.
    eval_n: int = Field(default=256, ge=1)
    eval_ks: list[int] = Field(default_factory=lambda: [1, 4, 16, 64, 256])
    #: Fine-tuning and evaluation are repeated for ``run.seed``, ``run.seed + 1``, … this many
    #: times; figures are then the mean ± the standard error over seeds.
    seeds: int = Field(default=1, ge=1)
    #: Seed of the base model's fit: one base (the "pretrained model") for every seed.
    fit_seed: int = 0

    @field_validator("baselines")
    @classmethod
    def _registered(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown {unknown}; expected names of {sorted(OBJECTIVES)}")
        return value

    @field_validator("alphas")
    @classmethod
    def _alphas_in_range(cls, value: list[float]) -> list[float]:
        for alpha in value:
            if not 0.0 <= alpha <= 1.0:
                raise ValueError(f"every α must lie in [0, 1], got {alpha}")
        return value

    @field_validator("eval_splits")
    @classmethod
    def _some_split(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"name each of test, train at most once, at least one; got {value}")
        return value

    @field_validator("eval_ks")
    @classmethod
    def _positive_ks(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value) or sorted(set(value)) != value:
            raise ValueError(f"expected increasing positive k values, got {value}")
        return value


class DemoConfig(BaseModel):
    """The sweep's settings and the training config every run of it starts from."""

    model_config = ConfigDict(extra="forbid")

    demo: SweepSettings
    train: TrainConfig

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            {SECTION: self.demo.model_dump(mode="json"), **self.train.to_dict()}, sort_keys=False
        )


def load_demo_config(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    **shortcuts: Any,
) -> DemoConfig:
    """A demo config file with ``overrides`` (``demo.x=…`` and ``section.x=…``), the
    ``SIEVE_TRAIN_*`` env vars and the trainer's named ``shortcuts`` applied."""
    data = read_config_file(path)
    own = [item for item in overrides if item.strip().startswith(f"{SECTION}.")]
    rest = [item for item in overrides if item not in own]
    sweep_data = apply_overrides({SECTION: data.pop(SECTION, None) or {}}, own, schema=DemoConfig)[
        SECTION
    ]
    try:
        sweep = SweepSettings.model_validate(sweep_data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    model = data.setdefault("model", {})
    fitted = sweep.fit_base and not model.get("name_or_path")
    if fitted:
        model["name_or_path"] = ""  # the fitted base's path, known once the run dir is
    train = resolve_config(data, rest, env=env, **shortcuts)
    if fitted:
        train.model.name_or_path = str(train.run_dir / "base")
    return DemoConfig(demo=sweep, train=train)


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join([SECTION, *(str(part) for part in error["loc"])])
        if error["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key")
        else:
            lines.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return "invalid demo config:\n  " + "\n  ".join(lines)
