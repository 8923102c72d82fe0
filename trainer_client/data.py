"""Problems, prompts, and the proof requests the verifier receives.

One :class:`Problem` type covers every source: the DeepSeek-Prover jsonl files (miniF2F,
ProofNet), the paper's parquet splits, LeanDojo Benchmark JSON, Sieve's own jsonl, and the CPU
demo's arithmetic task (``checker="math"``). :func:`build_prompt` renders the paper's prompt;
:func:`proof_request` turns prompt + completion into one item of ``POST /verify``, sending the
problem's header and formal statement alongside the code so that the service can check that the
theorem proved is the one that was asked.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trainer_client.leandojo import load_leandojo_benchmark
from trainer_client.problem import CHECKERS, DEFAULT_HEADER, Problem
from trainer_client.wire import ProofRequest

__all__ = [
    "CHECKERS",
    "DEFAULT_HEADER",
    "EVAL_SYSTEM_PROMPT",
    "PROMPT_PREFIX",
    "Problem",
    "PromptFilter",
    "PromptRenderer",
    "RequestFn",
    "build_prompt",
    "completion_lean_block",
    "extract_lean_block",
    "filter_long_prompts",
    "header_from_src_context",
    "load_problems",
    "proof_request",
    "render_prompt",
    "save_problems",
]

#: The paper's instruction (DeepSeek-Prover-V1.5 chain-of-thought prompt).
PROMPT_PREFIX = (
    "Complete the following Lean 4 code with explanatory comments preceding each line of code:"
    "\n\n```lean4\n"
)
#: The system message the paper's evaluation adds to the chat (training uses none).
EVAL_SYSTEM_PROMPT = "You are an expert in mathematics and Lean 4."
# --------------------------------------------------------------------------------------------
# Loading and saving


def load_problems(
    path: str | Path, *, split: str | None = None, limit: int | None = None
) -> list[Problem]:
    """Load problems from ``.jsonl``, ``.parquet`` or LeanDojo Benchmark ``.json``.

    jsonl rows are recognised by their fields: DeepSeek-Prover style (``formal_statement``,
    ``informal_prefix``, ``header``: miniF2F, ProofNet) or Sieve's own (:class:`Problem` fields,
    as written by :func:`save_problems`). ``split`` keeps only rows of that split; ``limit`` then
    keeps the first ``limit`` of them, in file order.
    """
    path = Path(path)
    if limit is not None and limit < 0:
        raise ValueError(f"limit: must be >= 0, got {limit}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows: Iterable[Problem] = _jsonl_problems(path)
    elif suffix == ".parquet":
        rows = _parquet_problems(path)
    elif suffix == ".json":
        rows = load_leandojo_benchmark(path)
    else:
        raise ValueError(f"path: unsupported file type {suffix!r} (use .jsonl, .parquet, .json)")
    out: list[Problem] = []
    for problem in rows:
        if split is not None and problem.split != split:
            continue
        if limit is not None and len(out) >= limit:
            break
        out.append(problem)
    return out


def save_problems(problems: Iterable[Problem], path: str | Path) -> Path:
    """Write problems as Sieve jsonl (one :class:`Problem` per line, all fields)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for problem in problems:
            f.write(json.dumps(dataclasses.asdict(problem), ensure_ascii=False) + "\n")
    return path


_PROBLEM_FIELDS = {f.name for f in dataclasses.fields(Problem)}


def _jsonl_problems(path: Path) -> Iterator[Problem]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object per line")
            yield _problem_from_row(row, where)


def _problem_from_row(row: Mapping[str, Any], where: str) -> Problem:
    if "formal_statement" in row:  # DeepSeek-Prover jsonl (miniF2F, ProofNet)
        _require(row, ("name", "formal_statement"), where)
        return Problem(
            name=row["name"],
            statement=row["formal_statement"],
            header=row.get("header") or DEFAULT_HEADER,
            informal=row.get("informal_prefix") or "",
            split=row.get("split"),
        )
    _require(row, ("name", "statement"), where)
    unknown = set(row) - _PROBLEM_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    try:
        return Problem(**{k: v for k, v in row.items() if v is not None or k == "answer"})
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _require(row: Mapping[str, Any], fields: Iterable[str], where: str) -> None:
    for field in fields:
        if not isinstance(row.get(field), str):
            raise ValueError(f"{where}: missing or non-string field {field!r}")


def _parquet_problems(path: Path) -> Iterator[Problem]:
    # pandas is the trainer extra's; the integrations import this module without it.
    import pandas as pd

    frame = pd.read_parquet(path)
    for column in ("theorem_full_name", "theorem_statement"):
        if column not in frame.columns:
            raise ValueError(f"{path}: missing column {column!r}")
    for row in frame.to_dict("records"):
        yield Problem(
            name=row["theorem_full_name"],
            statement=row["theorem_statement"],
            header=header_from_src_context(_str_or_empty(row.get("src_context"))),
            informal=_str_or_empty(row.get("informal_statement")),
            split=row.get("split") if isinstance(row.get("split"), str) else None,
        )


