"""Where the vendored third-party files of a source checkout are: the one place that says so.

The data sets live in ``data/`` and the recorded Lean REPL transcripts in
``tests/fixtures/lean-repl/`` (sources and licences: ``NOTICE``). They sit beside the packages,
not in them, so an installed wheel has neither: each path here may not exist, and whoever needs
the file decides what its absence means (a test fails, the REPL double answers synthetically).

The module uses only the standard library: the REPL double, which runs as a plain script, loads
it by file path to find its own checkout's transcripts.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA", "REPO_ROOT", "TRANSCRIPTS", "data_file"]

#: The root of the source checkout this package was loaded from.
REPO_ROOT = Path(__file__).resolve().parents[1]
#: The data sets (``data/README.md`` says what each holds).
DATA = REPO_ROOT / "data"
#: Real REPL input/output pairs, ``core/`` and ``mathlib/`` (see the README one folder up).
TRANSCRIPTS = REPO_ROOT / "tests" / "fixtures" / "lean-repl" / "transcripts"


def data_file(name: str) -> Path:
    """The vendored data set ``name`` (e.g. ``"mff-lwb-unseen-200.parquet"``), existing or not."""
    return DATA / name
