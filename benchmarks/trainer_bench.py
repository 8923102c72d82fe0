"""Time one α-DPG step against TRL's GRPOTrainer (Dr. GRPO) on the same tiny workload, in one run.

The workload: a random 2-layer Llama (hidden 128) with a 33-token character tokenizer, 8 prompts ×
4 samples × 16 new tokens, one CPU thread. Both trainers start from the same weights and sample the
same prompts. TRL's ``GRPOTrainer`` runs ``loss_type="dr_grpo"`` with β = 0.04 (its reference
model and KL term), no std scaling and its other defaults (bf16 autocast, even on a CPU, and
gradient checkpointing; ``--trl-matched`` runs it in float32 without checkpointing, as ours
runs). Its reward function is :class:`~trainer_client.integrations.trl.SieveReward`; by default
over an in-process checker (a few microseconds an answer), with ``--trl-reward same`` over the
same verifier as ours (the real service: what a TRL user of Sieve runs). Ours send every proof
over HTTP to the real service (``math`` checker on loopback) when it can be started, else to an
in-process fake (the script says which).

A step is everything: sampling, verifying, the reference pass and the update. TRL's trainer drives
the run; after each of its steps (timed from ``on_step_begin`` to ``on_step_end``) our three
variants take one step each, in rotating order, so machine noise hits all of them alike.

``--verifier-delay S`` swaps the verifier for a stand-in that takes ``S`` seconds per proof,
``--verifier-workers`` proofs at a time (a Lean pool); TRL's reward function calls the same
stand-in, so both wait for the same verifier.

``--trl-reward`` and ``--verifier-delay`` set, TRL's reward waits for the verifier once per step
(GRPOTrainer scores after generating); ours overlaps it with the step's other work.

    python benchmarks/trainer_bench.py [--steps 20] [--warmup 3] [--fake-verifier]
        [--verifier-delay 0.05 --verifier-workers 8] [--generate-batch N] [--no-trl]
        [--trl-reward in-process|same] [--alpha-only]

It prints the load average at the start and the end (the machine may be shared), the medians,
and the ratio α-DPG ÷ TRL both as a ratio of medians and as the median of the ratios of adjacent
steps (each α-DPG step runs right after a TRL step).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

# The workload is the CPU demo's task (examples/demo/), importable from a checkout: the
# script runs as `python benchmarks/<name>.py` from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: 18 demo characters + 11 letters + 4 special tokens = 33 tokens.
ALPHABET_EXTRA = "abcdefghijk"
PROMPTS, K, NEW_TOKENS, LR = 8, 4, 16, 1e-5
ALPHA = "alpha_dpg α=0.5"
TRL = "TRL dr_grpo β=0.04"
VARIANTS = {
    ALPHA: {"objective": "alpha_dpg", "alpha": 0.5},
    "dr_grpo β=0.04": {"objective": "dr_grpo", "kl_coef": 0.04},
    "dr_grpo β=0": {"objective": "dr_grpo", "kl_coef": 0.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--fake-verifier", action="store_true", help="skip the real service")
    parser.add_argument(
        "--verifier-delay",
        type=float,
        default=None,
        metavar="S",
        help="a stand-in verifier that takes S seconds per proof",
    )
    parser.add_argument("--verifier-workers", type=int, default=8)
    parser.add_argument(
        "--generate-batch",
        type=int,
        default=None,
        help="at most this many sequences per generate call (sampling.batch_size; default: no "
        "cap, the step's chunk plan chooses); each call's chunk is verified as it comes",
    )
    parser.add_argument("--no-trl", action="store_true", help="time our trainers only")
    parser.add_argument(
        "--trl-reward",
        choices=("in-process", "same"),
        default="in-process",
        help="TRL's SieveReward over an in-process checker (default) or over the same verifier "
        "as ours (with --verifier-delay it is always the same stand-in)",
    )
    parser.add_argument(
        "--trl-no-checkpointing",
        action="store_true",
        help="turn off TRL's gradient checkpointing (GRPOConfig's default is on; ours is off)",
    )
    parser.add_argument(
        "--trl-matched",
        action="store_true",
        help="TRL in our settings: float32 (GRPOConfig defaults to bf16 autocast, on a CPU too) "
        "and no gradient checkpointing",
    )
    parser.add_argument(
        "--alpha-only",
        action="store_true",
        help="time α-DPG beside TRL, not our two dr_grpo variants (shorter rounds: less drift)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average at the start: {_load()}", flush=True)

    from examples.demo.task import demo_problems
    from examples.demo.tokenizer import DEMO_ALPHABET, char_tokenizer

    tokenizer = char_tokenizer(DEMO_ALPHABET + ALPHABET_EXTRA)
    problems = demo_problems(64)
    with contextlib.ExitStack() as stack:
        verifier, kind = stack.enter_context(_verifier(args))
        out = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        # Distinct sampling seeds: identical completions would be answered from the verifier's
        # cache for every variant but the first.
        ours = {
            name: _our_trainer(name, loss, tokenizer, problems, verifier, out, args, seed=i)
            for i, (name, loss) in enumerate(VARIANTS.items())
            if name == ALPHA or not args.alpha_only
        }
        stack.callback(lambda: [t.close() for t in ours.values()])
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in [*ours, TRL]}
        total = args.warmup + args.steps
        names = list(ours)
        done = [0]
        cpu_marks: list[tuple[float, float]] = []

        def our_steps() -> None:
            step = done[0]
            if step == args.warmup:
                cpu_marks.append(_descendant_cpu_s())
            turn = step % len(names)
            for name in names[turn:] + names[:turn]:  # rotate who goes first
                metrics = ours[name].train_step()
                if step >= args.warmup:
                    rows[name].append(metrics)
            done[0] += 1

        trl_note = "not run (--no-trl)"
        if not args.no_trl:
            # TRL's reward: the in-process checker, or the same verifier (stand-in or service).
            same = args.verifier_delay is not None or args.trl_reward == "same"
            reward_verifier = verifier if same else _FakeVerifier()
            try:
                trl_note = _run_trl(
                    tokenizer,
                    problems,
                    reward_verifier,
                    out,
                    total,
                    args.warmup,
                    rows,
                    our_steps,
                    checkpointing=not (args.trl_no_checkpointing or args.trl_matched),
                    bf16=not args.trl_matched,
                )
            except ImportError as exc:
                trl_note = f"not run: {exc}"
        while done[0] < total:
            our_steps()
        cpu_marks.append(_descendant_cpu_s())
    _report(rows, kind, trl_note, tokenizer, args)
    if len(cpu_marks) == 2 and args.steps:
        # Only our trainers use the verifier (TRL's reward is in-process unless it shares it).
        (service_0, workers_0), (service_1, workers_1) = cpu_marks
        service = (service_1 - service_0) / args.steps
        workers = (workers_1 - workers_0) / args.steps
        print(
            f"CPU of the verifier per round of {len(ours)} of our steps: service process "
            f"{service:.4f} s, checker workers {workers:.4f} s"
        )


# --- our trainer ------------------------------------------------------------------------------


def bench_model(tokenizer):
    """The workload's policy: a random 2-layer Llama (hidden 128), the same weights each time."""
    from trainer_client.build import random_model

    return random_model(
        {
            "model_type": "llama",
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 64,
        },
        tokenizer,
        seed=0,
    )


