"""GPU check: fp16 α-DPG steps on a random ~0.5B Llama, sampling with transformers, then vLLM.

    python benchmarks/gpu_smoke.py                       # one GPU, at most about 8 minutes
    python benchmarks/gpu_smoke.py --device cpu --tiny   # the same path on a CPU, in seconds

The model is built from a config with random weights (nothing is downloaded): a Llama of
hidden size 1024, 24 layers and a 32,000-token vocabulary (0.44 B parameters), its tokenizer a
character-level one over as many symbols. Each backend runs ``--steps`` steps of the real
trainer (``build_trainer``: reference, mixed precision, the update) on 8 prompts × 4 samples of
``--new-tokens`` tokens. The verifier is an in-process stand-in that accepts about half of the
samples (a hash of the text), so every step has a gradient; its time is not what is measured.

Per backend it prints, for each step and as the median over steps after the first:
tokens/s, step time, peak GPU memory, ``policy/ref_logratio_max_abs`` (the largest
|log π(y) − log a(y)| over the step's samples as the loss uses them; at the first step, before
any update, π = a and it should be ≤ 1e-3) and ``sampling/logprob_gap`` (vLLM only: mean
|sampler − training| log-prob of the sampled tokens). vLLM is skipped, with the reason, when it
is not installed or the device is not CUDA. It stops taking steps once ``--budget-s`` is spent.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

# The workload is the CPU demo's task (examples/demo/), importable from a checkout: the
# script runs as `python benchmarks/<name>.py` from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FULL = {
    "model_type": "llama",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
}
TINY = {
    **FULL,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default=None)
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model: a CPU dry run")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=None)
    parser.add_argument("--vocab", type=int, default=None)
    parser.add_argument("--precision", choices=["fp16", "bf16", "no"], default=None)
    parser.add_argument("--backends", default="hf,vllm")
    parser.add_argument("--budget-s", type=float, default=420.0)
    args = parser.parse_args(argv)

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here", file=sys.stderr)
        return 2
    if device == "cpu":
        torch.set_num_threads(1)
    precision = args.precision or ("fp16" if device == "cuda" else "no")
    new_tokens = args.new_tokens or (16 if args.tiny else 256)
    vocab = args.vocab or (512 if args.tiny else 32_000)
    architecture = TINY if args.tiny else FULL
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        base = _random_base(Path(tmp), architecture, vocab)
        print(
            f"model: random Llama, {_parameters(base) / 1e9:.3f} B parameters, vocab {vocab}; "
            f"device {device}{_gpu_name(device)}; precision {precision}; "
            f"{args.prompts} prompts × {args.k} samples × {new_tokens} new tokens"
        )
        results: dict[str, list[dict[str, float]]] = {}
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            skip = _why_skip(backend, device)
            if skip:
                print(f"\n[{backend}] skipped: {skip}")
                continue
            left = args.budget_s - (time.perf_counter() - started)
            results[backend] = _run(
                backend, base, Path(tmp) / backend, args, precision, new_tokens, device, left
            )
    _summary(results)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


# --- the model --------------------------------------------------------------------------------


def _random_base(tmp: Path, architecture: dict[str, Any], vocab: int) -> Path:
    """A character tokenizer over ``vocab`` symbols and a random model saved beside it."""
    from examples.demo.tokenizer import DEMO_ALPHABET, char_tokenizer
    from trainer_client.build import build_random_base
    from trainer_client.config import TrainConfig

    extra = "".join(chr(0x4E00 + i) for i in range(max(0, vocab - len(DEMO_ALPHABET) - 4)))
    tokenizer_dir = tmp / "tokenizer"
    char_tokenizer(DEMO_ALPHABET + extra).save_pretrained(tokenizer_dir)
    cfg = TrainConfig.from_dict(
        {
            "model": {
                "random_init": True,
                "architecture": architecture,
                "tokenizer": str(tokenizer_dir),
            },
        }
    )
    return build_random_base(cfg, tmp / "base")


def _parameters(path: Path) -> int:
    from trainer_client.config import TrainConfig
    from trainer_client.plan import model_shape

    cfg = TrainConfig.from_dict({"model": {"name_or_path": str(path)}})
    return model_shape(cfg).num_parameters


def _gpu_name(device: str) -> str:
    return f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""


def _why_skip(backend: str, device: str) -> str | None:
    if backend == "hf":
        return None
    if backend != "vllm":
        return f"unknown backend {backend!r} (hf, vllm)"
    if device != "cuda":
        return "vLLM needs a CUDA device"
    try:
        import vllm  # noqa: F401
    except ImportError:
        return "vllm is not installed (pip install 'sieve[vllm]')"
    return None


# --- one backend ------------------------------------------------------------------------------


class _HalfVerifier:
    """Accepts a sample when a hash of its text is even: about half, deterministically."""

    def verify(self, proofs):
        from trainer_client.client import VerifyResult

        def ok(code: str) -> bool:
            return hashlib.blake2b(code.encode(), digest_size=1).digest()[0] % 2 == 0

        return [
            VerifyResult(id=p["id"], verdict="valid" if ok(p["code"]) else "invalid")
            for p in proofs
        ]


def _run(
    backend: str,
    base: Path,
    out: Path,
    args: argparse.Namespace,
    precision: str,
    new_tokens: int,
    device: str,
    budget_s: float,
) -> list[dict[str, float]]:
    from examples.demo.task import demo_problems
    from trainer_client.build import build_trainer
    from trainer_client.config import TrainConfig

    cfg = TrainConfig.from_dict(
        {
            "model": {"name_or_path": str(base), "dtype": "float32"},
            "data": {"limit": 64},
            "sampling": {
                "backend": backend,
                "k": args.k,
                "prompts_per_step": args.prompts,
                "max_new_tokens": new_tokens,
                "max_prompt_tokens": 16,
                "vllm_gpu_memory_utilization": 0.3,
            },
            "loss": {"objective": "alpha_dpg", "alpha": 0.5, "l_max": new_tokens},
            "optim": {
                "lr": 1e-5,
                "warmup_steps": 0,
                "mixed_precision": precision,
                "micro_batch_size": 2 * args.k,
            },
            "logging": {"jsonl": False, "tensorboard": False, "progress": False},
            "run": {"output_dir": str(out), "name": backend, "max_steps": args.steps},
        }
    )
    print(f"\n[{backend}]")
    build_started = time.perf_counter()
    trainer = build_trainer(cfg, _HalfVerifier(), problems=demo_problems(64, seed=cfg.run.seed))
    print(f"  built in {time.perf_counter() - build_started:.1f} s")
    rows: list[dict[str, float]] = []
    started = time.perf_counter()
    try:
        for step in range(1, args.steps + 1):
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            metrics = trainer.train_step()
            if device == "cuda":
                torch.cuda.synchronize()
            row = {
                "step": float(step),
                "tokens_per_s": metrics["tokens_per_s"],
                "step_s": metrics["time/step_s"],
                "peak_gib": torch.cuda.max_memory_allocated() / 2**30
                if device == "cuda"
                else math.nan,
                # Logged by the score stage whenever there is a reference (α-DPG always has).
                "ref_logratio_max_abs": metrics.get("policy/ref_logratio_max_abs", math.nan),
                "logprob_gap": metrics.get("sampling/logprob_gap", math.nan),
                "pass_rate": metrics["pass_rate"],
            }
            rows.append(row)
            print("  " + _format(row))
            if time.perf_counter() - started > budget_s / 2:
                print(f"  stopping: half of the {budget_s:.0f} s left for this run is spent")
                break
    finally:
        trainer.close()
        del trainer
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def _format(row: dict[str, float]) -> str:
    return (
        f"step {row['step']:.0f}: {row['tokens_per_s']:8.0f} tok/s  {row['step_s']:7.2f} s/step  "
        f"peak {row['peak_gib']:6.2f} GiB  ref_logratio_max_abs {row['ref_logratio_max_abs']:.2e}  "
        f"logprob_gap {_or_na(row['logprob_gap'])}  pass {row['pass_rate']:.2f}"
    )


def _or_na(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2e}"


def _summary(results: dict[str, list[dict[str, float]]]) -> None:
    if not results:
        return
    print("\nmedian over steps after the first (step 1 includes warm-up):")
    for backend, rows in results.items():
        later = rows[1:] or rows
        with contextlib.suppress(statistics.StatisticsError):
            first = rows[0]["ref_logratio_max_abs"]
            print(
                f"  {backend:5s} {statistics.median(r['tokens_per_s'] for r in later):8.0f} tok/s  "
                f"{statistics.median(r['step_s'] for r in later):7.2f} s/step  "
                f"peak {max(r['peak_gib'] for r in rows):6.2f} GiB  "
                f"ref_logratio_max_abs at step 1 {first:.2e}  "
                f"logprob_gap {_or_na(statistics.median(r['logprob_gap'] for r in rows))}"
            )


if __name__ == "__main__":
    sys.exit(main())
