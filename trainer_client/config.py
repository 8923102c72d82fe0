"""The trainer's one configuration object: a YAML file, then env vars, then command-line overrides.

Every run is described by a single :class:`TrainConfig` so that a checkpoint can store exactly what
produced it (``config.yaml`` beside the weights) and a resumed run can check it continues the same
experiment. Sections mirror the parts of a step: which model, which prompts, how to sample, which
objective, how to optimise, where the verifier is, what to log, and the run's bookkeeping.

Precedence, lowest first: field defaults < YAML file < ``SIEVE_TRAIN_<SECTION>__<FIELD>`` env vars
< ``--set section.field=value`` < named shortcuts (``--alpha``, ``--verifier-url`` ...).
Unknown keys are errors that name the offending key, so a typo never silently trains with a default.
Env var and ``--set`` values are read by the type of the field they set, never as YAML 1.1 (where
``no`` is false): see :mod:`trainer_client.overrides`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trainer_client.objectives import ALPHA_DPG, OBJECTIVES, Objective
from trainer_client.overrides import UNKNOWN, NotAccepted, field_type, read_value

__all__ = [
    "ConfigError",
    "DataConfig",
    "LoggingConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "SamplingConfig",
    "TrainConfig",
    "VerifierConfig",
    "apply_overrides",
    "load_config",
    "read_config_file",
    "resolve_config",
]

ENV_PREFIX = "SIEVE_TRAIN_"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    #: HF hub id or local path of the policy's starting point (the base model ``a``); required
    #: unless ``random_init``.
    name_or_path: str | None = None
    #: Start from a randomly initialised model of shape ``architecture`` with ``tokenizer``'s
    #: vocabulary (saved under ``<run dir>/base``; nothing is downloaded): smoke runs, benchmarks.
    random_init: bool = False
    #: The frozen reference ``a``; defaults to ``name_or_path`` (a frozen copy of the start).
    reference: str | None = None
    #: Tokenizer path; defaults to ``name_or_path``.
    tokenizer: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    #: A ``transformers`` config (what ``config.json`` holds, ``model_type`` included): the shape
    #: of a ``random_init`` model; otherwise ``--plan`` reads the shape from here when
    #: ``name_or_path`` is not a local directory.
    architecture: dict[str, Any] | None = None
    #: Parameter count for ``--plan`` when neither a local config nor ``architecture`` is given.
    num_parameters: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _a_start(self) -> ModelConfig:
        if self.random_init:
            if self.architecture is None or self.tokenizer is None:
                raise ValueError("random_init needs model.architecture and model.tokenizer")
        elif self.name_or_path is None:
            raise ValueError("name_or_path: required unless model.random_init is true")
        return self


class DataConfig(_Section):
    #: A problems file (``.jsonl``, ``.parquet``, LeanDojo ``.json``); none: the caller passes
    #: the problems (``build_trainer(problems=...)``).
    path: str | None = None
    split: str | None = None
    limit: int | None = Field(default=None, ge=1)
    shuffle: bool = True
    #: Wrap prompts in the tokenizer's chat template (``add_generation_prompt``), as the paper's
    #: pipeline does; a tokenizer without one gets the plain prompt either way.
    chat_template: bool = True
    #: A system message for training prompts (the paper: none; its evaluation adds one).
    system_prompt: str | None = None


class SamplingConfig(_Section):
    backend: Literal["hf", "vllm"] = "hf"
    #: Samples per prompt (the paper: 4).
    k: int = Field(default=4, ge=1)
    #: Prompts per optimiser step, over all processes (the paper: 128).
    prompts_per_step: int = Field(default=128, ge=1)
    #: The policy π is the distribution sampled from: at temperature ≠ 1 or top-p < 1 the
    #: pseudo-reward and the gradient both use the tempered, nucleus-filtered log π.
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(default=1024, ge=1)
    #: Problems whose prompt is longer are left out of training (and counted), never truncated.
    max_prompt_tokens: int = Field(default=1024, ge=1)
    #: Sequences per ``generate`` call; none: all of this process's prompts at once.
    batch_size: int | None = Field(default=None, ge=1)
    #: ``backend: vllm``: the share of the GPU's memory the colocated engine reserves.
    vllm_gpu_memory_utilization: float = Field(default=0.3, gt=0, lt=1)

    @property
    def tempered(self) -> bool:
        """Whether the sampling distribution differs from the model's own (T ≠ 1 or top-p < 1)."""
        return self.temperature != 1.0 or self.top_p < 1.0


