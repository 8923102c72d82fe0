"""f_α, the exact categorical divergences, and the batch importance-sampling estimates."""

import math

import pytest
import torch

from trainer_client.divergences import (
    alpha_divergence,
    chi_square,
    entropy,
    f_alpha,
    forward_kl,
    group_logmeanexp,
    in_support_excess,
    is_estimates,
    js_divergence,
    lacking_mass,
    off_support_mass,
    reverse_kl,
    tv_distance,
)

F64 = torch.float64


def random_distribution(size, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(size, generator=gen, dtype=F64), 0)


def test_f_alpha_values_and_limits():
    t = torch.tensor([0.25, 0.5, 1.0, 2.0, 5.0], dtype=F64)
    # f_0.5(t) = (sqrt t - t/2 - 1/2) / (-1/4) = 2 (sqrt t - 1)^2
    torch.testing.assert_close(f_alpha(t, 0.5), 2 * (t.sqrt() - 1) ** 2)
    torch.testing.assert_close(f_alpha(t, 0.0), t - 1 - t.log())
    torch.testing.assert_close(f_alpha(t, 1.0), t * t.log() - t + 1)
    torch.testing.assert_close(f_alpha(t, 1e-7), f_alpha(t, 0.0), atol=1e-6, rtol=0)
    torch.testing.assert_close(f_alpha(t, 1 - 1e-7), f_alpha(t, 1.0), atol=1e-6, rtol=0)
    assert f_alpha(1.0, 0.3).item() == 0.0
    with pytest.raises(ValueError, match="alpha"):
        f_alpha(t, 2.0)


def test_exact_divergences_on_a_hand_case():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=F64)
    pi = torch.tensor([0.25, 0.5, 0.25], dtype=F64)
    assert forward_kl(p, pi).item() == pytest.approx(0.5 * math.log(2))
    assert reverse_kl(p, pi).item() == math.inf  # π has mass where p has none
    # α = 1/2: 4 (1 - Σ sqrt(p π)); the p = 0 entry contributes π / (1 - α) = 0.5.
    hellinger = 4 * (1 - (math.sqrt(0.125) + 0.5))
    assert alpha_divergence(p, pi, 0.5).item() == pytest.approx(hellinger)
    by_f = 0.5 * f_alpha(0.5, 0.5).item() + 0.5 * f_alpha(1.0, 0.5).item() + 0.25 / (1 - 0.5)
    assert alpha_divergence(p, pi, 0.5).item() == pytest.approx(by_f)


def test_alpha_divergence_is_e_p_of_f_and_tends_to_both_kls():
    p, pi = random_distribution(30, 0), random_distribution(30, 1)
    for alpha in (0.1, 0.5, 0.9):
        direct = (p * f_alpha(pi / p, alpha)).sum()
        assert alpha_divergence(p, pi, alpha).item() == pytest.approx(direct.item())
    assert alpha_divergence(p, pi, 1e-6).item() == pytest.approx(forward_kl(p, pi).item(), rel=1e-4)
    assert alpha_divergence(p, pi, 1 - 1e-6).item() == pytest.approx(
        reverse_kl(p, pi).item(), rel=1e-4
    )
    assert alpha_divergence(p, p, 0.3).item() == pytest.approx(0.0, abs=1e-12)


def test_batched_over_leading_dimensions():
    p = torch.stack([random_distribution(10, s) for s in range(3)])
    pi = torch.stack([random_distribution(10, s + 10) for s in range(3)])
    assert forward_kl(p, pi).shape == (3,)
    assert forward_kl(p, pi)[1].item() == pytest.approx(forward_kl(p[1], pi[1]).item())


def test_group_logmeanexp_handles_empty_groups_and_large_values():
    values = torch.tensor([-math.inf, -math.inf, 1000.0, 1000.0 + math.log(3), -5.0], dtype=F64)
    index = torch.tensor([0, 0, 1, 1, 2])
    out = group_logmeanexp(values, index, 3)
    assert out[0].item() == -math.inf
    assert out[1].item() == pytest.approx(1000.0 + math.log(2))
    assert out[2].item() == pytest.approx(-5.0)


