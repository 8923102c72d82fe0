"""The REINFORCE loss and the k3 KL penalty: values and gradients against closed forms."""

import math

import pytest
import torch

from trainer_client.losses import kl_penalty, reinforce_loss


def tiny_policy(seed=0, n=3, length=4, vocab=5):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, length, vocab, generator=gen, dtype=torch.float64)
    tokens = torch.randint(0, vocab, (n, length), generator=gen)
    mask = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=torch.long)
    return logits, tokens, mask


def token_logprobs(logits, tokens, mask):
    lp = torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return lp * mask  # the sampler's contract: 0 outside the response


def test_loss_value_is_the_formula():
    tok = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    adv = torch.tensor([2.0, -4.0], dtype=torch.float64)
    loss = reinforce_loss(tok, mask, adv, l_max=10)
    # -(1/N) Σ_i A_i Σ_t logπ / L_max = -(2·(-3) + (-4)·(-0.5)) / (2·10)
    assert loss.item() == pytest.approx(-(2 * -3 + -4 * -0.5) / 20)


def test_loss_gradient_matches_finite_differences():
    logits, tokens, mask = tiny_policy()
    adv = torch.tensor([1.5, -0.5, 0.25], dtype=torch.float64)
    theta = logits.clone().requires_grad_(True)
    loss = reinforce_loss(token_logprobs(theta, tokens, mask), mask, adv, l_max=8)
    (grad,) = torch.autograd.grad(loss, theta)

    eps = 1e-6
    numeric = torch.zeros_like(logits)
    for idx in [(0, 1, 0), (0, 3, 4), (1, 2, 1), (2, 0, 3), (2, 3, 2), (1, 3, 0)]:
        plus, minus = logits.clone(), logits.clone()
        plus[idx] += eps
        minus[idx] -= eps
        f_plus = reinforce_loss(token_logprobs(plus, tokens, mask), mask, adv, l_max=8)
        f_minus = reinforce_loss(token_logprobs(minus, tokens, mask), mask, adv, l_max=8)
        numeric[idx] = (f_plus - f_minus) / (2 * eps)
        assert grad[idx].item() == pytest.approx(numeric[idx].item(), abs=1e-8)
    # Masked positions (prompt tokens) get no gradient at all.
    assert torch.count_nonzero(grad[0, 0]) == 0
    assert torch.count_nonzero(grad[1, 3]) == 0


def test_loss_gradient_closed_form_in_token_logprobs():
    tok = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1], [0, 1]])
    adv = torch.tensor([3.0, -1.0], dtype=torch.float64)
    reinforce_loss(tok, mask, adv, l_max=5).backward()
    expected = -adv.unsqueeze(-1) * mask / (2 * 5)
    torch.testing.assert_close(tok.grad, expected)


def test_advantages_do_not_receive_gradient():
    tok = torch.tensor([[-1.0]], requires_grad=True)
    adv = torch.tensor([2.0], requires_grad=True)
    reinforce_loss(tok, torch.ones(1, 1), adv, l_max=1).backward()
    assert adv.grad is None


def test_loss_ignores_non_finite_values_outside_the_mask():
    tok = torch.tensor([[-math.inf, -1.0]], dtype=torch.float64)
    loss = reinforce_loss(tok, torch.tensor([[0, 1]]), torch.tensor([1.0]).double(), l_max=1)
    assert loss.item() == pytest.approx(1.0)


def test_kl_penalty_is_k3_with_the_same_normaliser():
    tok = torch.tensor([[-1.0, -2.0], [-0.5, -0.7]], dtype=torch.float64)
    ref = tok + torch.tensor([[math.log(2), 0.0], [0.3, 9.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1], [1, 0]])
    # δ = log ref - log π; k3 = e^δ - δ - 1 summed over masked tokens, / (N · L_max).
    expected = ((2 - math.log(2) - 1) + 0.0 + (math.exp(0.3) - 0.3 - 1)) / (2 * 4)
    assert kl_penalty(tok, ref, mask, l_max=4).item() == pytest.approx(expected)


def test_kl_penalty_gradient_vanishes_at_the_reference():
    logits, tokens, mask = tiny_policy(seed=3)
    theta = logits.clone().requires_grad_(True)
    lp = token_logprobs(theta, tokens, mask)
    penalty = kl_penalty(lp, lp.detach(), mask, l_max=4)
    (grad,) = torch.autograd.grad(penalty, theta)
    assert penalty.item() == 0.0
    assert torch.count_nonzero(grad) == 0


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="response_mask"):
        reinforce_loss(torch.zeros(2, 3), torch.ones(2, 4), torch.zeros(2), l_max=4)
    with pytest.raises(ValueError, match="advantages"):
        reinforce_loss(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(3), l_max=4)
    with pytest.raises(ValueError, match="l_max"):
        reinforce_loss(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2), l_max=0)
    with pytest.raises(ValueError, match="ref_token_logprobs"):
        kl_penalty(torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(2, 3), l_max=4)
