"""Time one α-DPG step against one Dr. GRPO step on the same tiny model and batch.

The workload is the one TRL's GRPOTrainer (``loss_type="dr_grpo"``) is quoted on: a random
2-layer Llama (hidden 128) with a 33-token character tokenizer, 8 prompts × 4 samples × 16 new
tokens, one CPU thread. TRL takes a median 0.17 s a step with β = 0.04 and 0.15 s with β = 0.

A step is everything: sampling, verifying (the real service with the ``math`` checker on loopback
when it can be started, else an in-process fake; the script says which), the reference pass, and
the update. The three objectives run interleaved, step by step, so machine noise hits them alike.

    python benchmarks/trainer_bench.py [--steps 20] [--warmup 3] [--fake-verifier]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

import torch

TRL_MEDIAN_S = {"dr_grpo β=0.04": 0.17, "dr_grpo β=0": 0.15}
#: 18 demo characters + 11 letters + 4 special tokens = 33 tokens, as in the TRL workload.
ALPHABET_EXTRA = "abcdefghijk"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--fake-verifier", action="store_true", help="skip the real service")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from trainer_client.demo import DEMO_ALPHABET, char_tokenizer

    tokenizer = char_tokenizer(DEMO_ALPHABET + ALPHABET_EXTRA)
    with contextlib.ExitStack() as stack:
        verifier, kind = stack.enter_context(_verifier(args.fake_verifier))
        out = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        variants = {
            "alpha_dpg α=0.5": {"objective": "alpha_dpg", "alpha": 0.5},
            "dr_grpo β=0.04": {"objective": "dr_grpo", "kl_coef": 0.04},
            "dr_grpo β=0": {"objective": "dr_grpo", "kl_coef": 0.0},
        }
        # Distinct sampling seeds: identical completions would be answered from the verifier's
        # cache for every variant but the first.
        trainers = {
            name: _trainer(name, loss, tokenizer, verifier, out, seed=i)
            for i, (name, loss) in enumerate(variants.items())
        }
        stack.callback(lambda: [t.close() for t in trainers.values()])
        times: dict[str, list[dict[str, float]]] = {name: [] for name in trainers}
        names = list(trainers)
        for step in range(args.warmup + args.steps):
            for name in names[step % 3 :] + names[: step % 3]:  # rotate who goes first
                metrics = trainers[name].train_step()
                if step >= args.warmup:
                    times[name].append(metrics)
    _report(times, kind, tokenizer, args.steps)


def _trainer(name, loss, tokenizer, verifier, out, *, seed):
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainer_client.config import TrainConfig
    from trainer_client.demo import demo_problems
    from trainer_client.loop import Trainer

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=64,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    cfg = TrainConfig.from_dict(
        {
            "model": {"name_or_path": "random-llama"},
            "data": {"path": "demo"},
            "sampling": {"k": 4, "prompts_per_step": 8, "max_new_tokens": 16},
            "loss": loss,
            "optim": {"lr": 1e-5, "warmup_steps": 0},
            "logging": {"tensorboard": False, "jsonl": False, "progress": False},
            "run": {
                "output_dir": str(out),
                "name": name,
                "max_steps": 1000,
                "save_every": 0,
                "seed": seed,
            },
        }
    )
    return Trainer(
        cfg, model=model, tokenizer=tokenizer, problems=demo_problems(64), verifier=verifier
    )


@contextlib.contextmanager
def _verifier(fake: bool):
    if not fake:
        try:
            from trainer_client.client import VerifierClient
            from trainer_client.train import local_verifier

            with local_verifier(["math"]) as url, VerifierClient(url) as client:
                yield client, f"real service, math checker, {url}"
                return
        except (ImportError, RuntimeError) as exc:
            print(f"real verifier unavailable ({exc}); using the in-process fake", file=sys.stderr)
    yield _FakeVerifier(), "in-process fake (no HTTP)"


class _FakeVerifier:
    def verify(self, proofs):
        from trainer_client.client import VerifyResult
        from trainer_client.demo import is_correct

        return [
            VerifyResult(
                id=p["id"],
                verdict="valid" if is_correct(p["code"], int(p["answer"])) else "invalid",
            )
            for p in proofs
        ]


def _report(times, kind, tokenizer, steps):
    med = {
        name: {
            key: statistics.median(m[key] for m in rows)
            for key in (
                "time/step_s",
                "time/sample_s",
                "time/reference_s",
                "time/verify_wait_s",
                "time/update_s",
                "verifier/latency_s",
            )
        }
        for name, rows in times.items()
    }
    print(f"verifier: {kind}")
    print(
        f"model: random 2-layer Llama, hidden 128, vocab {len(tokenizer)}; 8 prompts × 4 samples "
        f"× 16 new tokens; 1 CPU thread; median of {steps} steps"
    )
    header = (
        f"{'objective':<18}{'step s':>9}{'sample':>9}{'ref':>9}{'wait':>9}{'update':>9}"
        f"{'verify':>9}{'TRL s':>8}"
    )
    print(header)
    for name, m in med.items():
        trl = TRL_MEDIAN_S.get(name)
        print(
            f"{name:<18}{m['time/step_s']:>9.4f}{m['time/sample_s']:>9.4f}"
            f"{m['time/reference_s']:>9.4f}{m['time/verify_wait_s']:>9.4f}"
            f"{m['time/update_s']:>9.4f}{m['verifier/latency_s']:>9.4f}"
            f"{'' if trl is None else f'{trl:.2f}':>8}"
        )
    alpha = med["alpha_dpg α=0.5"]["time/step_s"]
    for other in ("dr_grpo β=0.04", "dr_grpo β=0"):
        print(
            f"ratio α-DPG / {other}: {alpha / med[other]['time/step_s']:.3f}"
            + ("  (target ≤ 1.05)" if other.endswith("0.04") else "")
        )
    for name, m in med.items():
        share = m["time/verify_wait_s"] / m["time/step_s"]
        print(
            f"share of a step waiting for the verifier, {name}: {share:.1%} "
            f"(verifier round trip {m['verifier/latency_s'] / m['time/step_s']:.1%} of a step, "
            "overlapped with the reference pass)"
        )


if __name__ == "__main__":
    main()