def test_is_estimates_hand_case_at_pi_equals_a():
    # π = a, half the samples verified: Ẑ = 1/2, p/π = 2 on verified samples.
    # KL(p‖π) = log(1/Z) = log 2; π conditioned on verified equals p, so that KL is 0.
    logprobs = torch.tensor([-1.0, -2.0, -3.0, -4.0], dtype=F64)
    est = is_estimates(logprobs, logprobs, torch.tensor([1, 1, 0, 0]), torch.tensor([0, 0, 0, 0]))
    assert est["forward_kl"] == pytest.approx(math.log(2))
    assert est["reverse_kl_verified"] == pytest.approx(0.0, abs=1e-12)
    assert est["ess"] == pytest.approx(2.0)
    assert est["ess_fraction"] == pytest.approx(0.5)
    assert est["log_z"] == pytest.approx(math.log(0.5))
    assert est["pass_rate"] == pytest.approx(0.5)


def test_is_estimates_skip_unsolved_prompts():
    logprobs = torch.tensor([-1.0, -2.0, -1.0, -2.0], dtype=F64)
    est = is_estimates(logprobs, logprobs, torch.tensor([1, 1, 0, 0]), torch.tensor([3, 3, 6, 6]))
    assert est["prompts"] == 1.0
    assert est["prompts_unsolved"] == 1.0
    assert est["forward_kl"] == pytest.approx(0.0, abs=1e-12)


def test_is_estimates_converge_to_the_exact_divergences():
    torch.manual_seed(0)
    a = random_distribution(20, 2)
    pi = random_distribution(20, 3)
    correct = torch.zeros(20, dtype=torch.bool)
    correct[::3] = True
    p = a * correct / (a * correct).sum()
    pi_verified = pi * correct / (pi * correct).sum()

    gen = torch.Generator().manual_seed(4)
    y = torch.multinomial(pi, 40_000, replacement=True, generator=gen)
    est = is_estimates(pi.log()[y], a.log()[y], correct[y], torch.zeros_like(y), alpha=0.5)
    assert est["forward_kl"] == pytest.approx(forward_kl(p, pi).item(), rel=0.05)
    assert est["reverse_kl_verified"] == pytest.approx(reverse_kl(p, pi_verified).item(), rel=0.05)
    assert est["alpha_divergence"] == pytest.approx(alpha_divergence(p, pi, 0.5).item(), rel=0.05)
    assert est["pass_rate"] == pytest.approx(pi[correct].sum().item(), abs=0.01)


# --------------------------------------------------------------------------------------------
# The exact categorical problem: a batch that *is* π
#
# Two prompts over four answers each. On prompt 0, π = (1/2, 1/4, 1/4, 0) and the batch holds
# answers (0, 0, 1, 2): its empirical distribution is π exactly, so every importance-sampling
# estimate must equal the exact value, not just approach it. Prompt 1's samples are all wrong
# (unsolved). Answers 0 and 2 are correct; the base a = (0.1, 0.3, 0.3, 0.3).

A = torch.tensor([0.1, 0.3, 0.3, 0.3], dtype=F64)
CORRECT = torch.tensor([True, False, True, False])
PI = torch.tensor([0.5, 0.25, 0.25, 0.0], dtype=F64)
P = A * CORRECT / (A * CORRECT).sum()  # (0.25, 0, 0.75, 0)
PI_BATCH = torch.tensor([0, 0, 1, 2])


def exact_batch(alpha=None):
    y = PI_BATCH
    # prompt 1: four wrong answers with arbitrary finite log-probs
    policy = torch.cat([PI.log()[y], torch.tensor([-1.0, -2.0, -0.5, -3.0], dtype=F64)])
    base = torch.cat([A.log()[y], torch.tensor([-1.5, -1.0, -2.0, -0.7], dtype=F64)])
    verified = torch.cat([CORRECT[y], torch.zeros(4, dtype=torch.bool)])
    groups = torch.tensor([0] * 4 + [1] * 4)
    return is_estimates(policy, base, verified, groups, alpha=alpha), policy, base


