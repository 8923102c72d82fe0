"""The paper's prompt: exact text, chat template, over-long prompts left out, the checked block."""

from __future__ import annotations

import pytest

from examples.demo.tokenizer import char_tokenizer
from trainer_client.data import (
    DEFAULT_HEADER,
    EVAL_SYSTEM_PROMPT,
    Problem,
    PromptRenderer,
    build_prompt,
    completion_lean_block,
    filter_long_prompts,
    proof_request,
    render_prompt,
)

STATEMENT = "theorem two : (1 : ℕ) + 1 = 2 := by\n"
PROBLEM = Problem(name="two", statement=STATEMENT, informal="One plus one is two.")

#: A DeepSeek-style template: BOS, "User: …", "Assistant:".
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}User: {{ m['content'] }}\n\n"
    "{% else %}Assistant: {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


@pytest.fixture
def chat_tokenizer():
    tokenizer = char_tokenizer(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n:=()+-*/.,`'_{}[]<>ℕ"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def test_the_papers_prompt_word_for_word():
    assert build_prompt(PROBLEM) == (
        "Complete the following Lean 4 code with explanatory comments preceding each line of code:"
        "\n\n```lean4\n"
        "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\n"
        "open BigOperators Real Nat Topology Rat\n"
        "\n"
        "/-- One plus one is two. -/\n"
        "theorem two : (1 : ℕ) + 1 = 2 := by\n"
    )


def test_the_default_header_sets_no_heartbeat_limit():
    assert "set_option maxHeartbeats 0\n" in DEFAULT_HEADER


def test_a_header_with_trailing_blank_lines_still_leaves_one_blank_line_before_the_theorem():
    problem = Problem(name="t", statement=STATEMENT, header=DEFAULT_HEADER + "\n\n")
    assert "Rat\n\ntheorem two" in build_prompt(problem)


def test_chat_template_with_generation_prompt(chat_tokenizer):
    text = render_prompt(PROBLEM, chat_tokenizer)
    assert text == "User: " + build_prompt(PROBLEM) + "\n\nAssistant:"
    # The template's BOS is left to the tokenizer, which adds exactly one.
    ids = chat_tokenizer(text)["input_ids"]
    assert ids.count(chat_tokenizer.bos_token_id) == 1


def test_evaluation_adds_the_system_message(chat_tokenizer):
    assert EVAL_SYSTEM_PROMPT == "You are an expert in mathematics and Lean 4."
    text = render_prompt(PROBLEM, chat_tokenizer, system=EVAL_SYSTEM_PROMPT)
    assert text.startswith(EVAL_SYSTEM_PROMPT + "\n\nUser: Complete the following")


def test_no_template_gives_the_plain_prompt(chat_tokenizer):
    plain = char_tokenizer()
    assert render_prompt(PROBLEM, plain) == build_prompt(PROBLEM)
    assert render_prompt(PROBLEM, chat_tokenizer, chat_template=False) == build_prompt(PROBLEM)
    assert PromptRenderer(None)(PROBLEM) == build_prompt(PROBLEM)


def test_over_long_prompts_are_left_out_and_counted(chat_tokenizer):
    short = Problem(name="short", statement="1+1=", checker="math", answer="2")
    long = Problem(name="long", statement="1+" * 40 + "1=", checker="math", answer="41")
    render = PromptRenderer(chat_tokenizer)
    limit = len(chat_tokenizer(render(short))["input_ids"])
    result = filter_long_prompts([short, long, short], chat_tokenizer, limit, render=render)
    assert [p.name for p in result.kept] == ["short", "short"]
    assert result.dropped == ["long"] and result.n_dropped == 1
    assert "1 longer than" in result.summary()
    # One token less and nothing fits: the limit is inclusive, counted with special tokens.
    assert filter_long_prompts([short], chat_tokenizer, limit - 1, render=render).kept == []


# --- which block is checked ---------------------------------------------------------------------

PROOF = "  norm_num\n"


def test_chat_answer_with_a_full_block_is_checked(chat_tokenizer):
    prompt = render_prompt(PROBLEM, chat_tokenizer)
    answer = (
        " Here is the proof.\n```lean4\n" + DEFAULT_HEADER + "\n" + STATEMENT + PROOF + "```\nDone."
    )
    request = proof_request(PROBLEM, prompt, answer, id="1")
    assert request["code"] == STATEMENT + PROOF.rstrip("\n")
    assert request["statement"] == STATEMENT and request["header"] == DEFAULT_HEADER


def test_chat_answer_cut_off_inside_its_block(chat_tokenizer):
    prompt = render_prompt(PROBLEM, chat_tokenizer)
    answer = "```lean4\n" + STATEMENT + "  nlinarith [sq_nonneg"
    assert completion_lean_block(prompt, answer) == STATEMENT + "  nlinarith [sq_nonneg"


def test_plain_prompt_continued_and_closed():
    prompt = build_prompt(PROBLEM)
    block = completion_lean_block(prompt, PROOF + "```\n")
    assert block is not None and block.endswith(STATEMENT + PROOF.rstrip("\n"))
    assert proof_request(PROBLEM, prompt, PROOF + "```\n", id="1")["code"].startswith(
        "/-- One plus one"
    )


def test_plain_prompt_cut_off_counts_to_the_end():
    prompt = build_prompt(PROBLEM)
    assert completion_lean_block(prompt, PROOF).endswith(STATEMENT + PROOF)


def test_an_opening_fence_never_closes_a_block():
    # The prompt's open block must not be "closed" by the answer's own ```lean4 fence.
    prompt = "User: ```lean4\ntheorem a := by\n\nAssistant:"
    answer = "```lean4\ntheorem a := by\n  rfl"
    assert completion_lean_block(prompt, answer) == "theorem a := by\n  rfl"
