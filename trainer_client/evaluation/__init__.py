"""Evaluate provers the way the method notes do: pass@k, diversity, difficulty shifts, plots.

The numbers (:mod:`.metrics`, :mod:`.diversity`, :mod:`.transitions`, :mod:`.pareto`) need only
numpy; figures (:mod:`.plots`) need matplotlib; the ``sieve-eval`` command (:mod:`.cli`) samples
from a checkpoint and asks the verifier.
"""

from trainer_client.evaluation.diversity import (
    Diversity,
    premises,
    proof_diversity,
    shannon_entropy,
    simpson_index,
    tactics,
)
from trainer_client.evaluation.metrics import (
    bootstrap_se,
    pass_at_k,
    pass_at_k_curve,
    pass_at_k_matrix,
)
from trainer_client.evaluation.pareto import pareto_frontier, pareto_optimal
from trainer_client.evaluation.results import EvalResult, ProblemResult
from trainer_client.evaluation.transitions import (
    BINS,
    TransitionMatrix,
    difficulty_bin,
    difficulty_bins,
    transition_matrix,
)

__all__ = [
    "BINS",
    "Diversity",
    "EvalResult",
    "ProblemResult",
    "TransitionMatrix",
    "bootstrap_se",
    "difficulty_bin",
    "difficulty_bins",
    "pareto_frontier",
    "pareto_optimal",
    "pass_at_k",
    "pass_at_k_curve",
    "pass_at_k_matrix",
    "premises",
    "proof_diversity",
    "shannon_entropy",
    "simpson_index",
    "tactics",
    "transition_matrix",
]
