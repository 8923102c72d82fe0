"""The single-process side of trainer_client.distributed (the launched tests cover the rest)."""

from __future__ import annotations

import pytest
import torch

from trainer_client.config import ConfigError
from trainer_client.distributed import (
    FullWeightsSampler,
    check_layout,
    is_fsdp2,
    make_accelerator,
    unsharded,
    world_size_metric,
)


def test_uneven_prompt_shards_are_refused_naming_the_field():
    check_layout(8, 4, 2)
    check_layout(3, 4, 1)
    with pytest.raises(ConfigError, match=r"sampling\.prompts_per_step=6 .* 4 processes"):
        check_layout(6, 4, 4)


def test_world_size_metric():
    assert world_size_metric(4)(None) == {"dist/world_size": 4.0}


def test_one_plain_process_is_not_fsdp():
    accelerator = make_accelerator("no")
    assert accelerator.num_processes == 1
    assert not is_fsdp2(accelerator)


def test_a_plain_model_passes_through_unsharded_untouched():
    model = torch.nn.Linear(2, 2)
    before = [p.clone() for p in model.parameters()]
    with unsharded(model) as inside:
        assert inside is model
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_full_weights_sampler_delegates_everything_but_sample():
    class Inner:
        model = torch.nn.Linear(2, 2)
        calls = 7

        def sample(self, prompts, k):
            return (list(prompts), k)

        def state_dict(self):
            return {"calls": self.calls}

    wrapped = FullWeightsSampler(Inner())
    assert wrapped.sample(["a"], 2) == (["a"], 2)
    assert wrapped.state_dict() == {"calls": 7} and wrapped.calls == 7
    assert not hasattr(wrapped, "load_weights")  # so the update stage pushes no weights to it


@pytest.mark.parametrize(
    ("name", "processes", "fsdp"),
    [("fsdp2_4gpu", 4, True), ("fsdp2_cpu", 2, True), ("ddp_cpu", 2, False)],
)
def test_the_accelerate_configs_load_as_accelerate_reads_them(name, processes, fsdp):
    from pathlib import Path

    from accelerate.commands.config.config_args import load_config_from_file

    root = Path(__file__).resolve().parents[3]
    config = load_config_from_file(str(root / "configs" / "accelerate" / f"{name}.yaml"))
    assert config.num_processes == processes
    if fsdp:
        assert config.distributed_type == "FSDP"
        assert config.fsdp_config["fsdp_version"] == 2
        assert config.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    else:
        assert not config.fsdp_config
    assert config.use_cpu == name.endswith("_cpu")
