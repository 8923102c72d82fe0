"""``sieve-train``: the command line of one training run (building it: :mod:`trainer_client.build`).

    sieve-train --config configs/paper_alpha_dpg.yaml --verifier-url http://verifier:8000 \
        --alpha 0.25
    accelerate launch -m trainer_client.train --config configs/paper_alpha_dpg.yaml ...
    sieve-train --config configs/smoke_cpu.yaml    # 2 CPU steps, nothing downloaded

With no verifier URL (``verifier.url`` unset and no ``--verifier-url``) a local verifier is
started for the run (:mod:`trainer_client.local_verifier`). The CPU demo's sweep is a command of
its own: ``python -m examples.demo --config configs/demo_cpu.yaml``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from transformers.utils import logging as hf_logging

from trainer_client.build import run_training
from trainer_client.config import ConfigError, load_config
from trainer_client.plan import plan_memory

__all__ = ["cli", "main"]

cli = typer.Typer(
    name="sieve-train",
    help="Fine-tune a prover toward its verifier-filtered base distribution (α-DPG).",
    add_completion=False,
    pretty_exceptions_enable=False,
)


@cli.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML run config.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field: section.field=value (repeatable)."),
    ] = None,
    verifier_url: Annotated[
        str | None, typer.Option(help="Verifier base URL; none starts a local math verifier.")
    ] = None,
    alpha: Annotated[float | None, typer.Option(help="loss.alpha")] = None,
    output_dir: Annotated[str | None, typer.Option(help="run.output_dir")] = None,
    name: Annotated[str | None, typer.Option(help="run.name")] = None,
    max_steps: Annotated[int | None, typer.Option(help="run.max_steps")] = None,
    seed: Annotated[int | None, typer.Option(help="run.seed")] = None,
    resume: Annotated[
        str | None, typer.Option(help="'latest' or a checkpoint directory (run.resume).")
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config and exit.")
    ] = False,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan", help="Print the per-GPU memory budget (no weights loaded) and exit."
        ),
    ] = False,
    gpus: Annotated[
        int | None,
        typer.Option(help="--plan: FSDP processes (default: WORLD_SIZE, else 1).", min=1),
    ] = None,
    gpu_memory_gib: Annotated[
        float, typer.Option(help="--plan: memory of one GPU, GiB.", min=1)
    ] = 80.0,
) -> None:
    """Train one run."""
    try:
        cfg = load_config(
            config,
            set_ or [],
            verifier_url=verifier_url,
            alpha=alpha,
            output_dir=output_dir,
            name=name,
            max_steps=max_steps,
            seed=seed,
            resume=resume,
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config/--set") from None
    if print_config:
        typer.echo(cfg.to_yaml())
        return
    if plan:
        try:
            budget = plan_memory(cfg, gpus=gpus, gpu_memory_gib=gpu_memory_gib)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint="--config/--set") from None
        typer.echo(budget.render())
        return
    # The run has its own progress bar; transformers' per-load bars only clutter it.
    hf_logging.disable_progress_bar()
    run_training(cfg)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m trainer_client.train`` (what ``accelerate launch -m`` runs)."""
    cli(args=list(sys.argv[1:] if argv is None else argv), prog_name="sieve-train")


if __name__ == "__main__":
    main()