def test_new_exact_divergences_by_hand():
    # p = (1/4, 0, 3/4, 0), π = (1/2, 1/4, 1/4, 0)
    assert tv_distance(P, PI).item() == pytest.approx(0.5 * (0.25 + 0.25 + 0.5))
    assert in_support_excess(P, PI).item() == pytest.approx(0.25)  # answer 0: 1/2 − 1/4
    assert lacking_mass(P, PI).item() == pytest.approx(0.5)  # answer 2: 3/4 − 1/4
    assert off_support_mass(P, PI).item() == pytest.approx(0.25)
    assert (
        tv_distance(P, PI).item()
        == pytest.approx(lacking_mass(P, PI).item())
        == pytest.approx(in_support_excess(P, PI).item() + off_support_mass(P, PI).item())
    )
    assert entropy(PI).item() == pytest.approx(1.5 * math.log(2))
    assert chi_square(P, PI).item() == pytest.approx(0.0625 / 0.5 + 0.5625 / 0.25 - 1)
    m = (P + PI) / 2
    by_hand = 0.5 * sum(
        p * math.log(p / q) for p, q in zip(P.tolist(), m.tolist(), strict=True) if p > 0
    ) + 0.5 * sum(
        p * math.log(p / q) for p, q in zip(PI.tolist(), m.tolist(), strict=True) if p > 0
    )
    assert js_divergence(P, PI).item() == pytest.approx(by_hand)
    assert js_divergence(P, PI).item() == pytest.approx(js_divergence(PI, P).item())
    assert js_divergence(P, torch.tensor([0, 1.0, 0, 0], dtype=F64)).item() == pytest.approx(
        math.log(2)
    )


def test_estimates_equal_the_exact_values_on_a_batch_that_is_pi():
    est, policy, base = exact_batch(alpha=0.5)
    assert est["prompts"] == 1.0 and est["prompts_unsolved"] == 1.0
    # over the solved prompt: exactly the exact divergences
    assert est["forward_kl"] == pytest.approx(forward_kl(P, PI).item())
    assert est["alpha_divergence"] == pytest.approx(alpha_divergence(P, PI, 0.5).item())
    assert est["js"] == pytest.approx(js_divergence(P, PI).item())
    assert est["tv"] == pytest.approx(tv_distance(P, PI).item())
    assert est["in_support_excess"] == pytest.approx(in_support_excess(P, PI).item())
    assert est["lacking_mass"] == pytest.approx(lacking_mass(P, PI).item())
    pi_verified = PI * CORRECT / (PI * CORRECT).sum()
    assert est["reverse_kl_verified"] == pytest.approx(reverse_kl(P, pi_verified).item())
    chi2 = chi_square(P, PI).item()
    assert est["ess"] == pytest.approx(4 / (1 + chi2))
    assert est["ess_fraction"] == pytest.approx(1 / (1 + chi2))
    assert est["log_z"] == pytest.approx(math.log(0.4))
    # over all prompts: the unsolved prompt counts zero KL and zero weight
    assert est["forward_kl_all"] == pytest.approx(forward_kl(P, PI).item() / 2)
    assert est["ess_pooled"] == pytest.approx(4 / (1 + chi2))
    assert est["ess_pooled_fraction"] == pytest.approx(4 / (1 + chi2) / 8)
    # π's own figures over every sample of the batch (prompt 0's part is exact)
    exact_kl_to_a = reverse_kl(A, PI).item()  # KL(π‖a)
    assert est["reference_reverse_kl"] == pytest.approx(
        (4 * exact_kl_to_a + float((policy[4:] - base[4:]).sum())) / 8
    )
    assert est["sequence_entropy"] == pytest.approx(
        (4 * entropy(PI).item() - float(policy[4:].sum())) / 8
    )


def test_alpha_divergence_estimate_follows_the_alpha_passed():
    for alpha in (0.25, 0.5, 0.999):
        est, _, _ = exact_batch(alpha=alpha)
        assert est["alpha_divergence"] == pytest.approx(alpha_divergence(P, PI, alpha).item())
    assert exact_batch(alpha=0.0)[0]["alpha_divergence"] == pytest.approx(forward_kl(P, PI).item())
    assert "alpha_divergence" not in exact_batch()[0]
    assert "alpha_divergence" not in exact_batch(alpha=1.0)[0]


def test_the_score_stage_logs_the_objectives_own_alpha_divergence():
    from types import SimpleNamespace

    from trainer_client.stages.score import StepBatch, importance_metrics

    y = PI_BATCH
    batch = StepBatch(
        samples=SimpleNamespace(group_ids=torch.zeros(4, dtype=torch.long)),
        verified=CORRECT[y],
        failed=torch.zeros(4, dtype=torch.bool),
        policy_logprobs=PI.log()[y],
        base_logprobs=A.log()[y],
        advantages=torch.zeros(4),
        alpha=0.25,
    )
    metrics = importance_metrics(batch)
    assert metrics["is/alpha_divergence"] == pytest.approx(alpha_divergence(P, PI, 0.25).item())
    keys = ("forward_kl_all", "js", "tv", "ess_pooled", "lacking_mass", "in_support_excess",
            "reference_reverse_kl", "sequence_entropy")  # fmt: skip
    for key in keys:
        assert f"is/{key}" in metrics