def _our_trainer(name, loss, tokenizer, problems, verifier, out, args, *, seed):
    from trainer_client.config import TrainConfig
    from trainer_client.data import build_prompt
    from trainer_client.loop import Trainer

    cfg = TrainConfig.from_dict(
        {
            "model": {"name_or_path": "random-llama"},
            "sampling": {
                "k": K,
                "prompts_per_step": PROMPTS,
                "max_new_tokens": NEW_TOKENS,
                "batch_size": args.generate_batch,
            },
            "loss": loss,
            "optim": {"lr": LR, "warmup_steps": 0},
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
        cfg,
        model=bench_model(tokenizer),
        tokenizer=tokenizer,
        problems=problems,
        verifier=verifier,
        prompt_fn=build_prompt,
    )


# --- TRL's GRPOTrainer ------------------------------------------------------------------------


def _run_trl(
    tokenizer, problems, verifier, out, total, warmup, rows, after_each_step, *, checkpointing, bf16
) -> str:
    """Train TRL's GRPOTrainer for ``total`` steps, calling ``after_each_step`` between steps."""
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from trainer_client.data import build_prompt
    from trainer_client.integrations.trl import SieveReward

    path = out / "trl-start"
    bench_model(tokenizer).save_pretrained(path)  # TRL loads its reference model from a path
    tokenizer.save_pretrained(path)
    dataset = Dataset.from_list(
        [{"prompt": build_prompt(p), "answer": str(p.answer)} for p in problems]
    )
    reward = SieveReward(client=verifier, checker="math", name="sieve_math")

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            timings.append(time.perf_counter() - self.start)
            after_each_step()

    timings: list[float] = []
    config = GRPOConfig(
        output_dir=str(out / "trl"),
        per_device_train_batch_size=PROMPTS * K,  # completions per step
        num_generations=K,
        max_completion_length=NEW_TOKENS,
        temperature=1.0,
        top_p=1.0,
        beta=0.04,
        loss_type="dr_grpo",
        scale_rewards="none",
        gradient_checkpointing=checkpointing,
        bf16=bf16,
        learning_rate=LR,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_steps=total,
        use_cpu=True,
        report_to="none",
        logging_steps=10**6,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=str(path),
        reward_funcs=reward,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[Timer()],
    )
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train()
    rows[TRL] = [{"time/step_s": t} for t in timings[warmup:]]
    return (
        f"trl {trl.__version__} GRPOTrainer, reward SieveReward over {_verifier_name(verifier)}, "
        f"gradient checkpointing {'on (its default)' if checkpointing else 'off'}, "
        f"{'bf16 autocast (its default)' if bf16 else 'float32 (as ours)'}"
    )


# --- verifiers --------------------------------------------------------------------------------


def _verifier_name(verifier) -> str:
    if isinstance(verifier, _DelayedVerifier):
        return "the same stand-in as ours"
    if isinstance(verifier, _FakeVerifier):
        return "an in-process checker"
    return "the same service as ours (HTTP)"


@contextlib.contextmanager
def _verifier(args):
    if args.verifier_delay is not None:
        with _DelayedVerifier(args.verifier_delay, args.verifier_workers) as stand_in:
            yield (
                stand_in,
                f"stand-in: {args.verifier_delay:g} s per proof, "
                f"{args.verifier_workers} at a time (in process)",
            )
        return
    if not args.fake_verifier:
        try:
            from trainer_client.client import VerifierClient
            from trainer_client.local_verifier import local_verifier

            with local_verifier(["math"]) as url, VerifierClient(url) as client:
                yield client, f"real service, math checker, {url}"
                return
        except (ImportError, RuntimeError) as exc:
            print(f"real verifier unavailable ({exc}); using the in-process fake", file=sys.stderr)
    yield _FakeVerifier(), "in-process fake (no HTTP)"


class _FakeVerifier:
    def verify(self, proofs):
        from examples.demo.task import is_correct
        from trainer_client.client import VerifyResult

        return [
            VerifyResult(
                id=p["id"],
                verdict="valid" if is_correct(p["code"], int(p["answer"])) else "invalid",
            )
            for p in proofs
        ]


class _DelayedVerifier(_FakeVerifier):
    """Each proof takes ``delay_s`` on one of ``workers`` shared workers, like a Lean pool."""

    def __init__(self, delay_s: float, workers: int) -> None:
        self.delay_s = delay_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stand-in")
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._pool.shutdown(wait=True)

    def verify(self, proofs):
        def one(proof):
            time.sleep(self.delay_s)
            return super(_DelayedVerifier, self).verify([proof])[0]

        return list(self._pool.map(one, proofs))


# --- report -----------------------------------------------------------------------------------


def _report(rows, kind, trl_note, tokenizer, args):
    keys = (
        "time/step_s",
        "time/sample_s",
        "time/reference_s",
        "time/verify_wait_s",
        "time/update_s",
        "verifier/latency_s",
    )
    med = {
        name: {key: statistics.median(m.get(key, math.nan) for m in got) for key in keys}
        for name, got in rows.items()
        if got
    }
    print(f"verifier: {kind}")
    print(f"TRL: {trl_note}")
    print(
        f"model: random 2-layer Llama, hidden 128, vocab {len(tokenizer)}; {PROMPTS} prompts × "
        f"{K} samples × {NEW_TOKENS} new tokens; 1 CPU thread; generate calls of at most "
        f"{args.generate_batch or PROMPTS * K} sequences; median of {args.steps} steps after "
        f"{args.warmup}"
    )
    print(
        f"{'trainer':<20}{'step s':>9}{'sample':>9}{'ref':>9}{'wait':>9}{'update':>9}"
        f"{'verify':>9}{'wait %':>9}"
    )

    def cell(value: float) -> str:
        return f"{'':>9}" if math.isnan(value) else f"{value:>9.4f}"

    for name, m in med.items():
        share = m["time/verify_wait_s"] / m["time/step_s"]
        print(
            f"{name:<20}"
            + "".join(cell(m[key]) for key in keys)
            + (f"{'':>9}" if math.isnan(share) else f"{share:>9.1%}")
        )
    alpha = med[ALPHA]
    share = alpha["time/verify_wait_s"] / alpha["time/step_s"]
    print(f"α-DPG verifier wait: {share:.1%} of a step (target < 10%)")
    if TRL in med:
        ratio = alpha["time/step_s"] / med[TRL]["time/step_s"]
        print(f"ratio α-DPG / {TRL} (same run): {ratio:.3f} (target ≤ 0.6)")
        # Each α-DPG step runs right after a TRL step: the median of those pairs' ratios is the
        # figure least moved by drift on a shared machine.
        pairs = [
            a["time/step_s"] / t["time/step_s"]
            for a, t in zip(rows[ALPHA], rows[TRL], strict=False)
        ]
        print(
            f"ratio α-DPG / {TRL}, median of {len(pairs)} adjacent pairs: "
            f"{statistics.median(pairs):.3f} (quartiles {_quartiles(pairs)})"
        )
    print(f"load average at the end: {_load()}")
    for other in ("dr_grpo β=0.04", "dr_grpo β=0"):
        if other in med:
            ratio = alpha["time/step_s"] / med[other]["time/step_s"]
            print(f"ratio α-DPG / our {other}: {ratio:.3f}")


def _descendant_cpu_s() -> tuple[float, float]:
    """CPU seconds (user + system) used so far by this process's descendants that still run:
    its children (the local verifier's service process), and theirs (the fork server and the
    checker workers). Linux ``/proc``; zeros elsewhere."""
    proc = Path("/proc")
    if not proc.is_dir():
        return 0.0, 0.0
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    mine = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    mine.discard(os.getpid())
    services = {pid for pid in mine if parents[pid] == os.getpid()}
    hz = os.sysconf("SC_CLK_TCK")
    return (
        sum(ticks[pid] for pid in services) / hz,
        sum(ticks[pid] for pid in mine - services) / hz,
    )


def _quartiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    low, _, high = statistics.quantiles(values, n=4)
    return f"{low:.3f}-{high:.3f}"


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