def _str_or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --------------------------------------------------------------------------------------------
# Headers


def header_from_src_context(src_context: str, base: str = DEFAULT_HEADER) -> str:
    """Turn a project-specific ``src_context`` into a header a plain-Mathlib checker can use.

    Its ``import`` lines (``import MiniF2F.Minif2fImport``) are replaced by ``base``'s imports.
    Its ``open`` and ``set_option`` lines are kept unless ``base`` already covers them: a name
    already opened by ``base`` is dropped from an ``open`` line, an option ``base`` already sets
    is dropped. For the paper's splits (``open BigOperators Real Nat Topology``) the result is
    ``base`` exactly, so those problems share one warm header on the service.
    """
    opened = {name for line in base.splitlines() for name in _open_line(line)[1]}
    options = {_option_name(line) for line in base.splitlines()} - {None}
    extra: list[str] = []
    for raw in src_context.splitlines():
        line = raw.strip()
        if not line or line.startswith("import "):
            continue
        keyword, names = _open_line(line)
        if names:
            fresh = [n for n in names if n not in opened]
            if fresh:
                extra.append(f"{keyword} {' '.join(fresh)}")
                opened.update(fresh)
            continue
        option = _option_name(line)
        if option is not None:
            if option not in options:
                extra.append(line)
                options.add(option)
            continue
        extra.append(line)
    if not extra:
        return base
    return base.rstrip("\n") + "\n" + "\n".join(extra) + "\n"


def _open_line(line: str) -> tuple[str, list[str]]:
    """``("open", names)`` or ``("open scoped", names)``; no names for anything else.

    A local ``open A in`` or a selective ``open A (x y)`` is not a plain list of namespaces and is
    kept verbatim by the caller.
    """
    words = line.split()
    if not words or words[0] != "open" or "in" in words or "(" in line:
        return "", []
    if words[1:2] == ["scoped"]:
        return "open scoped", words[2:]
    return "open", words[1:]


def _option_name(line: str) -> str | None:
    words = line.split()
    return words[1] if len(words) >= 3 and words[0] == "set_option" else None


# --------------------------------------------------------------------------------------------
# Prompts and proofs


def build_prompt(problem: Problem) -> str:
    """The prompt's text, before any chat template.

    lean4: the paper's (DeepSeek-Prover-V1.5 chain-of-thought) prompt: the instruction, a blank
    line, an open ```lean4 block with the header (its own blank lines kept), a blank line, the
    informal statement as a doc comment and the formal statement; the model continues after
    ``:= by``. math: the question itself. :func:`render_prompt` wraps it in the tokenizer's chat
    template, as the paper's pipeline does.
    """
    if problem.checker == "math":
        return problem.statement
    return (
        PROMPT_PREFIX
        + problem.header.strip("\n")
        + "\n\n"
        + _doc_comment(problem.informal)
        + problem.statement
    )


