"""Send the bundled cases to a running verifier and compare each verdict with the known one.

One ``POST /verify`` per policy (most cases share the default policy; the ``native_decide`` case
that must pass runs under a policy allowing ``Lean.ofReduceBool``). A case is *right* when its
verdict is the expected one and, for a refusal, one of its reasons starts with an expected
prefix (so a hostile proof refused for the wrong reason, e.g. a Lean error instead of the rule
that should catch it, is still flagged). ``error`` and ``timeout`` are never right: they mean
the deployment did not judge the proof at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from verifier_service.selftest.cases import CASES, DEFAULT_HEADER, Case, Expect

__all__ = ["CaseResult", "SelftestError", "SelftestReport", "run_selftest"]


class SelftestError(RuntimeError):
    """The selftest could not run: the server is unreachable, not ready, or answered an error."""


@dataclass(frozen=True)
class CaseResult:
    case: Case
    verdict: str
    reasons: tuple[str, ...]
    cached: bool = False

    @property
    def right(self) -> bool:
        if self.verdict != self.case.expect.value:
            return False
        if self.case.expect is Expect.INVALID and self.case.reasons:
            return any(r.startswith(self.case.reasons) for r in self.reasons)
        return True

    @property
    def hostile_accepted(self) -> bool:
        """A proof that must be refused came back ``valid``: a soundness hole."""
        return self.case.expect is Expect.INVALID and self.verdict == "valid"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.case.name,
            "kind": self.case.kind,
            "expect": self.case.expect.value,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "right": self.right,
        }


@dataclass
class SelftestReport:
    url: str
    results: list[CaseResult] = field(default_factory=list)
    checker_version: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.right for r in self.results)

    @property
    def wrong(self) -> list[CaseResult]:
        return [r for r in self.results if not r.right]

    @property
    def hostile(self) -> list[CaseResult]:
        return [r for r in self.results if r.case.expect is Expect.INVALID]

    @property
    def hostile_accepted(self) -> list[CaseResult]:
        return [r for r in self.results if r.hostile_accepted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "checker_version": self.checker_version,
            "cases": len(self.results),
            "wrong": len(self.wrong),
            "hostile_tried": len(self.hostile),
            "hostile_accepted": len(self.hostile_accepted),
            "seconds": self.seconds,
            "results": [r.to_dict() for r in self.results],
        }


def run_selftest(
    url: str,
    *,
    api_key: str | None = None,
    header: str = DEFAULT_HEADER,
    cases: Sequence[Case] = CASES,
    timeout_s: float = 120.0,
    ready_timeout_s: float = 0.0,
    transport: httpx.BaseTransport | None = None,
) -> SelftestReport:
    """Check every case against the verifier at ``url``; raise :class:`SelftestError` if the
    server cannot be asked (the report then has nothing to say about soundness).

    ``ready_timeout_s`` waits that long for ``/ready`` (Lean workers import Mathlib first).
    ``timeout_s`` is each proof's Lean budget; the HTTP timeout allows for a whole batch.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    started = time.perf_counter()
    report = SelftestReport(url.rstrip("/"))
    http_timeout = httpx.Timeout(timeout_s * max(1, len(cases)) + 60.0, connect=10.0)
    with httpx.Client(
        base_url=report.url, headers=headers, timeout=http_timeout, transport=transport
    ) as client:
        _wait_ready(client, ready_timeout_s)
        for policy, group in _by_policy(cases):
            body = {
                "proofs": [case.request(header, timeout_s) for case in group],
                "policy": policy,
            }
            data = _post(client, body)
            report.checker_version = data.get("checker_versions", {}).get("lean4", "")
            answers = {r["id"]: r for r in data.get("results", [])}
            for case in group:
                answer = answers.get(case.name)
                if answer is None:
                    raise SelftestError(f"the reply has no result for {case.name!r}")
                report.results.append(
                    CaseResult(
                        case,
                        str(answer.get("verdict")),
                        tuple(answer.get("reasons") or ()),
                        bool(answer.get("cached")),
                    )
                )
    order = {case.name: i for i, case in enumerate(cases)}
    report.results.sort(key=lambda r: order[r.case.name])
    report.seconds = time.perf_counter() - started
    return report


def _by_policy(cases: Iterable[Case]) -> list[tuple[dict[str, Any], list[Case]]]:
    groups: dict[tuple[bool, tuple[str, ...]], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.allow_sorry, case.axioms), []).append(case)
    return [
        ({"allow_sorry": allow_sorry, "axioms": list(axioms)}, group)
        for (allow_sorry, axioms), group in groups.items()
    ]


def _wait_ready(client: httpx.Client, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = client.get("/ready")
        except httpx.HTTPError as exc:
            raise SelftestError(f"cannot reach {client.base_url}: {exc}") from exc
        if response.status_code == 200:
            return
        if time.monotonic() >= deadline:
            raise SelftestError(
                f"{client.base_url}/ready answers {response.status_code}: {response.text[:500]}"
            )
        time.sleep(1.0)


def _post(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = client.post("/verify", json=body)
    except httpx.HTTPError as exc:
        raise SelftestError(f"POST /verify failed: {exc}") from exc
    if response.status_code != 200:
        raise SelftestError(f"POST /verify answered {response.status_code}: {response.text[:500]}")
    data = response.json()
    if not isinstance(data, dict):
        raise SelftestError("POST /verify answered something that is not a JSON object")
    return data
