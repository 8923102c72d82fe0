"""``sieve-train --plan``: the per-GPU memory a run needs, worked out before any weight is loaded.

A 7B run that does not fit fails after minutes of loading, or hours in, at the first long batch.
The plan reads the model's *shape* only: its ``config.json`` (a local directory), the run config's
``model.architecture``, or, failing both, ``model.num_parameters``. The parameter count is exact:
the model is built on PyTorch's ``meta`` device, which allocates nothing.

What one GPU holds, with FSDP2 over ``N`` processes (``N = 1``: nothing is sharded):

* **static**, for the whole run: the policy's master weights, their gradients and AdamW's two
  moments (all sharded 1/N, in the master dtype), the frozen reference (sharded 1/N, or on the
  CPU when offloaded), and the vLLM engine's reservation (``gpu_memory_utilization`` of the GPU)
  when vLLM samples;
* **transient**, the larger of
  - the training step: the activations of one micro-batch (with gradient checkpointing, each
    layer's input plus one layer recomputed), the response's logits and their float32
    log-softmax, and the FSDP units gathered at once (the root, and one layer plus the prefetched
    next); without FSDP, autocast's cached low-precision copy of the weights;
  - generation with ``transformers``: the full weights gathered for ``generate`` (FSDP) and the
    KV cache of one generation batch;
* a fixed allowance for the CUDA context and the allocator's fragmentation.

Activation sizes follow Korthikanti et al. (2022) for a pre-norm decoder with a gated MLP and a
fused (flash / SDPA) attention that keeps no ``S×S`` scores: per layer and token, ``8h + 4I``
values in the compute dtype. It is an estimate of the peak, to plan a launch, not a promise to
the byte: figures measured on a GPU (``benchmarks/gpu_smoke.py``) are the check.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from trainer_client.config import ConfigError, TrainConfig

__all__ = [
    "GiB",
    "MemoryPlan",
    "ModelShape",
    "PlanRow",
    "config_from_architecture",
    "model_shape",
    "plan_memory",
]

GiB = 1024**3
#: CUDA context, NCCL buffers and allocator fragmentation: a fixed allowance per GPU.
RUNTIME_OVERHEAD_BYTES = int(1.5 * GiB)
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


class Dims(NamedTuple):
    """A model's known sizes (:attr:`ModelShape.dims`)."""

    hidden_size: int
    num_layers: int
    vocab_size: int
    kv_size: int
    intermediate_size: int


@dataclass(frozen=True)
class ModelShape:
    """What the plan needs of a model: parameter counts and the sizes activations scale with."""

    num_parameters: int
    #: Parameters of the largest decoder layer (one FSDP unit); 0 when unknown.
    layer_parameters: int = 0
    hidden_size: int | None = None
    intermediate_size: int | None = None
    num_layers: int | None = None
    vocab_size: int | None = None
    #: ``num_key_value_heads × head_dim``: the width of K (and of V) per layer.
    kv_size: int | None = None
    source: str = ""

    @property
    def known_shape(self) -> bool:
        return self.dims is not None

    @property
    def dims(self) -> Dims | None:
        """The sizes activations scale with, when all of them are known."""
        h, layers, vocab, kv = self.hidden_size, self.num_layers, self.vocab_size, self.kv_size
        if h is None or layers is None or vocab is None or kv is None:
            return None
        return Dims(h, layers, vocab, kv, self.intermediate_size or 4 * h)

    @property
    def root_parameters(self) -> int:
        """Parameters outside the decoder layers (embeddings, head, final norm): the root unit."""
        if not self.layer_parameters or not self.num_layers:
            return 0
        return max(0, self.num_parameters - self.layer_parameters * self.num_layers)


@dataclass(frozen=True)
class PlanRow:
    name: str
    bytes: int
    note: str = ""


