"""Train a tabular policy with the real advantages and loss, and check where each α lands.

The task is one "prompt" whose answers are 50 categories: a base distribution ``a`` (softmax
of seeded random logits) of which 15 answers are correct. The target ``p = a·v/Z`` is known
exactly, so every divergence is an exact sum, not a sampled estimate. The policy starts at
``a``; each step draws ``k = 4`` samples for each of 64 repeated groups of the problem from π
and takes one SGD step on ``reinforce_loss(alpha_dpg_advantages(...))``.

Expected, from the method: α = 0 (forward KL) reaches ``p`` itself; α = 0.999 (the RL end)
piles the correct mass onto a few answers: higher precision π(correct), lower coverage (entropy
of π among the correct answers); α = 0.5 lies between on coverage. (Precision at α = 0 and
α = 0.5 agrees to ~1e-3 here: near the target every α < 1 pushes wrong answers down at the same
rate, so only the RL end stands out on precision in a tabular problem.)
"""

import pytest
import torch

from trainer_client.divergences import forward_kl
from trainer_client.losses import reinforce_loss
from trainer_client.objectives import alpha_dpg_advantages

ANSWERS, CORRECT = 50, 15
GROUPS, K, STEPS, LR = 64, 4, 600, 5.0


def problem():
    gen = torch.Generator().manual_seed(0)
    base_logits = 1.5 * torch.randn(ANSWERS, generator=gen, dtype=torch.float64)
    correct = torch.zeros(ANSWERS, dtype=torch.bool)
    correct[torch.randperm(ANSWERS, generator=gen)[:CORRECT]] = True
    return base_logits, correct


def train(alpha: float, seed: int = 1) -> torch.Tensor:
    base_logits, correct = problem()
    log_a = torch.log_softmax(base_logits, 0)
    gen = torch.Generator().manual_seed(seed)
    theta = base_logits.clone().requires_grad_(True)
    optimiser = torch.optim.SGD([theta], lr=LR)
    group_ids = torch.arange(GROUPS).repeat_interleave(K)
    mask = torch.ones(GROUPS * K, 1, dtype=torch.bool)
    for _ in range(STEPS):
        log_pi = torch.log_softmax(theta, 0)
        with torch.no_grad():
            probs = log_pi.exp().expand(GROUPS, ANSWERS)
            y = torch.multinomial(probs, K, replacement=True, generator=gen).reshape(-1)
        advantages = alpha_dpg_advantages(
            log_pi.detach()[y], log_a[y], correct[y], group_ids, alpha
        )
        loss = reinforce_loss(log_pi[y].unsqueeze(1), mask, advantages, l_max=1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return torch.softmax(theta.detach(), 0)


@pytest.fixture(scope="module")
def trained():
    return {alpha: train(alpha) for alpha in (0.0, 0.5, 0.999)}


@pytest.fixture(scope="module")
def target():
    base_logits, correct = problem()
    a = torch.softmax(base_logits, 0)
    return a * correct / (a * correct).sum(), correct


def precision(pi, correct):
    return pi[correct].sum().item()


def coverage(pi, correct):
    """Entropy (nats) of π among the correct answers: how many of them it keeps alive."""
    restricted = pi[correct] / pi[correct].sum()
    return -(restricted * restricted.log()).sum().item()


def test_alpha_zero_reaches_the_filtered_target(trained, target):
    p, _ = target
    start = forward_kl(p, torch.softmax(problem()[0], 0)).item()
    assert start > 1.0  # log(1/Z): far from p at the start
    assert forward_kl(p, trained[0.0]).item() < 0.01


def test_rl_end_trades_coverage_for_precision(trained, target):
    p, correct = target
    assert precision(trained[0.999], correct) > precision(trained[0.0], correct)
    assert precision(trained[0.999], correct) > precision(trained[0.5], correct)
    assert coverage(trained[0.999], correct) < coverage(trained[0.0], correct) - 0.5
    alive = {alpha: int((pi[correct] > 0.01).sum()) for alpha, pi in trained.items()}
    assert alive[0.999] < alive[0.0]
    assert alive[0.0] == int((p > 0.01).sum())


def test_intermediate_alpha_lies_between(trained, target):
    _, correct = target
    assert coverage(trained[0.999], correct) < coverage(trained[0.5], correct)
    assert coverage(trained[0.5], correct) < coverage(trained[0.0], correct)
    p, _ = target
    kls = {alpha: forward_kl(p, pi).item() for alpha, pi in trained.items()}
    assert kls[0.0] < kls[0.5] < kls[0.999]
