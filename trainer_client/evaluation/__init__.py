"""Evaluate provers the way the method notes do: pass@k, diversity, difficulty shifts, plots.

The numbers (:mod:`.metrics`, :mod:`.diversity`, :mod:`.transitions`, :mod:`.pareto`,
:mod:`.significance`) need only numpy; figures (:mod:`.plots`) need matplotlib; the
``sieve-eval`` command (:mod:`.cli`) samples from a checkpoint and asks the verifier.
"""

from trainer_client.evaluation.diversity import (
    DIVERSITY_DEFINITIONS,
    Diversity,
    paper_premises,
    paper_tactics,
    premises,
    proof_diversity,
    response_diversity,
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
from trainer_client.evaluation.pareto import (
    PARETO_RULES,
    paper_pareto_frontier,
    pareto_by_rule,
    pareto_frontier,
    pareto_optimal,
)
from trainer_client.evaluation.results import EvalResult, ProblemResult
from trainer_client.evaluation.significance import paired_bootstrap_pvalues
from trainer_client.evaluation.transitions import (
    BIN_THRESHOLDS,
    BINS,
    TransitionMatrix,
    difficulty_bin,
    difficulty_bins,
    transition_matrix,
)

__all__ = [
    "BINS",
    "BIN_THRESHOLDS",
    "DIVERSITY_DEFINITIONS",
    "PARETO_RULES",
    "Diversity",
    "EvalResult",
    "ProblemResult",
    "TransitionMatrix",
    "bootstrap_se",
    "difficulty_bin",
    "difficulty_bins",
    "paired_bootstrap_pvalues",
    "paper_pareto_frontier",
    "paper_premises",
    "paper_tactics",
    "pareto_by_rule",
    "pareto_frontier",
    "pareto_optimal",
    "pass_at_k",
    "pass_at_k_curve",
    "pass_at_k_matrix",
    "premises",
    "proof_diversity",
    "response_diversity",
    "shannon_entropy",
    "simpson_index",
    "tactics",
    "transition_matrix",
]