class LossConfig(_Section):
    #: A name in :data:`trainer_client.objectives.OBJECTIVES`.
    objective: str = ALPHA_DPG.name
    #: α of the divergence: 0 forward KL (coverage) ... 0.999 reverse KL (precision).
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Pseudo-reward ceiling M.
    clip: float = Field(default=10.0, gt=0)
    #: Ẑ when no sample of a prompt is verified.
    z_floor: float = Field(default=1e-4, gt=0)
    #: β of a KL(π‖a) penalty (``dr_grpo``'s "High-KL" variant); 0 disables it.
    kl_coef: float = Field(default=0.0, ge=0.0)
    #: Constant length normaliser; none: ``sampling.max_new_tokens``.
    l_max: int | None = Field(default=None, ge=1)

    @field_validator("objective")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in OBJECTIVES:
            raise ValueError(f"expected one of {', '.join(sorted(OBJECTIVES))}")
        return value


class OptimConfig(_Section):
    lr: float = Field(default=2e-6, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0)
    #: Fraction of ``run.max_steps`` spent warming up linearly (ignored if ``warmup_steps`` set).
    warmup_ratio: float = Field(default=0.05, ge=0, le=1)
    warmup_steps: int | None = Field(default=None, ge=0)
    #: Learning-rate shape after warm-up.
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    #: Sequences per forward/backward; the step's batch is accumulated over micro-batches.
    #: Rounded down to whole prompt groups. None: the whole batch at once.
    micro_batch_size: int | None = Field(default=None, ge=1)
    #: Autocast for the policy and the reference alike; ``fp16`` adds a loss scaler (the
    #: paper's recipe). On a CPU, ``fp16`` autocasts and scales without ``accelerate``.
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"


class VerifierConfig(_Section):
    #: One URL or several (load-balanced); none: start a local ``math`` verifier subprocess.
    url: str | list[str] | None = None
    api_key: str | None = None
    #: Per-proof checking budget sent with each item (the paper: 120 s).
    proof_timeout_s: float = Field(default=120.0, gt=0)
    #: HTTP timeout of one request.
    request_timeout_s: float = Field(default=300.0, gt=0)
    max_batch: int = Field(default=64, ge=1)
    max_concurrency: int = Field(default=8, ge=1)
    retries: int = Field(default=5, ge=0)
    #: Checkers the local verifier loads when ``url`` is none.
    local_checkers: list[str] = Field(default_factory=lambda: ["math"])


class LoggingConfig(_Section):
    jsonl: bool = True
    tensorboard: bool = True
    #: W&B project; none: W&B is not imported.
    wandb_project: str | None = None
    wandb_entity: str | None = None
    progress: bool = True


class RunConfig(_Section):
    name: str = "run"
    output_dir: str = "runs"
    max_steps: int = Field(default=200, ge=0)
    seed: int = 0
    #: Save ``step_<N>/`` every this many steps (0: only at the end).
    save_every: int = Field(default=50, ge=0)
    #: ``latest`` (newest ``step_*`` in the run directory) or a checkpoint directory.
    resume: str | None = None