@dataclass
class MemoryPlan:
    """The per-GPU budget; ``total_bytes`` is static + the larger transient + the allowance."""

    gpus: int
    shape: ModelShape
    static: list[PlanRow] = field(default_factory=list)
    training: list[PlanRow] = field(default_factory=list)
    generation: list[PlanRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gpu_memory_bytes: int | None = None

    @property
    def training_bytes(self) -> int:
        return sum(row.bytes for row in self.training)

    @property
    def generation_bytes(self) -> int:
        return sum(row.bytes for row in self.generation)

    @property
    def total_bytes(self) -> int:
        static = sum(row.bytes for row in self.static)
        return static + max(self.training_bytes, self.generation_bytes) + RUNTIME_OVERHEAD_BYTES

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GiB

    def render(self) -> str:
        """The plan as text; its last line is ``plan: X GiB per GPU on N GPUs``."""
        shape = self.shape
        lines = [f"model: {shape.num_parameters / 1e9:.3f} B parameters ({shape.source})"]
        width = max(len(r.name) for r in [*self.static, *self.training, *self.generation])

        def block(title: str, rows: list[PlanRow], total: int | None = None) -> None:
            head = title if total is None else f"{title}: {total / GiB:.2f} GiB"
            lines.append(head)
            for row in rows:
                note = f"  {row.note}" if row.note else ""
                lines.append(f"  {row.name:<{width}}  {row.bytes / GiB:8.2f} GiB{note}")

        block("static (held for the whole run)", self.static)
        larger = "training" if self.training_bytes >= self.generation_bytes else "generation"
        block(
            "training step" + (" (the larger transient)" if larger == "training" else ""),
            self.training,
            self.training_bytes,
        )
        if self.generation:
            block(
                "generation" + (" (the larger transient)" if larger == "generation" else ""),
                self.generation,
                self.generation_bytes,
            )
        lines.append(
            f"  {'runtime allowance':<{width}}  {RUNTIME_OVERHEAD_BYTES / GiB:8.2f} GiB"
            "  CUDA context, NCCL, fragmentation"
        )
        for note in self.notes:
            lines.append(f"note: {note}")
        if self.gpu_memory_bytes is not None and self.total_bytes > self.gpu_memory_bytes:
            lines.append(
                f"warning: more than the {self.gpu_memory_bytes / GiB:.0f} GiB of one GPU; "
                "use more GPUs, gradient checkpointing, a smaller optim.micro_batch_size "
                "or sampling.batch_size"
            )
        gpus = "GPU" if self.gpus == 1 else "GPUs"
        lines.append(f"plan: {self.total_gib:.1f} GiB per GPU on {self.gpus} {gpus}")
        return "\n".join(lines)


# --- the model's shape --------------------------------------------------------------------------


def model_shape(cfg: TrainConfig) -> ModelShape:
    """The policy's shape, from a local ``config.json``, ``model.architecture`` or a count."""
    model = cfg.model
    local = Path(model.name_or_path or "")
    if model.name_or_path is not None and (local / "config.json").is_file():
        hf_config = AutoConfig.from_pretrained(
            str(local), trust_remote_code=model.trust_remote_code, local_files_only=True
        )
        return _shape_of(hf_config, source=f"{local / 'config.json'}")
    if model.architecture is not None:
        return _shape_of(config_from_architecture(model.architecture), source="model.architecture")
    if model.num_parameters is not None:
        return ModelShape(num_parameters=model.num_parameters, source="model.num_parameters")
    raise ConfigError(
        f"model.name_or_path={model.name_or_path!r} is not a local model directory: give "
        "model.architecture (its config.json as a mapping) or model.num_parameters for --plan"
    )


def config_from_architecture(architecture: dict[str, Any]) -> Any:
    """A ``transformers`` config from ``model.architecture`` (``model_type`` picks the class)."""
    values = dict(architecture)
    model_type = values.pop("model_type", None)
    if not model_type:
        raise ConfigError("model.architecture: needs model_type (e.g. llama)")
    try:
        return AutoConfig.for_model(model_type, **values)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"model.architecture: {exc}") from None


