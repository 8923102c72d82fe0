"""verl adapters: compute_score (single and batched) and the alpha_dpg advantage estimator."""

from __future__ import annotations

import importlib.util
import json
import math

import httpx
import numpy as np
import pytest
import torch

from trainer_client.integrations import verl as sieve_verl
from trainer_client.integrations.verl import alpha_dpg_token_advantages, compute_score
from trainer_client.objectives import alpha_dpg_advantages

STATEMENT = "theorem t (a b : ℕ) : a + b = b + a := by"


def verl_batch(seed: int = 0, rows: int = 12, length: int = 9):
    """A verl-shaped batch: 3 prompts × 4 responses of varying length, score on the last token."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, length + 1, (rows,), generator=gen)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).to(torch.float32)
    verified = torch.tensor([1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0], dtype=torch.float32)[:rows]
    rewards = torch.zeros(rows, length)
    rewards[torch.arange(rows), lengths - 1] = verified
    old = -torch.rand(rows, length, generator=gen) * 3
    ref = -torch.rand(rows, length, generator=gen) * 3
    # Padding positions hold garbage in verl's tensors: it must not count.
    old = torch.where(mask.bool(), old, torch.full_like(old, 99.0))
    ref = torch.where(mask.bool(), ref, torch.full_like(ref, -99.0))
    uid = np.array([f"uid-{i // 4}" for i in range(rows)], dtype=object)
    return rewards, mask, uid, old, ref, verified


def test_token_advantages_match_alpha_dpg_advantages():
    rewards, mask, uid, old, ref, verified = verl_batch()
    for alpha in (0.0, 0.5, 0.999, 1.0):
        advantages, returns = alpha_dpg_token_advantages(
            rewards, mask, uid, old, ref, alpha=alpha, clip=10.0
        )
        m = mask.bool()
        policy = torch.where(m, old.double(), 0.0).sum(-1)
        base = torch.where(m, ref.double(), 0.0).sum(-1)
        groups = torch.tensor([int(u.split("-")[1]) for u in uid])
        expected = alpha_dpg_advantages(policy, base, verified.bool(), groups, alpha=alpha)
        assert advantages.dtype == rewards.dtype and advantages.shape == rewards.shape
        assert torch.allclose(advantages, (expected[:, None] * mask).float(), atol=1e-6)
        assert torch.equal(advantages, returns)
        assert torch.all(advantages[~m] == 0)
        # One number per response, on every response token.
        for i in range(len(uid)):
            assert torch.allclose(advantages[i][m[i]], expected[i].float().expand(int(m[i].sum())))


def test_at_pi_equal_base_the_advantages_are_the_papers_closed_form():
    # π = a, 2 of 4 verified, α = 0.5: R_v = 0.5^-0.5 - 1, R_u = -1, leave-one-out baseline.
    rewards = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    mask = torch.ones(4, 2)
    logp = torch.full((4, 2), -0.7)
    adv, _ = alpha_dpg_token_advantages(rewards, mask, ["p"] * 4, logp, logp, alpha=0.5)
    r_v, r_u = 0.5**-0.5 - 1, -1.0
    a_v = r_v - (r_v + 2 * r_u) / 3
    a_u = r_u - (2 * r_v + r_u) / 3
    assert adv[:, 0].tolist() == pytest.approx([a_v, a_v, a_u, a_u], abs=1e-6)


def test_a_failed_sample_is_left_out_of_its_group():
    rewards, mask, uid, old, ref, _ = verl_batch()
    lengths = mask.sum(-1).long()
    failed = 2
    rewards[failed, lengths[failed] - 1] = math.nan  # compute_score's default error_score
    adv, _ = alpha_dpg_token_advantages(rewards, mask, uid, old, ref, alpha=0.5)
    assert torch.all(adv[failed] == 0) and not torch.isnan(adv).any()
    keep = [i for i in range(len(uid)) if i != failed]
    alone, _ = alpha_dpg_token_advantages(
        rewards[keep], mask[keep], uid[keep], old[keep], ref[keep], alpha=0.5
    )
    assert torch.allclose(adv[keep], alone)  # as if the sample had never been drawn


def test_shapes_are_checked():
    rewards, mask, uid, old, ref, _ = verl_batch()
    with pytest.raises(ValueError, match="ref_log_prob"):
        alpha_dpg_token_advantages(rewards, mask, uid, old, ref[:, :3], alpha=0.5)
    with pytest.raises(ValueError, match="index"):
        alpha_dpg_token_advantages(rewards, mask, uid[:3], old, ref, alpha=0.5)


def test_estimator_needs_log_probs_and_no_kl_in_reward():
    rewards, mask, uid, old, ref, _ = verl_batch()
    fn = sieve_verl.compute_alpha_dpg_outcome_advantage
    with pytest.raises(ValueError, match="use_kl_loss"):
        fn(rewards, mask, uid)
    with pytest.raises(ValueError, match="use_kl_in_reward"):
        fn(rewards, mask, uid, {"use_kl_in_reward": True}, old_log_probs=old, ref_log_prob=ref)


def test_alpha_comes_from_the_environment(monkeypatch):
    rewards, mask, uid, old, ref, _ = verl_batch()
    monkeypatch.setattr(sieve_verl, "_params", {})
    monkeypatch.setenv(sieve_verl.ENV_ALPHA, "0.25")
    got, _ = sieve_verl.compute_alpha_dpg_outcome_advantage(
        rewards, mask, uid, old_log_probs=old, ref_log_prob=ref
    )
    want, _ = alpha_dpg_token_advantages(rewards, mask, uid, old, ref, alpha=0.25)
    assert torch.equal(got, want)
    monkeypatch.setenv(sieve_verl.ENV_ALPHA, "lots")
    with pytest.raises(ValueError, match=sieve_verl.ENV_ALPHA):
        sieve_verl.compute_alpha_dpg_outcome_advantage(
            rewards, mask, uid, old_log_probs=old, ref_log_prob=ref
        )


# --------------------------------------------------------------------------------------------
# compute_score


class Judge:
    """A /verify stand-in: lean4 proofs with ``omega`` and math answers equal to the reference
    are valid, code with ``crash`` is a system error. Counts the requests it served."""

    def __init__(self) -> None:
        self.requests: list[list[dict]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        proofs = json.loads(request.content)["proofs"]
        self.requests.append(proofs)
        results = []
        for p in proofs:
            if "crash" in p["code"]:
                verdict = "error"
            elif p["checker"] == "math":
                verdict = "valid" if p["code"] == p["answer"] else "invalid"
            else:
                verdict = "valid" if "omega" in p["code"] else "invalid"
            results.append({"id": p["id"], "verdict": verdict})
        return httpx.Response(200, json={"results": results})


def test_batched_compute_score_is_one_request(monkeypatch):
    monkeypatch.setattr(sieve_verl, "_clients", {})  # no pooled client left for other tests
    judge = Judge()
    transport = httpx.MockTransport(judge)
    scores = compute_score(
        data_sources=["minif2f"] * 4,
        solution_strs=[
            f"```lean4\n{STATEMENT}\n  omega\n```",
            f"```lean4\n{STATEMENT}\n  simp\n```",
            f"```lean4\n{STATEMENT}\n  crash\n```",
            "",
        ],
        ground_truths=[STATEMENT] * 4,
        extra_infos=[{"header": "import Mathlib"}, None, {}, {}],
        url="http://verifier:8000",
        transport=transport,
    )
    assert [s["score"] for s in scores[:2]] == [1.0, 0.0]
    assert math.isnan(scores[2]["score"]) and scores[2]["verifier_error"] == 1.0
    assert scores[3] == {"score": 0.0, "acc": 0.0, "verifier_error": 0.0}  # empty: wrong
    assert len(judge.requests) == 1 and len(judge.requests[0]) == 3
    first = judge.requests[0][0]
    assert first["header"] == "import Mathlib" and first["statement"] == STATEMENT
    assert first["code"] == f"{STATEMENT}\n  omega"


def test_single_compute_score_uses_the_environment_url(monkeypatch):
    judge = Judge()
    monkeypatch.setenv(sieve_verl.ENV_URL, "http://verifier:8000")
    monkeypatch.setattr(sieve_verl, "_clients", {})
    kwargs = {"transport": httpx.MockTransport(judge), "error_score": 0.0}
    score = compute_score("gsm8k", "24", "24", {"checker": "math"}, **kwargs)
    assert score == {"score": 1.0, "acc": 1.0, "verifier_error": 0.0}
    failed = compute_score("gsm8k", "crash", "24", {"checker": "math"}, **kwargs)
    assert failed["score"] == 0.0 and failed["verifier_error"] == 1.0  # error_score=0.0 asked
    assert len(sieve_verl._clients) == 1  # one pooled client for the process


def test_a_timeout_scores_as_a_wrong_proof(monkeypatch):
    def times_out(request: httpx.Request) -> httpx.Response:
        proofs = json.loads(request.content)["proofs"]
        results = [{"id": p["id"], "verdict": "timeout"} for p in proofs]
        return httpx.Response(200, json={"results": results})

    monkeypatch.setattr(sieve_verl, "_clients", {})
    transport = httpx.MockTransport(times_out)
    score = compute_score(
        "gsm8k", "24", "24", {"checker": "math"}, url="http://v", transport=transport
    )
    assert score == {"score": 0.0, "acc": 0.0, "verifier_error": 0.0}


def test_compute_score_errors_name_what_is_missing(monkeypatch):
    monkeypatch.delenv(sieve_verl.ENV_URL, raising=False)
    with pytest.raises(ValueError, match=sieve_verl.ENV_URL):
        compute_score("x", "24", "24", {"checker": "math"})
    with pytest.raises(ValueError, match="ground_truth"):
        compute_score("x", "proof", "", url="http://v")
    with pytest.raises(ValueError, match="extra_infos"):
        compute_score(
            solution_strs=["a", "b"], ground_truths=["1", "2"], extra_infos=[{}], url="http://v"
        )


# --------------------------------------------------------------------------------------------
# Registration with a real verl


def _verl_missing() -> str | None:
    if importlib.util.find_spec("verl") is None:
        return (
            "verl is not installed: it is kept out of [dev] because verl 0.8 pins numpy<2 (which "
            "breaks the suite's pyarrow) and pulls in Ray; pip install 'sieve[verl]' to run this"
        )
    try:
        import verl.trainer.ppo.ray_trainer  # noqa: F401
    except ImportError as exc:
        return f"verl is installed but does not import here: {exc}"
    return None


def test_registered_with_verl_and_reached_through_compute_advantage():
    reason = _verl_missing()
    if reason:
        pytest.skip(reason)
    from tensordict import TensorDict
    from verl import DataProto
    from verl.trainer.config import AlgoConfig
    from verl.trainer.ppo import core_algos, ray_trainer

    assert sieve_verl.register_alpha_dpg() is True
    assert core_algos.get_adv_estimator_fn("alpha_dpg") is (
        sieve_verl.compute_alpha_dpg_outcome_advantage
    )
    rewards, mask, uid, old, ref, _ = verl_batch()
    batch = TensorDict(
        {
            "token_level_rewards": rewards,
            "response_mask": mask,
            "old_log_probs": old,
            "ref_log_prob": ref,
        },
        batch_size=[len(uid)],
    )
    data = DataProto(batch=batch, non_tensor_batch={"uid": uid})
    config = AlgoConfig(adv_estimator="alpha_dpg")
    out = ray_trainer.compute_advantage(data, adv_estimator="alpha_dpg", config=config)
    want, _ = alpha_dpg_token_advantages(rewards, mask, uid, old, ref, alpha=0.5)
    assert torch.allclose(out.batch["advantages"], want)
    # Other estimators go through verl's own code untouched.
    grpo = ray_trainer.compute_advantage(
        DataProto(batch=batch.clone(), non_tensor_batch={"uid": uid}), adv_estimator="grpo"
    )
    assert not torch.allclose(grpo.batch["advantages"], want)


def test_verl_loading_compute_score_by_path_keeps_the_registration():
    reason = _verl_missing()
    if reason:
        pytest.skip(reason)
    from verl.trainer.ppo import core_algos
    from verl.utils.import_utils import load_extern_object

    assert sieve_verl.register_alpha_dpg() is True
    # What reward.custom_reward_function.path does: a second copy of the module, registering again.
    loaded = load_extern_object(module_path=sieve_verl.__file__, object_name="compute_score")
    assert loaded is not compute_score and callable(loaded)
    assert core_algos.get_adv_estimator_fn("alpha_dpg") is (
        sieve_verl.compute_alpha_dpg_outcome_advantage
    )
