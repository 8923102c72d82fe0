"""The manual's settings table gives the defaults VerifierSettings has (the numeric ones)."""

from __future__ import annotations

import re

from tests.docs import doc_section
from verifier_service.settings import VerifierSettings

_NUMBER = re.compile(r"(\d+(?:\.\d+)?)( MiB)?")


def _value(text: str) -> float | None:
    """``600``, ``0.5``, ``64 MiB`` (in bytes), ``0 (forever)``; None for anything else."""
    match = _NUMBER.fullmatch(re.sub(r"\s*\(.*\)$", "", text.strip()))
    if match is None:
        return None
    return float(match.group(1)) * (2**20 if match.group(2) else 1)


def numeric_rows() -> list[tuple[str, float]]:
    """``(variable, default)`` for every row of the table whose defaults are plain numbers."""
    section = doc_section("settings", "## Settings (verifier)")
    pairs = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`SIEVE_"):
            continue
        names = re.findall(r"`(SIEVE_[A-Z_]+)`", cells[0])
        values = [_value(v) for v in cells[1].split(",")]
        if len(names) == len(values) and None not in values:
            pairs.extend(zip(names, values, strict=True))
    return pairs


def test_the_numeric_defaults_in_readme_are_the_settings_defaults() -> None:
    rows = numeric_rows()
    assert len(rows) >= 17, rows  # the table's numeric rows are all read
    fields = VerifierSettings.model_fields
    for variable, written in rows:
        name = variable.removeprefix("SIEVE_").lower()
        assert name in fields, f"README names {variable}, which VerifierSettings does not have"
        default = fields[name].default
        assert written == float(default), f"{variable}: README {written:g}, code {default}"
