"""Dr. GRPO, RLOO and rejection-sampling fine-tuning behind the same interface as α-DPG."""

import pytest
import torch

from trainer_client.objectives import OBJECTIVES, compute_advantages

POLICY = torch.tensor([-1.0, -2.0, -3.0, -4.0, -1.0, -2.0], dtype=torch.float64)
VERIFIED = torch.tensor([1, 0, 0, 1, 1, 1])
GROUPS = torch.tensor([8, 8, 8, 8, 2, 2])


def advantages(objective, **extra):
    return compute_advantages(
        objective,
        policy_logprobs=POLICY,
        base_logprobs=POLICY - 1,
        verified=VERIFIED,
        group_ids=GROUPS,
        **extra,
    )


def test_registry_names_every_objective():
    assert set(OBJECTIVES) == {"alpha_dpg", "dr_grpo", "rloo", "rft"}


def test_dr_grpo_subtracts_the_group_mean_without_std():
    values = advantages("dr_grpo").values
    # Prompt 8: rewards 1,0,0,1 (mean 1/2); prompt 2: 1,1 (mean 1).
    expected = torch.tensor([0.5, -0.5, -0.5, 0.5, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(values, expected)


def test_rloo_is_k_over_k_minus_one_times_dr_grpo():
    rloo = advantages("rloo").values
    torch.testing.assert_close(rloo[:4], torch.tensor([2 / 3, -2 / 3, -2 / 3, 2 / 3]).double())
    torch.testing.assert_close(rloo[:4], advantages("dr_grpo").values[:4] * 4 / 3)


def test_rft_weights_verified_samples_by_inverse_pass_rate():
    result = advantages("rft")
    # Prompt 8: ĉ = 1/2 -> verified weight 2; prompt 2: ĉ = 1 -> weight 1; unverified 0.
    expected = torch.tensor([2.0, 0.0, 0.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(result.values, expected)
    assert result.stats["pass_rate"] == pytest.approx(4 / 6)


def test_rft_unsolved_prompt_gives_nothing():
    result = compute_advantages(
        "rft",
        policy_logprobs=POLICY[:4],
        base_logprobs=POLICY[:4],
        verified=torch.zeros(4, dtype=torch.long),
        group_ids=GROUPS[:4],
    )
    assert torch.equal(result.values, torch.zeros(4, dtype=torch.float64))
    assert result.stats["unsolved_fraction"] == 1.0


def test_alpha_dpg_through_the_registry_matches_stats_keys():
    result = advantages("alpha_dpg", alpha=0.25)
    for key in (
        "pass_rate",
        "z_mean",
        "log_z_mean",
        "log_z_min",
        "log_z_max",
        "unsolved_fraction",
        "reward_mean",
        "clip_fraction",
    ):
        assert key in result.stats
    assert result.values.dtype == torch.float64


def test_unknown_objective_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match=r"objective.*alpha_dpg"):
        advantages("ppo")


def test_each_objective_is_one_record_with_the_flags_the_loop_reads():
    from trainer_client.objectives import get_objective

    alpha_dpg, dr_grpo, rft = (get_objective(n) for n in ("alpha_dpg", "dr_grpo", "rft"))
    assert alpha_dpg.needs_reference and alpha_dpg.uses_alpha and alpha_dpg.samples_policy
    assert not dr_grpo.needs_reference and not dr_grpo.uses_alpha
    assert rft.needs_reference and not rft.samples_policy
    assert {o.name for o in OBJECTIVES.values()} == set(OBJECTIVES)


def test_a_second_function_under_a_registered_name_is_refused():
    from trainer_client.objectives import register_objective

    with pytest.raises(ValueError, match="already registered"):
        register_objective("rloo", title="RLOO", needs_reference=False)(lambda **_: None)
    assert OBJECTIVES["rloo"].advantages.__name__ == "rloo"
