"""TRL's real GRPOTrainer, one step on CPU, rewarded by a live Sieve verifier (math checker).

The task is to echo a digit. The policy is a tiny random GPT-2 over the alphabet ``12`` (six
tokens with the special ones), so about one one-token answer in six is right: groups of eight get
mixed rewards, GRPO's advantages are non-zero, and the step must move the parameters.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from examples.demo.tokenizer import char_tokenizer
from tests.trainer.integrations.conftest import REPO_ROOT
from tests.trainer.models import tiny_gpt2
from trainer_client.client import VerifierClient, VerifyResult
from trainer_client.integrations.trl import SieveReward
from verifier_service.launcher import free_port, serve_subprocess

for _module in ("trl", "datasets", "uvicorn", "math_verify"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(
            f"{_module} is not installed; pip install -e '.[dev]' (the [trl] extra) to run it",
            allow_module_level=True,
        )


@pytest.fixture(scope="module")
def verifier_url():
    env = {"SIEVE_CHECKERS": "math", "SIEVE_LOG_LEVEL": "warning"}
    with serve_subprocess(env, cwd=REPO_ROOT) as url:
        yield url


def one_grpo_step(tmp_path: Path, reward: SieveReward):
    """The model, its parameters before the step, and the trainer after one GRPO step."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(1)
    tokenizer = char_tokenizer("12")
    model = tiny_gpt2(tokenizer, seed=0)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    dataset = Dataset.from_list(
        [{"prompt": "1", "answer": "1"}, {"prompt": "2", "answer": "2"}] * 4
    )
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        num_generations=8,
        max_completion_length=1,
        max_steps=1,
        learning_rate=0.05,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,  # float32 on CPU, like the rest of the suite
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    with reward:
        trainer.train()
    assert trainer.state.global_step == 1
    logs = {k: v for entry in trainer.state.log_history for k, v in entry.items()}
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    return logs, changed


def test_grpo_trainer_runs_a_step_on_sieve_rewards(tmp_path, verifier_url):
    reward = SieveReward(verifier_url, checker="math", timeout_s=30)
    logs, changed = one_grpo_step(tmp_path, reward)
    stats = reward.stats
    assert stats["samples"] == 16 and stats["failed"] == 0
    assert 0 < stats["verified"] < stats["samples"]  # mixed groups: a real learning signal
    assert logs["rewards/sieve_math/mean"] == pytest.approx(
        stats["verified"] / stats["samples"], abs=1e-6
    )
    assert logs["sieve_math/verifier_error_fraction"] == 0.0
    assert changed, "the GRPO step did not move any parameter"


def test_an_outage_gives_none_and_leaves_the_policy_alone(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    reward = SieveReward(dead, checker="math", retries=0, timeout_s=5)
    logs, changed = one_grpo_step(tmp_path, reward)
    stats = reward.stats
    # Empty completions are wrong without asking anyone; every other sample is a failure.
    assert stats["failed"] > 0 and stats["verified"] == 0
    assert stats["failed"] + stats["wrong"] == 16
    assert logs["sieve_math/verifier_error_fraction"] == stats["failed"] / 16
    assert changed == []  # no sample was punished for the outage


class FailsOnTwos:
    """The live verifier, except that every proof of the answer ``2`` comes back ``error``."""

    def __init__(self, url: str) -> None:
        self.client = VerifierClient(url, timeout_s=30)

    def verify(self, proofs):
        results = self.client.verify(proofs)
        return [
            VerifyResult(id=r.id, verdict="error", reasons=["test:outage"])
            if p["code"] == "2"
            else r
            for p, r in zip(proofs, results, strict=True)
        ]


def test_trl_leaves_failed_samples_out_of_the_reward_statistics(tmp_path, verifier_url):
    verifier = FailsOnTwos(verifier_url)
    reward = SieveReward(checker="math", client=verifier)
    logs, _ = one_grpo_step(tmp_path, reward)
    verifier.client.close()
    stats = reward.stats
    assert stats["failed"] > 0 and stats["verified"] > 0
    # None is left out: the mean is over the judged samples only, not all 16 (as 0.0 would be).
    judged = stats["samples"] - stats["failed"]
    assert logs["rewards/sieve_math/mean"] == pytest.approx(stats["verified"] / judged, abs=1e-6)
    assert logs["rewards/sieve_math/mean"] > stats["verified"] / stats["samples"]