def render_prompt(
    problem: Problem,
    tokenizer: Any = None,
    *,
    system: str | None = None,
    chat_template: bool = True,
) -> str:
    """The text the policy is given: :func:`build_prompt` inside the tokenizer's chat template.

    As the paper's released pipeline does: one user message (after ``system``, if given: the
    evaluation's :data:`EVAL_SYSTEM_PROMPT`) rendered with ``add_generation_prompt=True``, so the
    model answers as the assistant. A tokenizer without a chat template (or
    ``chat_template=False``, or no tokenizer) gives the plain text. The template's leading BOS is
    dropped when the tokenizer adds one itself when encoding, so the prompt never has two.
    """
    text = build_prompt(problem)
    if tokenizer is None or not chat_template or not getattr(tokenizer, "chat_template", None):
        return text
    messages = [{"role": "user", "content": text}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    bos = getattr(tokenizer, "bos_token", None)
    if bos and rendered.startswith(bos) and _adds_bos(tokenizer):
        rendered = rendered[len(bos) :]
    return rendered


def _adds_bos(tokenizer: Any) -> bool:
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None:
        return False
    return bos_id in tokenizer("x")["input_ids"][:1]


@dataclass(frozen=True)
class PromptRenderer:
    """:func:`render_prompt` with its options fixed: the loop's ``prompt_fn``."""

    tokenizer: Any = None
    system: str | None = None
    chat_template: bool = True

    def __call__(self, problem: Problem) -> str:
        return render_prompt(
            problem, self.tokenizer, system=self.system, chat_template=self.chat_template
        )


@dataclass(frozen=True)
class PromptFilter:
    """What :func:`filter_long_prompts` kept, and how many it dropped."""

    kept: list[Problem]
    dropped: list[str]
    max_tokens: int

    @property
    def n_dropped(self) -> int:
        return len(self.dropped)

    def summary(self) -> str:
        total = len(self.kept) + self.n_dropped
        return (
            f"prompts: kept {len(self.kept)} of {total}; {self.n_dropped} longer than "
            f"{self.max_tokens} tokens left out"
        )


def filter_long_prompts(
    problems: Sequence[Problem],
    tokenizer: Any,
    max_tokens: int,
    *,
    render: Callable[[Problem], str] | None = None,
) -> PromptFilter:
    """Keep the problems whose rendered prompt fits in ``max_tokens`` tokens; count the rest.

    The paper's pipeline filters over-long prompts instead of truncating them: a left-truncated
    prompt loses the instruction and the header, and the model is then asked something else.
    Tokens are counted as the sampler encodes the prompt (special tokens included).
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens: must be >= 1, got {max_tokens}")
    render = render or PromptRenderer(tokenizer)
    kept: list[Problem] = []
    dropped: list[str] = []
    texts = [render(problem) for problem in problems]
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]] if texts else []
    for problem, length in zip(problems, lengths, strict=True):
        if length <= max_tokens:
            kept.append(problem)
        else:
            dropped.append(problem.name)
    return PromptFilter(kept=kept, dropped=dropped, max_tokens=max_tokens)


def _doc_comment(informal: str) -> str:
    text = informal.strip()
    if not text:
        return ""
    if not text.startswith("/-"):
        text = f"/-- {text} -/"
    return text + "\n"


_FENCE_OPEN = re.compile(r"```lean4?[ \t]*\n")
#: A closing fence: three backticks not followed by an info string (```` ```lean4 ```` opens).
_FENCE_CLOSE = re.compile(r"\n?[ \t]*```(?![ \t]*\w)")


def extract_lean_block(text: str) -> str | None:
    """The Lean code to check in ``text`` (prompt + completion).

    The last *complete* ```lean4 (or ```lean) block wins. When no block is closed (the model
    stopped, or ran out of tokens, without writing the closing fence) the last opened block counts
    up to the end of the text, as DeepSeek-Prover's own pipeline checks header + statement +
    whatever was generated. ``None`` when the text has no Lean block at all.
    """
    complete, opened = _lean_blocks(text)
    return complete if complete is not None else opened


def _lean_blocks(text: str) -> tuple[str | None, str | None]:
    """``(last complete block, block still open at the end)`` of ``text``."""
    last_complete: str | None = None
    last_open: str | None = None
    pos = 0
    while True:
        opening = _FENCE_OPEN.search(text, pos)
        if opening is None:
            break
        closing = _FENCE_CLOSE.search(text, opening.end())
        if closing is None:
            last_open = text[opening.end() :]
            break
        last_complete = text[opening.end() : closing.start()]
        pos = closing.end()
    return last_complete, last_open


def completion_lean_block(prompt: str, completion: str) -> str | None:
    """The Lean code a completion of ``prompt`` proposes, for plain and chat prompts alike.

    1. the completion's own last complete block (a chat answer: the paper's reward read the
       response's last code block);
    2. else the last complete block of prompt + completion (a plain prompt's open block that the
       completion continues and closes);
    3. else a block the completion opened and did not close (a chat answer cut off by the token
       limit);
    4. else the prompt's open block continued to the end (a plain prompt, cut off).
    """
    own_complete, own_open = _lean_blocks(completion)
    if own_complete is not None:
        return own_complete
    whole_complete, whole_open = _lean_blocks(prompt + completion)
    if whole_complete is not None:
        return whole_complete
    if own_open is not None:
        return own_open
    return whole_open


class RequestFn(Protocol):
    """Turns a completion into its ``POST /verify`` item (:func:`proof_request`'s signature)."""

    def __call__(
        self,
        problem: Problem,
        prompt: str,
        completion: str,
        *,
        id: str,
        timeout_s: float | None = None,
    ) -> ProofRequest: ...


def proof_request(
    problem: Problem,
    prompt: str,
    completion: str,
    *,
    id: str,
    timeout_s: float | None = None,
) -> ProofRequest:
    """One item of ``POST /verify`` for ``completion`` of ``prompt`` on ``problem``.

    lean4: ``code`` is :func:`completion_lean_block` of prompt and completion, with the problem's
    header removed from its top (leading ``import`` lines too, should the model have rewritten it);
    ``header`` and ``statement`` are the problem's, so the service checks the theorem proved is the
    one asked. When the text holds no Lean block the completion itself is sent (and will fail the
    statement check: a wrong proof, not a system error). math: ``code`` is the completion's first
    non-blank line, stripped; ``answer`` is the reference answer.
    """
    request: ProofRequest
    if problem.checker == "math":
        request = {"id": id, "checker": problem.checker, "code": _first_line(completion)}
        request["answer"] = problem.answer
    else:
        block = completion_lean_block(prompt, completion)
        code = completion if block is None else _strip_header(block, problem.header)
        request = {"id": id, "checker": problem.checker, "code": code}
        request["header"] = problem.header
        request["statement"] = problem.statement
    if timeout_s is not None:
        request["timeout_s"] = timeout_s
    return request


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _strip_header(code: str, header: str) -> str:
    head = header.strip()
    stripped = code.lstrip()
    if head and stripped.startswith(head):
        return stripped[len(head) :].lstrip("\n")
    lines = stripped.splitlines(keepends=True)
    while lines and (lines[0].startswith("import ") or not lines[0].strip()):
        lines.pop(0)
    return "".join(lines)
