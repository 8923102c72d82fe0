"""The k3 KL penalty, clamped as verl's low_var_kl."""

from __future__ import annotations

import math

import torch

from trainer_client.losses import kl_penalty


def k3(delta: float) -> float:
    """One token with ``log ref − log π = delta``, l_max 1: the penalty is that token's k3."""
    policy = torch.zeros(1, 1, requires_grad=True)
    ref = torch.full((1, 1), float(delta))
    return float(kl_penalty(policy, ref, torch.ones(1, 1), 1))


def test_unclamped_inside_the_bounds():
    for delta in (-3.0, -0.5, 0.0, 0.5, 2.0):
        assert math.isclose(k3(delta), math.expm1(delta) - delta, rel_tol=1e-6, abs_tol=1e-7)


def test_clamped_like_low_var_kl():
    # Unclamped, δ = 25 gives e^25 − 26 ≈ 7.2e10; δ = −25 gives 24.
    assert k3(25.0) == 10.0
    assert k3(-25.0) == 10.0
    assert k3(3.0) == 10.0  # e^3 − 4 ≈ 16.1 > 10
    assert math.isclose(k3(2.0), math.expm1(2.0) - 2.0, rel_tol=1e-6)


def test_clamped_tokens_pass_no_gradient_and_others_do():
    policy = torch.zeros(1, 2, requires_grad=True)
    ref = torch.tensor([[25.0, 0.5]])
    kl_penalty(policy, ref, torch.ones(1, 2), 1).backward()
    assert policy.grad[0, 0] == 0
    # d/dπ (e^{ref−π} − (ref−π) − 1) = 1 − e^{ref−π}, over n = 1 row and l_max = 1
    assert math.isclose(float(policy.grad[0, 1]), 1 - math.exp(0.5), rel_tol=1e-5)
