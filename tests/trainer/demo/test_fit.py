from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

from examples.demo.base_model import fit_demo_base
from examples.demo.task import DemoTask, evaluate_expression, prompt_for

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_base")
    return fit_demo_base(out, steps=150, batch_size=32, seed=0)


def sample(model, tokenizer, targets, k=16, seed=0) -> list[str]:
    torch.manual_seed(seed)
    batch = tokenizer([prompt_for(t) for t in targets], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **batch,
            do_sample=True,
            top_k=0,
            max_new_tokens=16,
            num_return_sequences=k,
            pad_token_id=tokenizer.pad_token_id,
        )
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)


def well_formed(texts: list[str]) -> float:
    return sum(evaluate_expression(t) is not None for t in texts) / len(texts)


def test_saved_model_tokenizer_and_distribution(fitted):
    assert (fitted / "config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(fitted, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(fitted, local_files_only=True)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert tokenizer.padding_side == "left"
    described = json.loads((fitted / "base_distribution.json").read_text())
    task = DemoTask(**described["task"])
    assert task == DemoTask()
    assert set(described["targets"]) == {str(t) for t in task.targets}
    assert described["fit"] == {"steps": 150, "seed": 0}
    assert sorted(described["splits"]["train"] + described["splits"]["test"]) == task.targets
    entry = described["targets"]["24"]
    total = sum(e["probability"] for e in entry["expressions"])
    assert total == pytest.approx(1.0)


def test_fitted_model_beats_a_random_one_at_well_formed_expressions(fitted):
    tokenizer = AutoTokenizer.from_pretrained(fitted)
    model = AutoModelForCausalLM.from_pretrained(fitted).eval()
    torch.manual_seed(0)
    random_model = GPT2LMHeadModel(GPT2Config.from_pretrained(fitted)).eval()
    targets = [12, 24, 37]
    fitted_rate = well_formed(sample(model, tokenizer, targets))
    random_rate = well_formed(sample(random_model, tokenizer, targets))
    assert fitted_rate > random_rate
    assert fitted_rate >= 0.5


def test_bad_steps():
    with pytest.raises(ValueError, match="steps"):
        fit_demo_base("unused", steps=0)
