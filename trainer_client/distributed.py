"""What changes when the run spans processes, and under FSDP2 in particular.

``accelerate launch`` decides the layout: DDP by default, FSDP2 with
``--config_file configs/accelerate/fsdp2_4gpu.yaml`` (``fsdp_version: 2``). The loop itself only
ever calls the helpers here:

* :func:`check_layout`: the step's prompts split evenly over the processes. Sharded models run
  collective operations in every forward, so every process must run the same number of them;
  a process with one prompt group more would hang the others.
* :func:`shard_reference`: under FSDP2 the frozen reference ``a`` is sharded exactly as the
  policy is (same units, same mixed-precision policy), so it costs 1/N of its size per GPU and
  its numbers come out of the same sharded forward as π's.
* :class:`FullWeightsSampler`: ``generate`` runs many forwards of different lengths on each
  process. Under FSDP2 every unit is gathered once before sampling and kept whole until it ends
  (``unshard`` with resharding after forward switched off), so processes sample independently,
  with no collective per token, and the shards come back afterwards.
* :func:`full_state_dicts`: the policy and AdamW state as full (unsharded) tensors on the main
  process, so a checkpoint is a plain Hugging Face model directory that ``transformers`` loads
  and that a run with another world size can resume.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.fsdp_utils import fsdp2_prepare_model

from trainer_client.config import ConfigError

__all__ = [
    "FullWeightsSampler",
    "check_layout",
    "external_launcher_env",
    "full_state_dicts",
    "is_fsdp2",
    "load_full_optimizer_state",
    "make_accelerator",
    "process_state",
    "shard_reference",
    "unsharded",
    "world_size_metric",
]


def process_state() -> PartialState:
    """accelerate's process state (rank, world size), started as :func:`make_accelerator` will."""
    return PartialState(cpu=not torch.cuda.is_available())


def make_accelerator(mixed_precision: str = "no") -> Accelerator:
    """The run's ``Accelerator``, laid out by ``accelerate launch`` (DDP, FSDP2) on GPUs or CPUs.

    Without an accelerator device it runs on the CPU, with the gloo backend when launched on
    several processes. accelerate 1.15 turns FSDP on only for accelerator devices; on CPUs
    (``configs/accelerate/fsdp2_cpu.yaml``, for the tests) its state is switched to FSDP2 once
    the gloo group is up, with the plugin read from the launcher's ``FSDP_*`` settings.
    """
    cpu = not torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision=mixed_precision, cpu=cpu)
    wants_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if cpu and wants_fsdp and accelerator.num_processes > 1 and not is_fsdp2(accelerator):
        plugin = FullyShardedDataParallelPlugin()
        if plugin.fsdp_version != 2:
            raise RuntimeError("on CPUs only FSDP2 is supported: set fsdp_version: 2")
        if mixed_precision != "no":
            plugin.set_mixed_precision(mixed_precision)
        accelerator.state.fsdp_plugin = plugin
        accelerator.state.distributed_type = DistributedType.FSDP
    return accelerator


def is_fsdp2(accelerator: Accelerator) -> bool:
    """Whether ``accelerator`` shards models with FSDP2 (``fsdp_version: 2``)."""
    plugin = getattr(getattr(accelerator, "state", None), "fsdp_plugin", None)
    return plugin is not None and getattr(plugin, "fsdp_version", 1) == 2


def may_stream_chunks(accelerator: Accelerator) -> bool:
    """Whether a sampler may hand out groups as they finish, a number of chunks that differs
    from process to process. Not under FSDP2: there each chunk's reference pass and each
    micro-batch's forward are collective (all-gathers of the shards), so every process must
    draw the same number of chunks or the gathers would not pair up. Under DDP only the last
    backward of a step synchronises, once per process, whatever the number of chunks."""
    return not is_fsdp2(accelerator)


def check_layout(prompts_per_step: int, k: int, num_processes: int) -> None:
    """Refuse a step that does not split into equal whole prompt groups per process."""
    if num_processes > 1 and prompts_per_step % num_processes:
        raise ConfigError(
            f"sampling.prompts_per_step={prompts_per_step} must be a multiple of the "
            f"{num_processes} processes: each process takes an equal share of whole prompt groups "
            f"(k={k} samples each), or the processes fall out of step"
        )


