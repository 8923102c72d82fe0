"""SieveReward: TRL's reward-function contract, without TRL or a network."""

from __future__ import annotations

import httpx
import pytest

from tests.trainer.integrations.conftest import HEADER
from trainer_client.client import VerifierClient, VerifyResult
from trainer_client.data import DEFAULT_HEADER
from trainer_client.integrations.trl import SieveReward, completion_text

STATEMENT = "theorem t (a b : ℕ) : a + b = b + a := by"


class RecordingVerifier:
    """Judges by the code's text; remembers every proof it was sent."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def verify(self, proofs):
        self.sent.extend(proofs)
        out = []
        for proof in proofs:
            code = proof["code"]
            verdict = "error" if "crash" in code else "valid" if "omega" in code else "invalid"
            out.append(VerifyResult(id=proof["id"], verdict=verdict))
        return out


def lean_reward(**kwargs) -> tuple[SieveReward, RecordingVerifier]:
    verifier = RecordingVerifier()
    return SieveReward(checker="lean4", client=verifier, **kwargs), verifier


def test_rewards_are_one_zero_and_none_for_a_failure():
    reward, verifier = lean_reward()
    completions = [
        f"```lean4\n{STATEMENT}\n  omega\n```",
        f"```lean4\n{STATEMENT}\n  simp\n```",
        f"```lean4\n{STATEMENT}\n  crash\n```",
        "",  # empty: wrong, and never sent
    ]
    rewards = reward(["p"] * 4, completions, statement=[STATEMENT] * 4)
    assert rewards == [1.0, 0.0, None, 0.0]
    assert len(verifier.sent) == 3
    assert reward.stats == {"samples": 4, "verified": 1, "wrong": 2, "failed": 1}
    assert reward.__name__ == "sieve_lean4"


def test_lean_requests_carry_the_rows_header_and_statement():
    reward, verifier = lean_reward()
    header = "import Mathlib\nopen Nat"
    prompt = f"Complete:\n\n```lean4\n{header}\n\n{STATEMENT}"  # the prompt opens the block
    reward(
        [prompt, "q"],
        ["\n  omega\n```", f"```lean4\n{header}\n{STATEMENT}\n  omega\n```"],
        statement=[STATEMENT, STATEMENT],
        header=[header, None],
    )
    first, second = verifier.sent
    assert first["header"] == header and first["statement"] == STATEMENT
    assert first["code"] == f"{STATEMENT}\n  omega"  # prompt + completion, header stripped
    assert second["header"] == DEFAULT_HEADER  # no header in that row
    assert first["checker"] == "lean4" and first["id"] != second["id"]


def test_conversational_completions_use_the_assistant_text():
    reward, verifier = lean_reward(statement_column="formal_statement")
    prompt = [{"role": "user", "content": f"Prove:\n```lean4\n{STATEMENT}\n```"}]
    reply = [{"role": "assistant", "content": f"Here:\n```lean4\n{STATEMENT}\n  omega\n```"}]
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "no proof"}]}]
    rewards = reward([prompt, prompt], [reply, parts], formal_statement=[STATEMENT] * 2)
    assert rewards == [1.0, 0.0]
    assert verifier.sent[0]["code"] == f"{STATEMENT}\n  omega"
    assert verifier.sent[1]["code"] == "no proof"


def test_completion_text_skips_tool_messages_and_rejects_other_types():
    turns = [
        {"role": "assistant", "content": "a"},
        {"role": "tool", "content": "ignored"},
        {"role": "assistant", "content": "b"},
    ]
    assert completion_text(turns) == "a\nb"
    with pytest.raises(TypeError, match="completions"):
        completion_text(3)


def test_missing_columns_are_named():
    reward, _ = lean_reward()
    with pytest.raises(ValueError, match=r"column 'statement'.*statement_column"):
        reward(["p"], ["x"])
    math = SieveReward(checker="math", client=RecordingVerifier())
    with pytest.raises(ValueError, match="column 'answer'"):
        math(["p"], ["24"])
    with pytest.raises(ValueError, match="checker"):
        SieveReward("http://x", checker="coq")


def test_math_sends_the_whole_completion_and_trl_hooks_are_fed():
    verifier = RecordingVerifier()
    reward = SieveReward(checker="math", client=verifier, proof_timeout_s=5, name="gsm")
    metrics, extra = {}, {}
    reward(
        ["q1", "q2"],
        [" so the answer is \\boxed{24}\n", "crash"],
        answer=[24, "7"],
        log_metric=lambda name, value: metrics.__setitem__(name, value),
        log_extra=lambda column, values: extra.__setitem__(column, values),
        trainer_state=object(),
    )
    assert verifier.sent[0] == {
        "id": "gsm/0/0",
        "checker": "math",
        "code": "so the answer is \\boxed{24}",
        "answer": "24",
        "timeout_s": 5,
    }
    assert metrics == {"gsm/verifier_error_fraction": 0.5}
    assert extra == {"gsm_verdict": ["invalid", "error"]}


def test_a_timeout_is_a_wrong_proof_not_a_failure():
    class TimesOut:
        def verify(self, proofs):
            return [VerifyResult(id=p["id"], verdict="timeout") for p in proofs]

    reward = SieveReward(checker="math", client=TimesOut())
    assert reward(["q"], ["24"], answer=["24"]) == [0.0]
    assert reward.stats == {"samples": 1, "verified": 0, "wrong": 1, "failed": 0}


def test_an_outage_gives_none_not_zero():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    reward = SieveReward(
        "http://verifier:8000",
        checker="math",
        retries=1,
        backoff_s=0.0,
        transport=httpx.MockTransport(down),
    )
    with reward:
        assert isinstance(reward.client, VerifierClient)
        assert reward(["q", "q"], ["24", "25"], answer=["24", "24"]) == [None, None]
    assert reward.stats["failed"] == 2


def test_lean_rewards_from_the_real_checker_on_the_repl_double(lean_double_url):
    # Header and statement from the dataset's columns; the service's lean4 checker, pool and
    # soundness rules judge (the REPL double stands in for Lean).
    statement = "theorem add_comm' (a b : ℕ) : a + b = b + a := by"
    prompt = f"Complete the following Lean 4 code:\n\n```lean4\n{HEADER}\n\n{statement}"
    completions = [
        "\n  omega\n```",  # continues the prompt's open block
        "\n  sorry\n```",
        f"Sure:\n```lean4\n{HEADER}\ntheorem add_comm' : True := trivial\n```",  # goal changed
    ]
    with SieveReward(lean_double_url, checker="lean4", timeout_s=60) as reward:
        rewards = reward([prompt] * 3, completions, statement=[statement] * 3, header=[HEADER] * 3)
    assert rewards == [1.0, 0.0, 0.0]
