"""``sieve-verifier selftest``: prove a running deployment judges known proofs right.

:mod:`.cases` bundles proofs whose verdict is known: genuine proofs in the styles provers write
(helper lemmas first, whole files, examples) that must come back ``valid``, and one proof per
hostile class the soundness rules close (``sorry``, injected axioms, changed statements,
``native_decide``, code run while elaborating, ...) that must come back ``invalid``.
:mod:`.runner` sends them to a URL and compares. Run it first after ``docker compose up``.
"""

from __future__ import annotations

from verifier_service.selftest.cases import CASES, DEFAULT_HEADER, Case, Expect
from verifier_service.selftest.runner import CaseResult, SelftestError, SelftestReport, run_selftest

__all__ = [
    "CASES",
    "DEFAULT_HEADER",
    "Case",
    "CaseResult",
    "Expect",
    "SelftestError",
    "SelftestReport",
    "run_selftest",
]