def world_size_metric(num_processes: int) -> Callable[[Any], dict[str, float]]:
    """A score-stage metric function: ``dist/world_size``."""

    def metric(batch: Any) -> dict[str, float]:
        return {"dist/world_size": float(num_processes)}

    return metric


# --- FSDP2 ------------------------------------------------------------------------------------


def shard_reference(model: torch.nn.Module, accelerator: Accelerator) -> torch.nn.Module:
    """Shard the frozen reference like the policy (a no-op unless FSDP2)."""
    if not is_fsdp2(accelerator):
        return model
    model.requires_grad_(False)
    sharded = fsdp2_prepare_model(accelerator, model)
    sharded.eval()
    return sharded


def _fsdp_modules(model: torch.nn.Module) -> list[Any]:
    # torch.distributed is imported only under a layout that uses it: not every torch build
    # has it (macOS wheels), and a single-process run never needs it.
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


@contextmanager
def unsharded(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Inside, every FSDP2 unit of ``model`` holds its full parameters and forwards run no
    collective; the shards come back on exit. A plain module passes through untouched."""
    units = _fsdp_modules(model)
    if not units:
        yield model
        return
    before = [_reshards_after_forward(unit) for unit in units]
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
    handles = [unit.unshard(async_op=True) for unit in units]
    for handle in handles:
        if handle is not None:
            handle.wait()
    try:
        yield model
    finally:
        for unit, reshard in zip(units, before, strict=True):
            unit.reshard()
            unit.set_reshard_after_forward(reshard, recurse=False)


def _reshards_after_forward(unit: Any) -> bool:
    """The unit's current setting (accelerate leaves the last units whole after forward)."""
    try:
        groups = unit._get_fsdp_state()._fsdp_param_groups
        return any(group.post_forward_mesh_info is not None for group in groups)
    except AttributeError:  # a torch without these internals: the documented default
        return True


class FullWeightsSampler:
    """Wraps a sampler whose model is FSDP2-sharded: each ``sample`` runs on full weights."""

    def __init__(self, sampler: Any) -> None:
        self.inner = sampler

    def sample(self, prompts: Sequence[str], k: int) -> Any:
        with unsharded(self.inner.model):
            return self.inner.sample(prompts, k)

    def sample_chunks(self, prompts: Sequence[str], k: int) -> Any:
        """The inner sampler's chunks, each ``generate`` call on full weights (every process
        draws the same number of chunks, so the gathers pair up)."""
        chunks = self.inner.sample_chunks(prompts, k)
        while True:
            with unsharded(self.inner.model):
                part = next(chunks, None)
            if part is None:
                return
            yield part

    def __getattr__(self, name: str) -> Any:  # state_dict, load_state_dict, calls, ...
        return getattr(self.inner, name)


def full_state_dicts(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, accelerator: Accelerator
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model, optimizer)`` state as full CPU tensors on the main process (collective).

    Every process must call it; other processes get empty dicts. Without FSDP2 the objects'
    own ``state_dict()`` are returned.
    """
    if not is_fsdp2(accelerator):
        return accelerator.unwrap_model(model).state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_state = get_model_state_dict(model, options=options)
    optim_state = get_optimizer_state_dict(model, optimizer, options=options)
    return model_state, optim_state


def load_full_optimizer_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict, accelerator: Accelerator
) -> None:
    """Restore what :func:`full_state_dicts` saved, sharding it again under FSDP2."""
    if not is_fsdp2(accelerator):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_optimizer_state_dict,
    )

    set_optimizer_state_dict(
        model, optimizer, optim_state_dict=state, options=StateDictOptions(full_state_dict=True)
    )


def external_launcher_env() -> None:  # pragma: no cover - needs a GPU
    """The torchrun variables vLLM's ``external_launcher`` reads; a plain single process (no
    ``accelerate launch``) has none, and then is rank 0 of 1."""
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(sock.getsockname()[1])
