"""What the world-size tests run under ``accelerate launch`` (DDP or FSDP2, 2 CPU processes):

    accelerate launch --config_file configs/accelerate/fsdp2_cpu.yaml \
        tests/trainer/scale/launched.py OUT_DIR

1. the smoke run, exactly as ``sieve-train --config configs/smoke_cpu.yaml`` (under
   ``OUT_DIR/smoke``), and its resumption for a third step; one launch serves all the checks,
   to keep the suite's time down;
2. :func:`run`: one α-DPG step on fixed samples, with the step's gradient and the saved
   checkpoint recorded (also run in one process, imported, as the baseline).

Every process samples the same completions for the same prompt (:class:`FixedSampler`), so the
step's samples do not depend on how the prompts are split over processes: the gradient must not
either. The main process writes ``OUT_DIR/grads.pt`` (full gradients by parameter name, taken
just before the optimiser step) and the checkpoint ``OUT_DIR/run/step_1``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from tests.trainer.loop.helpers import FakeVerifier, lenient
from trainer_client.config import TrainConfig
from trainer_client.rollout.base import eos_ids
from trainer_client.rollout.batch import Samples, assemble

ARCHITECTURE = {
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
}
EXPRESSIONS = ["3*8", "20+4", "5*5", "2*13", "6*4", "19+6", "7+7+9", "30-6"]


class FixedSampler:
    """k completions per prompt chosen by the prompt alone; ``model`` for the FSDP wrapper."""

    def __init__(self, tokenizer, model) -> None:
        self.tokenizer = tokenizer
        self.model = model

    def sample(self, prompts, k) -> Samples:
        tok = self.tokenizer
        texts = []
        for prompt in prompts:
            start = sum(map(ord, prompt)) % len(EXPRESSIONS)
            texts += [EXPRESSIONS[(start + j) % len(EXPRESSIONS)] for j in range(k)]
        prompt_ids = tok(list(prompts), return_tensors="pt", padding=True)
        completions = [torch.tensor(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        width = max(len(c) for c in completions) + 1
        eos = tok.eos_token_id
        rows = [torch.cat([c, torch.full((width - len(c),), eos)]) for c in completions]
        samples = assemble(
            prompt_ids["input_ids"].repeat_interleave(k, dim=0),
            prompt_ids["attention_mask"].repeat_interleave(k, dim=0),
            torch.stack(rows),
            eos_ids(tok),
            k,
        )
        samples.texts = texts
        return samples

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def config(out_dir: Path) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "model": {"name_or_path": "in-memory", "architecture": ARCHITECTURE},
            "data": {"shuffle": False},
            "sampling": {"k": 4, "prompts_per_step": 4, "max_new_tokens": 8},
            "loss": {"objective": "alpha_dpg", "alpha": 0.5},
            "optim": {"lr": 1e-2, "warmup_steps": 0, "micro_batch_size": 8, "max_grad_norm": None},
            "logging": {"tensorboard": False, "jsonl": False, "progress": False},
            "run": {"output_dir": str(out_dir), "name": "run", "max_steps": 1, "save_every": 0},
        }
    )


def run(out_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from examples.demo.task import demo_problems
    from examples.demo.tokenizer import char_tokenizer
    from trainer_client.distributed import make_accelerator
    from trainer_client.loop import Trainer
    from trainer_client.plan import config_from_architecture

    cfg = config(out_dir)
    accelerator = make_accelerator("no")
    tokenizer = char_tokenizer()
    arch = {**ARCHITECTURE, "vocab_size": len(tokenizer), "pad_token_id": 0, "eos_token_id": 2}
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config_from_architecture(arch))
    trainer = Trainer(
        cfg,
        model=model,
        tokenizer=tokenizer,
        problems=demo_problems(4, seed=0),
        verifier=FakeVerifier(lenient),
        accelerator=accelerator,
        sampler=FixedSampler(tokenizer, model),
    )
    grads: dict[str, torch.Tensor] = {}
    optimizer_step = trainer.optimizer.step

    def record_then_step(*args, **kwargs):
        for name, param in trainer.unwrapped_model.named_parameters():
            grad = param.grad
            if hasattr(grad, "full_tensor"):
                grad = grad.full_tensor()  # collective: every process takes part
            grads[name] = grad.detach().clone().cpu()
        return optimizer_step(*args, **kwargs)

    trainer.optimizer.step = record_then_step
    metrics = trainer.train_step()
    trainer.save()
    if trainer.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save({"grads": grads, "metrics": metrics}, out_dir / "grads.pt")
    trainer.close()


def smoke(out_dir: Path) -> None:
    """The smoke run's 2 steps, then one more resumed from its ``step_2`` (optimiser state
    restored, sharded again under FSDP2)."""
    from trainer_client.train import cli

    args = ["--config", "configs/smoke_cpu.yaml", "--output-dir", str(out_dir)]
    cli(args, standalone_mode=False)
    cli([*args, "--resume", "latest", "--max-steps", "3"], standalone_mode=False)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    smoke(out / "smoke")
    run(out / "grads")