def _shape_of(hf_config: Any, *, source: str) -> ModelShape:
    """Count parameters exactly on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    total = sum(p.numel() for p in model.parameters())
    layer_classes = set(getattr(model, "_no_split_modules", None) or ())
    layers = [
        sum(p.numel() for p in module.parameters())
        for module in model.modules()
        if type(module).__name__ in layer_classes
    ]
    hidden = _attr(hf_config, "hidden_size", "n_embd")
    heads = _attr(hf_config, "num_attention_heads", "n_head")
    kv_heads = _attr(hf_config, "num_key_value_heads") or heads
    head_dim = _attr(hf_config, "head_dim") or (hidden // heads if hidden and heads else None)
    intermediate = _attr(hf_config, "intermediate_size", "n_inner") or (
        4 * hidden if hidden else None
    )
    return ModelShape(
        num_parameters=total,
        layer_parameters=max(layers, default=0),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_layers=_attr(hf_config, "num_hidden_layers", "n_layer") or len(layers) or None,
        vocab_size=_attr(hf_config, "vocab_size"),
        kv_size=kv_heads * head_dim if kv_heads and head_dim else None,
        source=source,
    )


def _attr(config: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


# --- the budget ---------------------------------------------------------------------------------


def plan_memory(
    cfg: TrainConfig,
    *,
    gpus: int | None = None,
    gpu_memory_gib: float = 80.0,
    shape: ModelShape | None = None,
    reference_offloaded: bool = False,
) -> MemoryPlan:
    """The per-GPU memory of ``cfg`` on ``gpus`` FSDP2 processes (see the module docstring).

    ``gpus`` defaults to ``WORLD_SIZE`` (set by ``accelerate launch``), else 1.
    """
    gpus = gpus or int(os.environ.get("WORLD_SIZE", "1"))
    if gpus < 1:
        raise ConfigError(f"--gpus: need at least 1, got {gpus}")
    shape = shape or model_shape(cfg)
    n = shape.num_parameters
    master = _BYTES.get(cfg.model.dtype, 4)  # "auto" keeps float32 master weights
    compute = {"no": master, "bf16": 2, "fp16": 2}[cfg.optim.mixed_precision]
    plan = MemoryPlan(gpus=gpus, shape=shape, gpu_memory_bytes=int(gpu_memory_gib * GiB))
    if gpus > 1:
        plan.notes.append(
            f"assumes FSDP2 over {gpus} processes (configs/accelerate/fsdp2_4gpu.yaml); "
            "DDP shards nothing: its per-GPU figure is the plan for --gpus 1"
        )
    plan.notes.append(
        f"host memory at start: each process loads the policy and the reference on the CPU "
        f"before they are sharded, about {2 * n * master / GiB:.0f} GiB per process"
    )
    shard = f"1/{gpus} of {n / 1e9:.2f} B" if gpus > 1 else f"{n / 1e9:.2f} B"
    dtype = {4: "fp32", 2: "16-bit"}[master]

    plan.static += [
        PlanRow("policy weights", _ceil(n * master, gpus), f"{shard} × {master} B ({dtype})"),
        PlanRow("gradients", _ceil(n * master, gpus), f"{shard} × {master} B"),
        PlanRow("AdamW moments", _ceil(2 * n * master, gpus), f"2 × {shard} × {master} B"),
    ]
    if cfg.needs_reference:
        if reference_offloaded:
            plan.static.append(PlanRow("reference a", 0, "offloaded to CPU memory"))
        else:
            plan.static.append(
                PlanRow("reference a", _ceil(n * master, gpus), f"{shard} × {master} B, frozen")
            )
    sampling = cfg.sampling
    if sampling.backend == "vllm":
        reserved = int(sampling.vllm_gpu_memory_utilization * gpu_memory_gib * GiB)
        plan.static.append(
            PlanRow(
                "vLLM engine",
                reserved,
                f"gpu_memory_utilization {sampling.vllm_gpu_memory_utilization:g} × "
                f"{gpu_memory_gib:g} GiB (its weights and KV cache)",
            )
        )

    local_sequences = math.ceil(sampling.prompts_per_step / gpus) * sampling.k
    micro = min(cfg.optim.micro_batch_size or local_sequences, local_sequences)
    micro = max(sampling.k, micro // sampling.k * sampling.k)
    seq = sampling.max_prompt_tokens + sampling.max_new_tokens
    dims = shape.dims
    if dims is not None:
        h, layers, inter = dims.hidden_size, dims.num_layers, dims.intermediate_size
        per_layer = micro * seq * compute * (8 * h + 4 * inter)
        if cfg.model.gradient_checkpointing:
            activations = layers * micro * seq * compute * h + per_layer
            how = f"checkpointed: {layers} layer inputs + 1 layer, {micro} seq × {seq} tok"
        else:
            activations = layers * per_layer
            how = f"{layers} layers × {micro} seq × {seq} tok, no checkpointing"
        plan.training.append(PlanRow("activations", activations, how))
        logits = micro * sampling.max_new_tokens * dims.vocab_size * (compute + 8)
        plan.training.append(
            PlanRow(
                "response logits",
                logits,
                f"{micro} × {sampling.max_new_tokens} × {shape.vocab_size} "
                f"({compute} B + fp32 log-softmax and its grad)",
            )
        )
    else:
        plan.notes.append(
            "activations, logits and KV cache not counted: give model.architecture "
            "(the model's config.json) for them"
        )
    if gpus > 1 and shape.layer_parameters:
        gathered = (shape.root_parameters + 2 * shape.layer_parameters) * compute
        plan.training.append(
            PlanRow("FSDP gathered units", gathered, "root + one layer + the prefetched next")
        )
    elif gpus == 1 and compute < master:
        plan.training.append(
            PlanRow("autocast weight copies", n * compute, f"the weights in {compute}-byte floats")
        )

    if sampling.backend == "hf":
        if gpus > 1:
            plan.generation.append(
                PlanRow("full weights for generate", n * compute, "gathered from the shards")
            )
        if dims is not None:
            batch = min(sampling.batch_size or local_sequences, local_sequences)
            kv = batch * seq * 2 * dims.num_layers * dims.kv_size * compute
            plan.generation.append(
                PlanRow("KV cache", kv, f"{batch} seq × {seq} tok × {shape.num_layers} layers")
            )
            plan.generation.append(
                PlanRow(
                    "sampling logits",
                    batch * dims.vocab_size * 4 * 2,
                    f"{batch} × {shape.vocab_size} fp32, one step",
                )
            )
    return plan


def _ceil(total: int, parts: int) -> int:
    return -(-total // parts)
