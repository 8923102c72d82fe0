"""The sample → verify → tally pipeline with a scripted sampler and verifier."""

import io
import json
from dataclasses import dataclass

import pytest

from trainer_client.data import Problem, build_prompt
from trainer_client.evaluation import pass_at_k
from trainer_client.evaluation.runner import EvalPlan, evaluate_problems


@dataclass
class FakeSamples:
    texts: list[str]


class ScriptedSampler:
    """Completion j of a prompt is its j-th text, counting across calls."""

    def __init__(self):
        self.calls = []
        self.counter = {}

    def sample(self, prompts, k):
        self.calls.append((len(prompts), k))
        texts = []
        for prompt in prompts:
            for _ in range(k):
                j = self.counter.get(prompt, 0)
                self.counter[prompt] = j + 1
                texts.append(str(j))
        return FakeSamples(texts)


@dataclass
class Result:
    verdict: str
    reasons: tuple = ()

    @property
    def ok(self):
        return self.verdict == "valid"

    @property
    def failed(self):
        return self.verdict == "error"


class RuleVerifier:
    """valid if the answer is a multiple of the problem's modulus; `error` for answer 7."""

    def __init__(self, moduli):
        self.moduli = moduli
        self.seen = []

    def verify(self, proofs):
        self.seen.extend(proofs)
        out = []
        for proof in proofs:
            value = int(proof["code"])
            if value == 7:
                out.append(Result("error", ("client:connect",)))
            elif value % self.moduli[proof["answer"]] == 0:
                out.append(Result("valid"))
            else:
                out.append(Result("invalid", ("wrong_answer",)))
        return out


def problems():
    return [
        Problem(name="every-third", statement="q1", checker="math", header="", answer="a"),
        Problem(name="none", statement="q2", checker="math", header="", answer="b"),
        Problem(name="all", statement="q3", checker="math", header="", answer="c"),
    ]


def test_counts_exclude_errors_and_match_the_rule():
    sampler = ScriptedSampler()
    verifier = RuleVerifier({"a": 3, "b": 1000, "c": 1})
    sink = io.StringIO()
    result = evaluate_problems(
        problems(),
        sampler,
        verifier,
        plan=EvalPlan(n=10, batch_size=4),
        label="scripted",
        samples_out=sink,
        n_boot=50,
    )
    by_name = {p.name: p for p in result.problems}
    # answers 0..9: 7 is an error -> n = 9; multiples of 3 among the rest: 0, 3, 6, 9.
    assert (by_name["every-third"].n, by_name["every-third"].c) == (9, 4)
    assert (by_name["none"].n, by_name["none"].c) == (9, 1)  # only 0
    assert (by_name["all"].n, by_name["all"].c) == (9, 9)
    assert all(p.errors == 1 for p in result.problems)
    assert result.errors == 3
    assert result.precision[0] == pytest.approx((4 / 9 + 1 / 9 + 1) / 3)
    assert by_name["every-third"].pass_at_k[2] == pytest.approx(pass_at_k(9, 4, 2))
    # pass@10 with 9 verdicts each: every problem has c >= 1, so each counts 1.0 (kept in the mean)
    assert result.pass_at_k[-1] == 1.0
    # diversity both ways: the paper's over all 10 responses of every problem, ours over the
    # verified ones only
    assert all(p.paper_diversity["proofs"] == 10 for p in result.problems)
    assert by_name["every-third"].diversity["proofs"] == 4
    assert set(result.diversity) == {"paper", "verified"}
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert len(lines) == 30
    assert sum(line["verdict"] == "error" for line in lines) == 3


def test_batches_respect_batch_size_and_requests_carry_the_problem():
    sampler = ScriptedSampler()
    verifier = RuleVerifier({"a": 2, "b": 2, "c": 2})
    evaluate_problems(
        problems(),
        sampler,
        verifier,
        plan=EvalPlan(n=10, batch_size=4, timeout_s=5.0),
        label="x",
        n_boot=20,
    )
    # n = 10 drawn 4 + 4 + 2 per problem, one problem per call.
    assert sampler.calls == [(1, 4), (1, 4), (1, 2)] * 3
    assert len(verifier.seen) == 30
    assert len({p["id"] for p in verifier.seen}) == 30
    assert {p["timeout_s"] for p in verifier.seen} == {5.0}
    assert sampler.counter == {build_prompt(p): 10 for p in problems()}


def test_small_n_shares_calls_between_problems():
    sampler = ScriptedSampler()
    evaluate_problems(
        problems(),
        sampler,
        RuleVerifier({"a": 2, "b": 2, "c": 2}),
        plan=EvalPlan(n=2, batch_size=4),
        label="x",
        n_boot=20,
    )
    assert sampler.calls == [(2, 2), (1, 2)]


def test_progress_is_reported_per_batch():
    seen = []
    evaluate_problems(
        problems()[:1],
        ScriptedSampler(),
        RuleVerifier({"a": 1}),
        plan=EvalPlan(n=9, batch_size=3),
        label="x",
        n_boot=20,
        on_progress=lambda done, ok, err: seen.append((done, ok, err)),
    )
    assert seen == [(3, 3, 0), (6, 6, 0), (9, 8, 1)]  # answer 7 is an error


def test_bad_plans_and_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"^n:"):
        EvalPlan(n=0)
    with pytest.raises(ValueError, match="batch_size"):
        EvalPlan(batch_size=0)
    dup = [problems()[0], problems()[0]]
    with pytest.raises(ValueError, match="names"):
        evaluate_problems(dup, ScriptedSampler(), RuleVerifier({}), plan=EvalPlan(), label="x")


class EmptySampler(ScriptedSampler):
    def sample(self, prompts, k):
        out = super().sample(prompts, k)
        out.texts = ["  " if int(t) % 2 else t for t in out.texts]
        return out


def test_empty_completions_are_wrong_without_asking_the_verifier():
    verifier = RuleVerifier({"a": 1})
    result = evaluate_problems(
        problems()[:1],
        EmptySampler(),
        verifier,
        plan=EvalPlan(n=6, batch_size=6),
        label="x",
        n_boot=20,
    )
    assert len(verifier.seen) == 3  # answers 0, 2, 4; the blank ones stay local
    assert (result.problems[0].n, result.problems[0].c) == (6, 3)


def test_the_paper_evaluation_prompt_reaches_the_sampler():
    # sieve-eval renders prompts with the chat template and the paper's system message; the
    # sampler must be given exactly those texts, one per problem.
    from trainer_client.data import EVAL_SYSTEM_PROMPT, PromptRenderer

    class ChatTokenizer:
        chat_template = "chat"
        bos_token = None

        def apply_chat_template(self, messages, add_generation_prompt, tokenize):
            assert add_generation_prompt and not tokenize
            return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    seen = []

    class RecordingSampler(ScriptedSampler):
        def sample(self, prompts, k):
            seen.extend(prompts)
            return super().sample(prompts, k)

    renderer = PromptRenderer(tokenizer=ChatTokenizer(), system=EVAL_SYSTEM_PROMPT)
    evaluate_problems(
        problems(),
        RecordingSampler(),
        RuleVerifier({"a": 3, "b": 1000, "c": 1}),
        plan=EvalPlan(n=2, batch_size=4),
        label="chat",
        n_boot=10,
        prompt_fn=renderer,
    )
    expected = {f"<system>{EVAL_SYSTEM_PROMPT}<user>{p.statement}<assistant>" for p in problems()}
    assert set(seen) == expected
