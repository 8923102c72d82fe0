"""``--plan``: the per-GPU memory budget, from a model's shape, without loading weights."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from trainer_client.config import ConfigError, load_config
from trainer_client.plan import GiB, ModelShape, model_shape, plan_memory
from trainer_client.train import cli

PAPER = "configs/paper_alpha_dpg.yaml"
TINY_LLAMA = {
    "model_type": "llama",
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "tie_word_embeddings": False,
}


def _config(tmp_path, **model):
    return load_config(
        None,
        [
            f"run.output_dir={tmp_path}",
            "data.path=problems.jsonl",
            *[f"model.{k}={v}" for k, v in {"name_or_path": "nowhere", **model}.items()],
        ],
    )


def test_the_parameter_count_is_the_models_own(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    values = dict(TINY_LLAMA)
    model = AutoModelForCausalLM.from_config(
        AutoConfig.for_model(values.pop("model_type"), **values)
    )
    model.save_pretrained(tmp_path / "m")
    shape = model_shape(_config(tmp_path, name_or_path=str(tmp_path / "m")))
    assert shape.num_parameters == model.num_parameters()
    layer = sum(p.numel() for p in model.model.layers[0].parameters())
    assert shape.layer_parameters == layer
    assert shape.kv_size == 2 * 8 and shape.num_layers == 2 and shape.vocab_size == 64


def test_the_papers_model_is_seven_billion_from_its_architecture():
    shape = model_shape(load_config(PAPER))
    assert 6.8e9 < shape.num_parameters < 7.0e9
    assert shape.source == "model.architecture"


def test_static_memory_is_sharded_over_the_gpus():
    cfg = load_config(PAPER)
    one, four = plan_memory(cfg, gpus=1), plan_memory(cfg, gpus=4)
    n = one.shape.num_parameters
    weights = {r.name: r.bytes for r in four.static}
    assert weights["policy weights"] == -(-n * 4 // 4)  # fp32 master weights, a quarter each
    assert weights["AdamW moments"] == -(-2 * n * 4 // 4)
    assert sum(r.bytes for r in one.static) > 3.9 * sum(r.bytes for r in four.static)
    assert four.total_bytes < one.total_bytes


def test_gradient_checkpointing_and_micro_batches_shrink_activations():
    cfg = load_config(PAPER)

    def activations(c):
        return {r.name: r.bytes for r in plan_memory(c, gpus=4).training}["activations"]

    plain = load_config(PAPER, ["model.gradient_checkpointing=false"])
    assert activations(cfg) * 5 < activations(plain)
    smaller = load_config(PAPER, ["optim.micro_batch_size=8"])
    assert activations(smaller) == pytest.approx(2 * activations(cfg), rel=1e-9)


def test_vllm_reserves_its_share_and_hf_generation_needs_gathered_weights():
    vllm = plan_memory(load_config(PAPER, ["sampling.backend=vllm"]), gpus=4, gpu_memory_gib=80)
    engine = {r.name: r.bytes for r in vllm.static}["vLLM engine"]
    assert engine == int(0.3 * 80 * GiB)
    assert vllm.generation == []
    hf = plan_memory(load_config(PAPER), gpus=4)
    assert "full weights for generate" in {r.name for r in hf.generation}


def test_offloaded_reference_costs_no_gpu_memory():
    cfg = load_config(PAPER)
    on = plan_memory(cfg, gpus=4)
    off = plan_memory(cfg, gpus=4, reference_offloaded=True)
    assert on.total_bytes - off.total_bytes == {r.name: r.bytes for r in on.static}["reference a"]


def test_a_bare_parameter_count_gives_the_static_part_and_says_what_is_missing(tmp_path):
    cfg = _config(tmp_path, num_parameters=1_000_000_000)
    plan = plan_memory(cfg, gpus=2)
    assert plan.shape == ModelShape(num_parameters=10**9, source="model.num_parameters")
    assert any("not counted" in note for note in plan.notes)


def test_no_shape_at_all_is_an_error_naming_the_fields(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.architecture"):
        plan_memory(_config(tmp_path), gpus=1)


def test_the_cli_prints_the_plan_without_loading_weights(monkeypatch):
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("--plan must not load weights")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    result = CliRunner().invoke(cli, ["--config", PAPER, "--plan", "--gpus", "4"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    match = re.fullmatch(r"plan: (\d+\.\d) GiB per GPU on 4 GPUs", last)
    assert match
    # The paper's recipe fits an 80 GB GPU on 4 GPUs.
    assert float(match.group(1)) < 80
    assert f"{plan_memory(load_config(PAPER), gpus=4).total_gib:.1f}" == match.group(1)


def test_the_readme_quotes_the_paper_plan_as_it_is():
    """The manual's "Will it fit?" figures are the plan's own, for both sampling backends."""
    from tests.docs import doc_text

    readme = doc_text("trainer")
    quoted = re.search(
        r"`plan: (\d+\.\d) GiB per GPU on 4 GPUs` \(`(\d+\.\d) GiB` with `sampling\.backend=vllm`",
        readme,
    )
    assert quoted, "the trainer page no longer quotes the paper recipe's plan"
    hf = plan_memory(load_config(PAPER), gpus=4).total_gib
    vllm = plan_memory(load_config(PAPER, ["sampling.backend=vllm"]), gpus=4).total_gib
    assert quoted.groups() == (f"{hf:.1f}", f"{vllm:.1f}")
