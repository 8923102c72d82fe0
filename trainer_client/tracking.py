"""Per-step metrics to JSONL (always readable), TensorBoard, and W&B when configured.

JSONL is the record of truth: one object per step, ``{"step": N, ...}``, which the plots and the
resume test read back. On resume, lines past the checkpoint's step are dropped so a crashed run's
tail is not duplicated. W&B is imported only when a project is configured.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["Tracker", "plot_metrics", "read_metrics"]

METRICS_FILE = "metrics.jsonl"


class Tracker:
    """Writes one step's metrics to every configured sink; a no-op when ``enabled`` is false."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        jsonl: bool = True,
        tensorboard: bool = True,
        wandb_project: str | None = None,
        wandb_entity: str | None = None,
        run_name: str | None = None,
        config: Mapping[str, Any] | None = None,
        resume_step: int | None = None,
        enabled: bool = True,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._jsonl = None
        self._tb = None
        self._wandb = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if jsonl:
            path = self.run_dir / METRICS_FILE
            if path.exists():
                kept = [r for r in read_metrics(path) if resume_step and r["step"] <= resume_step]
                path.write_text("".join(json.dumps(r) + "\n" for r in kept))
            self._jsonl = path.open("a")
        if tensorboard:
            # Optional backends, imported only when asked for (wandb is an extra of its own).
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(
                log_dir=str(self.run_dir / "tensorboard"), purge_step=resume_step
            )
        if wandb_project:
            import wandb

            self._wandb = wandb.init(
                project=wandb_project,
                entity=wandb_entity,
                name=run_name,
                config=dict(config or {}),
                resume="allow",
            )

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        if not self.enabled:
            return
        scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        if self._jsonl is not None:
            record = {"step": step, **{k: _json_number(v) for k, v in scalars.items()}}
            self._jsonl.write(json.dumps(record) + "\n")
            self._jsonl.flush()
        if self._tb is not None:
            for key, value in scalars.items():
                if math.isfinite(value):
                    self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The JSONL records of a run (``path`` is the file or the run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _json_number(value: float) -> float | str | None:
    """JSON has no NaN/inf; keep them readable instead of emitting invalid JSON."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return None
    return "inf" if value > 0 else "-inf"


#: The panels of :func:`plot_metrics`: title and the metric keys drawn in it.
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pass rate of the batch", ("pass_rate",)),
    ("loss", ("loss",)),
    ("KL estimates (importance sampling)", ("is/forward_kl", "is/reverse_kl_verified")),
    ("effective sample size / k", ("is/ess_fraction",)),
    ("log Ẑ (base pass rate, estimated)", ("objective/log_z_mean",)),
    ("seconds per step", ("time/step_s", "time/verify_wait_s")),
)


def plot_metrics(run_dir: str | Path, out: str | Path) -> Path:
    """Training curves of a run (from its JSONL) as one PNG; missing metrics are skipped."""
    # Lazy: the Agg backend must be chosen before pyplot is first imported.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for ax, (title, keys) in zip(axes.flat, PANELS, strict=True):
        for key in keys:
            points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float)]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, label=key)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(keys) > 1 and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
