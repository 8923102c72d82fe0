"""α-DPG advantages against numbers worked out by hand from the method notes (steps 2–5)."""

import math

import pytest
import torch

from trainer_client.objectives import alpha_dpg, alpha_dpg_advantages, rloo

F64 = torch.float64


def t(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def test_start_value_at_pi_equals_a_two_prompts_interleaved_ids():
    # π = a, so a correct sample's pseudo-reward is ĉ^-(1-α) - 1.
    # Prompt 7: 1 of 4 correct (ĉ = 1/4); prompt 3: 3 of 4 correct (ĉ = 3/4). α = 1/2.
    group_ids = torch.tensor([7, 3, 7, 3, 7, 3, 7, 3])
    verified = torch.tensor([1, 1, 0, 1, 0, 1, 0, 0])
    logprobs = t([-3.0, -1.0, -2.0, -4.0, -5.0, -2.5, -1.5, -0.5])
    adv = alpha_dpg_advantages(logprobs, logprobs.clone(), verified, group_ids, alpha=0.5)

    r7 = (1 / 4) ** -0.5 - 1  # = 1
    r3 = (3 / 4) ** -0.5 - 1  # = 2/sqrt(3) - 1
    assert r7 == pytest.approx(1.0)
    expected = t(
        [
            r7 - (-1 - 1 - 1) / 3,  # prompt 7, correct: 2
            r3 - (r3 + r3 - 1) / 3,  # prompt 3, correct
            -1 - (r7 - 1 - 1) / 3,  # prompt 7, wrong: -2/3
            r3 - (r3 + r3 - 1) / 3,
            -1 - (r7 - 1 - 1) / 3,
            r3 - (r3 + r3 - 1) / 3,
            -1 - (r7 - 1 - 1) / 3,
            -1 - (3 * r3) / 3,  # prompt 3, wrong: -1 - r3 = -2/sqrt(3)
        ]
    )
    torch.testing.assert_close(adv, expected, rtol=0, atol=1e-12)
    assert adv[0].item() == pytest.approx(2.0)
    assert adv[7].item() == pytest.approx(-2 / math.sqrt(3))


def test_start_value_alpha_zero_is_inverse_pass_rate_minus_one():
    group_ids = torch.tensor([0, 0, 0, 0])
    verified = torch.tensor([1, 0, 0, 0])
    logprobs = t([-1.0, -2.0, -3.0, -4.0])
    result = alpha_dpg(
        policy_logprobs=logprobs,
        base_logprobs=logprobs,
        verified=verified,
        group_ids=group_ids,
        alpha=0.0,
    )
    # R = 1/ĉ - 1 = 3 for the correct one, -1 for the others; A = R - mean of the other three.
    torch.testing.assert_close(result.values, t([3 + 1, -1 - 1 / 3, -1 - 1 / 3, -1 - 1 / 3]))
    assert result.stats["pass_rate"] == pytest.approx(0.25)
    assert result.stats["log_z_mean"] == pytest.approx(math.log(0.25))
    assert result.stats["reward_mean"] == pytest.approx((3 - 3) / 4)


def test_partition_estimate_is_clamped_to_one():
    # Prompt 0: both verified, a/π = 2 and 1/2, so mean = 1.25 -> Ẑ clamped to 1, p/π = a/π.
    # Prompt 1: one of two verified with a/π = 1/2, so Ẑ = 1/4 and p/π = 2.
    # α = 0: R = p/π - 1.
    policy = t([-2.0, -1.0, -3.0, -1.0])
    base = t([-2.0 + math.log(2), -1.0 - math.log(2), -3.0 - math.log(2), -7.0])
    verified = torch.tensor([True, True, True, False])
    result = alpha_dpg(
        policy_logprobs=policy,
        base_logprobs=base,
        verified=verified,
        group_ids=torch.tensor([0, 0, 1, 1]),
        alpha=0.0,
    )
    rewards = [2 - 1, 0.5 - 1, 2 - 1, -1]
    expected = [
        rewards[0] - rewards[1],
        rewards[1] - rewards[0],
        rewards[2] - rewards[3],
        rewards[3] - rewards[2],
    ]
    torch.testing.assert_close(result.values, t(expected))
    assert result.stats["log_z_max"] == 0.0
    assert result.stats["log_z_min"] == pytest.approx(math.log(0.25))


def test_clip_caps_the_pseudo_reward_at_m():
    # 16 samples, one correct, π = a: at α = 0 the correct one would get 1/ĉ - 1 = 15 > M = 10.
    k = 16
    verified = torch.zeros(k, dtype=torch.long)
    verified[5] = 1
    logprobs = -torch.arange(1, k + 1, dtype=F64)
    result = alpha_dpg(
        policy_logprobs=logprobs,
        base_logprobs=logprobs,
        verified=verified,
        group_ids=torch.zeros(k, dtype=torch.long),
        alpha=0.0,
        clip=10.0,
    )
    assert result.values[5].item() == pytest.approx(10 - (-1))
    assert result.values[0].item() == pytest.approx(-1 - (10 - 14) / 15)
    assert result.stats["clip_fraction"] == pytest.approx(1 / k)
    # Smaller α softens it: 16^(1/2) - 1 = 3 is under the clip.
    soft = alpha_dpg_advantages(
        logprobs, logprobs, verified, torch.zeros(k, dtype=torch.long), alpha=0.5
    )
    assert soft[5].item() == pytest.approx(3 + 1)


def test_clip_happens_before_exp_can_overflow():
    # a/π = e^990 for the correct sample: exp would overflow even in float64.
    policy = t([-1000.0, -5.0])
    base = t([-10.0, -5.0])
    for dtype in (torch.float32, F64):
        adv = alpha_dpg_advantages(
            policy.to(dtype), base.to(dtype), torch.tensor([1, 0]), torch.tensor([0, 0]), 0.0
        )
        assert torch.isfinite(adv).all()
        torch.testing.assert_close(adv, torch.tensor([11.0, -11.0], dtype=dtype))


def test_prompt_without_a_verified_sample_gets_zero_advantage_and_floor():
    policy = t([-1.0, -2.0, -3.0, -1.0, -2.0, -3.0])
    verified = torch.tensor([0, 0, 0, 1, 0, 0])
    group_ids = torch.tensor([4, 4, 4, 9, 9, 9])
    result = alpha_dpg(
        policy_logprobs=policy,
        base_logprobs=policy,
        verified=verified,
        group_ids=group_ids,
        alpha=0.5,
        z_floor=1e-4,
    )
    assert torch.equal(result.values[:3], torch.zeros(3, dtype=F64))
    assert result.values[3] > 0
    assert result.stats["unsolved_fraction"] == pytest.approx(0.5)
    assert result.stats["log_z_min"] == pytest.approx(math.log(1e-4))


def test_single_sample_groups_use_a_zero_baseline():
    policy = t([-1.0, -2.0])
    adv = alpha_dpg_advantages(policy, policy, torch.tensor([1, 0]), torch.tensor([0, 1]), 0.5)
    # Prompt 0: ĉ = 1, R = 0; prompt 1: unsolved, R = -1; no baseline with k = 1.
    torch.testing.assert_close(adv, t([0.0, -1.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_the_input(dtype):
    policy = torch.tensor([-1.0, -2.0, -3.0, -4.0], dtype=dtype)
    adv = alpha_dpg_advantages(
        policy, policy - 0.5, torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 1]), 0.25
    )
    assert adv.dtype == dtype


def test_result_is_detached_from_the_graph():
    policy = torch.tensor([-1.0, -2.0], dtype=F64, requires_grad=True)
    verified, group_ids = torch.tensor([1, 0]), torch.tensor([0, 0])
    adv = alpha_dpg_advantages(policy, policy.detach(), verified, group_ids, 0.0)
    assert not adv.requires_grad


def test_alpha_zero_and_one_are_finite_on_extreme_log_probs():
    policy = t([-900.0, -1.0, -1200.0, -2.0, -3.0, -700.0])
    base = t([-5.0, -1500.0, -3.0, -2.0, -800.0, -1.0])
    verified = torch.tensor([1, 1, 1, 0, 1, 0])
    group_ids = torch.tensor([0, 0, 0, 1, 1, 1])
    for alpha in (0.0, 1e-12, 0.999, 1.0):
        result = alpha_dpg(
            policy_logprobs=policy,
            base_logprobs=base,
            verified=verified,
            group_ids=group_ids,
            alpha=alpha,
        )
        assert torch.isfinite(result.values).all(), alpha
        assert all(math.isfinite(v) for v in result.stats.values()), alpha


def test_alpha_one_is_the_binary_reward_limit():
    gen = torch.Generator().manual_seed(0)
    policy = -torch.rand(12, generator=gen, dtype=F64) * 5
    base = -torch.rand(12, generator=gen, dtype=F64) * 5
    verified = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1])
    group_ids = torch.tensor([2, 2, 2, 2, 5, 5, 5, 5, 1, 1, 1, 1])
    at_one = alpha_dpg_advantages(policy, base, verified, group_ids, alpha=1.0)
    near_one = alpha_dpg_advantages(policy, base, verified, group_ids, alpha=1 - 1e-9)
    binary = rloo(
        policy_logprobs=policy, base_logprobs=base, verified=verified, group_ids=group_ids
    ).values
    torch.testing.assert_close(at_one, binary)
    torch.testing.assert_close(near_one, at_one, atol=1e-7, rtol=0)


