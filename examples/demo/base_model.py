"""The demo's tiny base model: a 2-layer GPT-2 fitted to the task's base distribution.

It plays the pretrained model ``a``: fitted on all targets (train and held out), saved with
``save_pretrained`` beside ``base_distribution.json`` (the exact distribution it was fitted to).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase

from examples.demo.task import BaseDistribution, DemoTask, base_distribution, prompt_for
from examples.demo.tokenizer import char_tokenizer

__all__ = ["fit_demo_base"]


def fit_demo_base(
    out_dir: str | Path,
    *,
    steps: int,
    seed: int = 0,
    task: DemoTask = DemoTask(),
    batch_size: int = 64,
    lr: float = 8e-3,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    log_every: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> Path:
    """Fit a tiny GPT-2 to the demo's base distribution and save it with ``save_pretrained``.

    Plain PyTorch: AdamW with a cosine schedule on batches of ``prompt + expression + <eos>``
    sampled from :func:`base_distribution` over all targets; the loss is on the completion only.
    The number of CPU threads is the caller's to pin (``torch.set_num_threads``). ``out_dir``
    receives the model, the tokenizer and ``base_distribution.json`` (the generator's parameters
    and, per target, every expression with its base probability and correctness), so evaluation
    can compare the fitted and fine-tuned models with the exact base and target distributions.

    ``on_step(step, loss)`` is called after every step (the sweep's progress bar); with
    ``log_every`` a line is also printed every that many steps. About 2,000 steps take a minute
    on one idle CPU thread.
    """
    if steps < 1:
        raise ValueError(f"steps: must be >= 1, got {steps}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = char_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))),
    )
    distributions = [base_distribution(t, task) for t in task.targets]
    model.train()
    started = time.perf_counter()
    cache: dict[tuple[int, str], tuple[int, list[int]]] = {}
    for step in range(steps):
        input_ids, labels, attention = _training_batch(
            tokenizer, distributions, batch_size, rng, cache
        )
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if on_step is not None:
            on_step(step + 1, float(loss.detach()))
        if log_every and (step + 1) % log_every == 0:
            elapsed = time.perf_counter() - started
            print(f"step {step + 1}/{steps} loss {loss.item():.4f} ({elapsed:.1f}s)")
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _save_distribution(out / "base_distribution.json", task, distributions, steps, seed)
    return out


def _training_batch(
    tokenizer: PreTrainedTokenizerBase,
    distributions: list[BaseDistribution],
    batch_size: int,
    rng: random.Random,
    cache: dict[tuple[int, str], tuple[int, list[int]]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = []
    for _ in range(batch_size):
        dist = rng.choice(distributions)
        expression = dist.sample(rng)[0]
        key = (dist.target, expression)
        if key not in cache:
            prompt_ids = tokenizer(prompt_for(dist.target))["input_ids"]
            completion_ids = tokenizer(expression, add_special_tokens=False)["input_ids"]
            cache[key] = (len(prompt_ids), [*prompt_ids, *completion_ids, tokenizer.eos_token_id])
        rows.append(cache[key])
    width = max(len(ids) for _, ids in rows)
    input_ids = torch.full((batch_size, width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((batch_size, width), -100, dtype=torch.long)
    attention = torch.zeros((batch_size, width), dtype=torch.long)
    for i, (prompt_len, ids) in enumerate(rows):
        row = torch.tensor(ids)
        input_ids[i, : len(ids)] = row
        labels[i, prompt_len : len(ids)] = row[prompt_len:]
        attention[i, : len(ids)] = 1
    return input_ids, labels, attention


def _save_distribution(
    path: Path, task: DemoTask, distributions: list[BaseDistribution], steps: int, seed: int
) -> None:
    payload = {
        "task": asdict(task),
        "prompt_format": prompt_for(0).replace("0", "{target}", 1),
        "fit": {"steps": steps, "seed": seed},
        "splits": {
            split: [d.target for d in distributions if task.split_of(d.target) == split]
            for split in ("train", "test")
        },
        "targets": {
            str(d.target): {
                "pass_rate": d.pass_rate,
                "expressions": [
                    {"expression": e, "probability": p, "correct": c}
                    for e, p, c in zip(d.expressions, d.probabilities, d.correct, strict=True)
                ],
            }
            for d in distributions
        },
    }
    path.write_text(json.dumps(payload, indent=1))
