"""The checker registry: which checkers a deployment loads.

Checker modules are imported only when named, so a deployment without Lean never imports the
Lean pool, and a math-only test never imports Lean code. ``SIEVE_CHECKERS`` may also name a
third-party checker as ``package.module:ClassName``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from verifier_service.checkers.base import (
    DEFAULT_AXIOMS,
    Checker,
    InvalidInput,
    Job,
    Policy,
)

if TYPE_CHECKING:
    from verifier_service.settings import VerifierSettings

__all__ = [
    "CHECKERS",
    "DEFAULT_AXIOMS",
    "Checker",
    "InvalidInput",
    "Job",
    "Policy",
    "build_checker",
    "build_checkers",
    "enabled_checker_names",
]

#: Built-in checkers: name -> ``module:ClassName``.
CHECKERS: dict[str, str] = {
    "lean4": "verifier_service.checkers.lean:LeanChecker",
    "math": "verifier_service.checkers.math:MathChecker",
}


def enabled_checker_names(settings: VerifierSettings) -> list[str]:
    """``settings.checkers`` as given, or ``math`` (+ ``lean4`` when a REPL is configured)."""
    if settings.checkers:
        return list(dict.fromkeys(settings.checkers))
    names = ["math"]
    if settings.lean_repl:
        names.append("lean4")
    return names


def _load_class(name: str) -> type[Checker]:
    target = CHECKERS.get(name)
    if target is None:
        if ":" not in name:
            known = ", ".join(sorted(CHECKERS))
            raise ValueError(
                f"unknown checker {name!r} in SIEVE_CHECKERS; known: {known} "
                "(or give a third-party checker as 'package.module:ClassName')"
            )
        target = name
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"checker {name!r}: cannot import {module_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Checker)):
        raise ValueError(f"checker {name!r}: {target!r} is not a Checker subclass")
    return cls


def build_checker(name: str, settings: VerifierSettings) -> Checker:
    """Instantiate one checker by registry name (or ``module:Class``)."""
    return _load_class(name)(settings)


def build_checkers(settings: VerifierSettings) -> dict[str, Checker]:
    """The enabled checkers, keyed by the name requests use (``Checker.name``).

    Raises :class:`ValueError` naming the culprit for an unknown or unloadable checker, so a
    misconfigured deployment fails at start-up instead of at its first request.
    """
    checkers: dict[str, Checker] = {}
    for name in enabled_checker_names(settings):
        checker = build_checker(name, settings)
        checkers[checker.name] = checker
    return checkers
