"""The demo's command: fit the base, train the sweep, evaluate and plot it.

python -m examples.demo --config configs/demo_cpu.yaml
python -m examples.demo --config configs/demo_cpu.yaml --seeds 3
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from transformers.utils import logging as hf_logging

from examples.demo.config import load_demo_config
from examples.demo.sweep import run_sweep
from trainer_client.config import ConfigError

__all__ = ["cli", "main"]

cli = typer.Typer(
    name="demo",
    help="The CPU demo: α-DPG against Dr. GRPO on a toy task (no GPU, no Lean).",
    add_completion=False,
    pretty_exceptions_enable=False,
)


@cli.command()
def sweep(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML demo config.")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a field: demo.field=value or section.field=value (repeatable)."
        ),
    ] = None,
    verifier_url: Annotated[
        str | None, typer.Option(help="Verifier base URL; none starts a local math verifier.")
    ] = None,
    output_dir: Annotated[str | None, typer.Option(help="run.output_dir")] = None,
    max_steps: Annotated[int | None, typer.Option(help="run.max_steps of every run")] = None,
    seed: Annotated[int | None, typer.Option(help="run.seed")] = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds",
            min=1,
            help="demo.seeds: repeat fine-tuning and evaluation over this many seeds "
            "(run.seed, run.seed + 1, …); figures become mean ± SE over seeds.",
        ),
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config and exit.")
    ] = False,
) -> None:
    """Fit the base model, train every run of the sweep, evaluate them all."""
    try:
        overrides = [*(set_ or []), *([f"demo.seeds={seeds}"] if seeds is not None else [])]
        cfg = load_demo_config(
            config,
            overrides,
            verifier_url=verifier_url,
            output_dir=output_dir,
            max_steps=max_steps,
            seed=seed,
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config/--set") from None
    if print_config:
        typer.echo(cfg.to_yaml())
        return
    hf_logging.disable_progress_bar()
    run_sweep(cfg)


def main(argv: Sequence[str] | None = None) -> None:
    cli(args=list(sys.argv[1:] if argv is None else argv), prog_name="python -m examples.demo")


if __name__ == "__main__":
    main()