def test_advantages_sum_to_zero_per_group():
    gen = torch.Generator().manual_seed(1)
    policy = -torch.rand(20, generator=gen, dtype=F64) * 3
    base = -torch.rand(20, generator=gen, dtype=F64) * 3
    verified = torch.rand(20, generator=gen) < 0.5
    group_ids = torch.arange(5).repeat(4)  # non-contiguous groups
    adv = alpha_dpg_advantages(policy, base, verified, group_ids, alpha=0.3)
    sums = torch.zeros(5, dtype=F64).index_add_(0, group_ids, adv)
    torch.testing.assert_close(sums, torch.zeros(5, dtype=F64), atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"clip": 0.0}, "clip"),
        ({"z_floor": 0.0}, "z_floor"),
    ],
)
def test_bad_scalars_name_the_field(kwargs, field):
    policy = t([-1.0, -2.0])
    args = {"alpha": 0.5, **kwargs}
    with pytest.raises(ValueError, match=field):
        alpha_dpg_advantages(policy, policy, torch.tensor([1, 0]), torch.tensor([0, 0]), **args)


def test_bad_tensors_name_the_field():
    policy = t([-1.0, -2.0])
    with pytest.raises(ValueError, match="verified"):
        alpha_dpg_advantages(policy, policy, torch.tensor([1, 2]), torch.tensor([0, 0]), 0.5)
    with pytest.raises(ValueError, match="group_ids"):
        alpha_dpg_advantages(policy, policy, torch.tensor([1, 0]), torch.tensor([0.0, 0.0]), 0.5)
    with pytest.raises(ValueError, match="lengths"):
        alpha_dpg_advantages(policy, policy[:1], torch.tensor([1, 0]), torch.tensor([0, 0]), 0.5)
    with pytest.raises(ValueError, match="policy_logprobs"):
        alpha_dpg_advantages(
            t([-math.inf, -1.0]), policy, torch.tensor([1, 0]), torch.tensor([0, 0]), 0.5
        )