class TrainConfig(_Section):
    model: ModelConfig
    data: DataConfig = Field(default_factory=DataConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        objective = self.objective
        if objective.uses_alpha and self.loss.alpha >= 1.0:
            raise ValueError("loss.alpha = 1 gives wrong proofs -inf; use 0.999 for the RL end")
        if not objective.samples_policy and self.sampling.tempered:
            # The estimator needs samples from a itself; a tempered or nucleus-filtered a is
            # another distribution, and there is no policy π to score instead.
            raise ValueError(
                f"loss.objective = {objective.name} samples the base model a and needs "
                "sampling.temperature = 1 and sampling.top_p = 1 "
                f"(got sampling.temperature = {self.sampling.temperature}, "
                f"sampling.top_p = {self.sampling.top_p})"
            )
        return self

    @property
    def l_max(self) -> int:
        return self.loss.l_max or self.sampling.max_new_tokens

    @property
    def objective(self) -> Objective:
        """The registered record of ``loss.objective``."""
        return OBJECTIVES[self.loss.objective]

    @property
    def needs_reference(self) -> bool:
        """Whether the run scores samples under the frozen base model ``a``: the objective's
        advantages read it, or a KL penalty is measured against it."""
        return self.objective.needs_reference or self.loss.kl_coef > 0

    @property
    def run_dir(self) -> Path:
        return Path(self.run.output_dir) / self.run.name

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    **shortcuts: Any,
) -> TrainConfig:
    """Build the run's config from a YAML file, ``SIEVE_TRAIN_*`` env vars and overrides.

    ``overrides`` are ``section.field=value`` strings, each value read by the type of the field
    it sets (:mod:`trainer_client.overrides`): a string field gets the text as written (``no``,
    ``null``, ``1e-3``), a number field ``0.25``, a list ``[0, 0.5]``; env vars alike.
    ``shortcuts`` are the CLI's named flags; ``None`` means unset: ``verifier_url``, ``alpha``,
    ``output_dir``, ``max_steps``, ``resume``, ``name``, ``seed``.
    """
    data = read_config_file(path) if path is not None else {}
    return resolve_config(data, overrides, env=env, **shortcuts)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML config file's sections, as written."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return loaded


def resolve_config(
    data: Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    **shortcuts: Any,
) -> TrainConfig:
    """``data`` (a config file's sections) with ``SIEVE_TRAIN_*`` env vars, ``overrides`` and
    ``shortcuts`` applied in that order (see :func:`load_config`), validated."""
    data = _deep_copy(data)
    env = os.environ if env is None else env
    for key, value in sorted(env.items()):
        if key.startswith(ENV_PREFIX):
            dotted = key[len(ENV_PREFIX) :].lower().replace("__", ".")
            origin = f"env var {key}"
            _set_dotted(data, dotted, _read(TrainConfig, dotted, value, origin), origin=origin)
    data = apply_overrides(data, overrides)
    named = {
        "verifier_url": "verifier.url",
        "alpha": "loss.alpha",
        "output_dir": "run.output_dir",
        "max_steps": "run.max_steps",
        "resume": "run.resume",
        "name": "run.name",
        "seed": "run.seed",
    }
    for option, value in shortcuts.items():
        if option not in named:
            raise ConfigError(f"unknown shortcut option {option!r}; known: {sorted(named)}")
        if value is not None:
            _set_dotted(data, named[option], value, origin=f"--{option.replace('_', '-')}")
    return TrainConfig.from_dict(data)


def apply_overrides(
    data: Mapping[str, Any],
    overrides: Sequence[str],
    schema: type[BaseModel] | None = None,
) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b.c=value`` override applied, each value read
    by the type of the field of ``schema`` (default :class:`TrainConfig`) it sets."""
    result = _deep_copy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.field=value")
        dotted, raw = item.split("=", 1)
        dotted, origin = dotted.strip(), f"--set {item}"
        value = _read(schema or TrainConfig, dotted, raw, origin)
        _set_dotted(result, dotted, value, origin=origin)
    return result


def _read(schema: type[BaseModel], dotted: str, raw: str, origin: str) -> Any:
    """``raw`` read as the type of the field ``dotted`` names (see :mod:`.overrides`); the text
    itself for a key that names no field, which validation then refuses by name."""
    annotation = field_type(schema, [part for part in dotted.split(".") if part])
    if annotation is UNKNOWN:
        return raw
    try:
        return read_value(raw, annotation)
    except NotAccepted as refused:
        raise ConfigError(f"{origin}: {dotted} must be {refused.accepted} (got {raw!r})") from None


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, *, origin: str) -> None:
    parts = [part for part in dotted.split(".") if part]
    if len(parts) < 2:
        raise ConfigError(f"{origin}: {dotted!r} must name a section and a field (e.g. optim.lr)")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "<config>"
        if error["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key")
        elif error["type"] == "missing":
            lines.append(f"{where}: required")
        else:
            lines.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return "invalid trainer config:\n  " + "\n  ".join(lines)
