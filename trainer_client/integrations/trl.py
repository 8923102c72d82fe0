"""Sieve's verdicts as a TRL reward function (``GRPOTrainer(reward_funcs=SieveReward(...))``).

TRL calls a reward function as ``fn(prompts=..., completions=..., **columns)``, where ``columns``
holds every other dataset column as a list with one value per completion, plus TRL's own
``trainer_state``, ``log_metric``, ``log_extra`` and ``completion_ids``. :class:`SieveReward`
answers with one reward per completion:

* ``1.0`` when the verifier accepts the proof (verdict ``valid``);
* ``0.0`` when it is wrong (``invalid``, or ``timeout``: it ran past its budget), and for an
  empty completion, which is never sent;
* ``None`` when the system failed (verdict ``error`` after the client's retries: a Lean crash,
  every replica down). TRL 1.16 then leaves the sample out: a completion whose every reward is
  ``None`` is excluded from its group's mean and std and gets advantage 0, so an outage never
  reads as a wrong proof.

Dataset columns (names configurable):

=============  ===========================================================================
``statement``  lean4, required: the formal statement (``theorem foo ... := by``); the
               service checks the proved theorem is this one, so a policy cannot change it.
``header``     lean4, optional: imports/``open``/``set_option`` lines; default
               :data:`trainer_client.data.DEFAULT_HEADER` (Mathlib, the paper's opens).
``answer``     math, required: the reference answer, compared with math-verify.
=============  ===========================================================================

For ``lean4`` the code is taken exactly as in Sieve's own loop (:func:`proof_request`): the last
complete ```` ```lean4 ```` block of prompt + completion, so a DeepSeek-Prover style prompt that
opens the block and a chat reply that writes a whole block both work. For ``math`` the whole
completion is sent; the checker reads a bare expression, ``\\boxed{...}`` or "the answer is".
Conversational completions (TRL's lists of ``{"role", "content"}`` messages) are read as the
text of their assistant messages.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from trainer_client.client import VerifierClient
from trainer_client.data import CHECKERS
from trainer_client.integrations._request import sample_request
from trainer_client.wire import ProofRequest, Verifier, verify_non_empty

__all__ = ["SieveReward", "completion_text"]


class SieveReward:
    """A TRL reward function backed by a Sieve verifier: 1.0 verified, 0.0 wrong, None failed.

    ``url`` is one base URL, several (a list, or comma-separated), as for
    :class:`~trainer_client.VerifierClient`; ``client_options`` go to that client (``api_key``,
    ``max_batch``, ``max_concurrency``, ``retries``, ``timeout_s`` for each HTTP request,
    ``policy``...). ``proof_timeout_s`` is each proof's budget on the server (default: the
    server's). ``name`` is what TRL logs the reward under (``rewards/<name>/mean``); it defaults
    to ``sieve_<checker>``. ``client`` replaces the HTTP client (any :class:`Verifier`).
    """

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        checker: str = "lean4",
        *,
        statement_column: str = "statement",
        header_column: str = "header",
        answer_column: str = "answer",
        proof_timeout_s: float | None = None,
        name: str | None = None,
        client: Verifier | None = None,
        **client_options: Any,
    ) -> None:
        if checker not in CHECKERS:
            raise ValueError(f"checker: expected one of {CHECKERS}, got {checker!r}")
        if client is None and url is None:
            raise ValueError("url: give the verifier's base URL (or a client)")
        if client is not None and client_options:
            raise ValueError(f"client_options {sorted(client_options)}: give them to the client")
        if proof_timeout_s is not None and not proof_timeout_s > 0:
            raise ValueError(f"proof_timeout_s: must be > 0, got {proof_timeout_s!r}")
        self.checker = checker
        self.statement_column = statement_column
        self.header_column = header_column
        self.answer_column = answer_column
        self.proof_timeout_s = proof_timeout_s
        self.__name__ = name or f"sieve_{checker}"
        self._owns_client = client is None
        if client is None:
            assert url is not None  # refused above
            client = VerifierClient(url, **client_options)
        self.client: Verifier = client
        self._calls = itertools.count()
        self._lock = threading.Lock()
        self._counts = {"samples": 0, "verified": 0, "wrong": 0, "failed": 0}

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        """One reward per completion, in order (TRL's reward-function signature)."""
        if len(prompts) != len(completions):
            raise ValueError(f"prompts: {len(prompts)} given for {len(completions)} completions")
        call = next(self._calls)
        requests = [
            self._request(f"{self.__name__}/{call}/{i}", i, prompt, completion, columns)
            for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True))
        ]
        results = verify_non_empty(self.client, requests)
        rewards: list[float | None] = [
            None if r.failed else (1.0 if r.ok else 0.0) for r in results
        ]
        self._record(rewards, [r.verdict for r in results], columns)
        return rewards

    @property
    def stats(self) -> dict[str, int]:
        """Samples judged since construction: ``samples``, ``verified``, ``wrong``, ``failed``."""
        with self._lock:
            return dict(self._counts)

    def close(self) -> None:
        """Close the HTTP client this reward made (a client passed in is the caller's)."""
        if self._owns_client and isinstance(self.client, VerifierClient):
            self.client.close()

    def __enter__(self) -> SieveReward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SieveReward(name={self.__name__!r}, checker={self.checker!r})"

    # ----------------------------------------------------------------------------------------

    def _request(
        self, id: str, i: int, prompt: Any, completion: Any, columns: Mapping[str, Any]
    ) -> ProofRequest:
        text = completion_text(completion)
        if self.checker == "math":
            truth = _column(
                columns, self.answer_column, "answer_column", i, self.checker, required=True
            )
            return sample_request("math", id, text, truth, timeout_s=self.proof_timeout_s)
        statement = _column(
            columns, self.statement_column, "statement_column", i, self.checker, required=True
        )
        header = _column(
            columns, self.header_column, "header_column", i, self.checker, required=False
        )
        # A chat reply is self-contained; a plain prompt may open the ```lean4 block itself.
        prompt_text = prompt if isinstance(prompt, str) else ""
        return sample_request(
            "lean4",
            id,
            text,
            statement,
            header=header,
            prompt=prompt_text,
            timeout_s=self.proof_timeout_s,
        )

    def _record(
        self, rewards: list[float | None], verdicts: list[str], columns: Mapping[str, Any]
    ) -> None:
        failed = sum(r is None for r in rewards)
        verified = sum(r == 1.0 for r in rewards)
        with self._lock:
            self._counts["samples"] += len(rewards)
            self._counts["verified"] += verified
            self._counts["failed"] += failed
            self._counts["wrong"] += len(rewards) - verified - failed
        # TRL hands these in; both are optional so the function also works outside a trainer.
        log_metric = columns.get("log_metric")
        if callable(log_metric) and rewards:
            log_metric(f"{self.__name__}/verifier_error_fraction", failed / len(rewards))
        log_extra = columns.get("log_extra")
        if callable(log_extra):
            log_extra(f"{self.__name__}_verdict", list(verdicts))


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or a conversation's assistant messages.

    Message content may be a string or a list of parts (``{"type": "text", "text": ...}``); the
    assistant messages are joined by newlines, so the last Lean block of the reply wins.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if not isinstance(completion, Sequence):
        raise TypeError(
            f"completions: expected a string or a list of messages, got {type(completion).__name__}"
        )
    parts = []
    for message in completion:
        if not isinstance(message, Mapping):
            raise TypeError(f"completions: a message must be a dict, got {type(message).__name__}")
        if message.get("role", "assistant") != "assistant":
            continue
        parts.append(_content_text(message.get("content")))
    return "\n".join(parts)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part)
            for part in content
            if not isinstance(part, Mapping) or part.get("type", "text") == "text"
        )
    return str(content)


def _column(
    columns: Mapping[str, Any], name: str, option: str, i: int, checker: str, *, required: bool
) -> Any:
    values = columns.get(name)
    if values is None:
        if required:
            raise ValueError(
                f"column {name!r}: missing from the dataset; the {checker} checker needs it "
                f"(rename the column, or pass {option}=...)"
            )
        return None
    if isinstance(values, str) or not isinstance(values, Sequence) or i >= len(values):
        raise ValueError(f"column {name!r}: expected one value per completion")
    value = values[i]
    if required and (value is None or not str(value).strip()):
        raise ValueError(f"column {name!r}: empty value for completion {i}")
    return value
