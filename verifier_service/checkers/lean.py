"""The ``lean4`` checker: does Lean 4 accept the proof, and is it the proof that was asked for?

A check runs in stages, cheapest first, and each stage can only make a verdict worse:

1. **Pre-filter** (:func:`~verifier_service.soundness.static_violations`): the lexer's rules
   (forbidden commands in header or code, the statement check). It can only refuse: a proof that
   breaks one is ``invalid`` without Lean; one that passes still needs every stage below.
2. **Lean's parse** (:func:`~verifier_service.lean.trusted.parse_code`, the trusted parse
   program, on the header's env, before the code is elaborated): the command allowlist by
   syntax kind, the target and the statement's syntax are decided on it
   (:mod:`verifier_service.soundness.parsed`). Where the pre-filter read the code otherwise, the
   proof is ``invalid`` (``parse_mismatch``), counted and logged with the proof's digest.
3. **Lean**: a worker warm for the job's header's imports runs the code on the env of exactly
   the job's header (the pool derives it from the import env) under the job's budget.
   Errors and ``sorry`` make the proof ``invalid``; a budget overrun is ``timeout``; a crashed or
   unavailable REPL is ``error`` (the proof is not to blame, so the verdict is not cached).
4. **Kernel terms**: the target constant must be a theorem (``target_not_theorem``) and, with a
   statement, its type must be exactly the type of the statement elaborated alone on the header
   (``statement_mismatch``; the statement program's answer is cached per worker).
5. **Axioms**: ``#print axioms`` of every theorem, lemma and example (the statement's first),
   in one command under its own short timeout that is not charged to the proof; an axiom
   outside ``policy.axioms`` anywhere makes the proof ``invalid``.

At every stage, a reply that cannot be the REPL's answer to the command sent
(:class:`~verifier_service.lean.repl.ProtocolViolation`: code the proof ran may be forging
replies) makes the verdict ``error`` (``protocol_violation``), never cached; the pool has killed
the worker by then, so no later proof runs on it.

The trusted programs run under :data:`PROGRAM_TIMEOUT_S`, not charged to the proof.

Header normalisation (:mod:`verifier_service.lean.header`) happens in :meth:`LeanChecker.prepare`,
so the job's header is the pool key and part of the cache key. The code's header block moves
into the header, and the blank lines it leaves at the top are dropped (``Job.line_offset``
counts them), so a whole file and the same proof posted as header + code are one job and one
cache entry. Positions in ``messages`` refer to the submitted code: :meth:`LeanChecker.present`
adds the dropped lines back, and an ``example`` renamed to a theorem for ``#print axioms`` has
its columns moved back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from verifier_service.checkers.base import Checker, InvalidInput, Job, Policy
from verifier_service.lean.header import (
    normalise,
    normalise_header,
    parse_header,
    split_code,
    strip_leading_lines,
)
from verifier_service.lean.pool import (
    HeaderFailed,
    ImportSetStats,
    PoolUnavailable,
    ReplCrashed,
    ReplPool,
    ReplTimeout,
)
from verifier_service.lean.repl import LeanWorker, ProtocolViolation, UnencodableCommand
from verifier_service.lean.replies import (
    MalformedReply,
    ReplReply,
    parse_axioms,
    parse_reply,
    shift_lines,
)
from verifier_service.lean.trusted import (
    ConstantType,
    LeanParse,
    ProgramUnavailable,
    elaborate_statement,
    parse_code,
    target_type,
)
from verifier_service.settings import VerifierSettings
from verifier_service.soundness import (
    Targets,
    Violation,
    allowed_axioms,
    find_target,
    find_targets,
    no_lean_errors,
    no_sorry,
    statement_tokens,
    static_violations,
)
from verifier_service.soundness.parsed import (
    lean_violations,
    parse_mismatch,
    statement_declaration,
    statement_for_elaboration,
)
from verifier_service.verdicts import Outcome, Verdict

__all__ = ["AXIOMS_TIMEOUT_S", "INLINE_ANALYSIS_CHARS", "PROGRAM_TIMEOUT_S", "LeanChecker"]

logger = logging.getLogger(__name__)

#: Seconds ``#print axioms`` may take. It is not charged to the proof's budget: it only reads
#: the environment the proof already built.
AXIOMS_TIMEOUT_S = 30.0
#: Seconds each trusted program (parse, statement, target) may take; not charged to the proof.
PROGRAM_TIMEOUT_S = 30.0
#: The counter of proofs on which the pre-filter and Lean's parse disagreed (``/metrics``).
PARSE_MISMATCH_COUNTER = "sieve_lean_parse_mismatch"
#: Code longer than this is analysed in a thread, so the event loop keeps serving meanwhile
#: (the lexer reads about a megabyte per second).
INLINE_ANALYSIS_CHARS = 20_000


class LeanChecker(Checker):
    """Lean 4 proofs, checked by a pool of warm REPL processes."""

    name: ClassVar[str] = "lean4"

    def __init__(self, settings: VerifierSettings, pool: ReplPool | None = None) -> None:
        self.settings = settings
        if pool is None and settings.lean_repl:
            pool = ReplPool.from_settings(settings)
        self._pool = pool
        #: Modules the operator configured (the prewarm headers' imports): they are expected to
        #: load, so their failing to is a fault of the deployment, never of a proof.
        self._configured_imports = frozenset(
            module for h in settings.lean_prewarm_headers for module in parse_header(h).imports
        )
        #: Proofs on which the pre-filter and Lean's parse disagreed.
        self.parse_mismatches = 0

    @property
    def pool(self) -> ReplPool | None:
        return self._pool

    @property
    def version(self) -> str:
        s = self.settings
        return f"lean4 toolchain={s.lean_toolchain} mathlib={s.mathlib_rev} repl={s.repl_rev}"

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the pool, warming the configured headers (normalised, like a job's)."""
        if self._pool is None:
            logger.warning("lean4: SIEVE_LEAN_REPL is not set; Lean proofs answer 'error'")
            return
        headers = dict.fromkeys(normalise_header(h) for h in self.settings.lean_prewarm_headers)
        await self._pool.start(list(headers))

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    def _deployment_fault(self, header: str, messages: list[dict[str, Any]]) -> bool:
        """Did the header fail on an import the operator configured (e.g. a broken Mathlib)?

        The normalised header lists its imports first, one per line, so an error on one of the
        first lines is an import failure. If every import is a configured one, the proof is not
        to blame: answer ``error`` (retryable, never cached) rather than ``invalid``.
        """
        imports = parse_header(header).imports
        if not imports or not set(imports) <= self._configured_imports:
            return False
        lines = [m.get("pos", {}).get("line", 0) for m in messages if m.get("severity") == "error"]
        return any(1 <= line <= len(imports) for line in lines)

    def readiness(self) -> dict[str, str]:
        if self._pool is None:
            return {"lean4": "SIEVE_LEAN_REPL is not set"}
        return dict(self._pool.readiness())

    def stats(self) -> dict[str, float]:
        """The pool's gauges (size, busy, idle, restarts, timeouts, recycled, crashes, ...)."""
        if self._pool is None:
            return {}
        stats = self._pool.stats()
        values = dataclasses.asdict(stats) if dataclasses.is_dataclass(stats) else dict(stats)
        return {
            key: float(value)
            for key, value in values.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }

    def import_sets(self) -> list[ImportSetStats]:
        """The pool's gauges per import set (``sieve_lean_import_set_*`` in ``/metrics``)."""
        return [] if self._pool is None else self._pool.import_set_stats()

    def counters(self) -> dict[str, float]:
        """Monotonic counters for ``/metrics`` (exported as ``<name>_total``)."""
        return {PARSE_MISMATCH_COUNTER: float(self.parse_mismatches)}

    # --- jobs ---------------------------------------------------------------------------------

    def prepare(
        self,
        *,
        code: str,
        header: str | None,
        statement: str | None,
        answer: str | None,
        timeout_s: float,
        policy: Policy,
    ) -> Job:
        """Validate one request item and normalise its header (see the module docstring)."""
        if not isinstance(code, str) or not code.strip():
            raise InvalidInput("code", "must contain Lean code")
        if not timeout_s > 0:
            raise InvalidInput("timeout_s", f"must be positive, got {timeout_s:g}")
        if timeout_s > self.settings.lean_max_timeout_s:
            raise InvalidInput(
                "timeout_s",
                f"must be at most {self.settings.lean_max_timeout_s:g} seconds, got {timeout_s:g}",
            )
        statement_imports: list[str] = []
        if statement is not None:
            # A statement copied with its imports: they belong to the header, like the code's.
            statement_imports, statement = split_code(statement)
            statement = statement.lstrip("\n")
            if not statement_tokens(statement):
                raise InvalidInput("statement", "must contain a Lean statement")
            if find_target(statement, statement=statement) is None:
                raise InvalidInput("statement", "must declare a theorem, lemma, example or def")
        canonical_header, body = normalise(header, code)
        if statement_imports:  # first, as if the header had begun with them
            canonical_header = normalise_header("\n".join([*statement_imports, canonical_header]))
        body, line_offset = strip_leading_lines(body)
        return Job(
            checker=self.name,
            code=body,
            header=canonical_header,
            statement=statement,
            answer=None,  # not used by Lean; dropping it lets equal proofs share a cache entry
            timeout_s=float(timeout_s),
            policy=policy,
            line_offset=line_offset,
        )

    def present(self, job: Job, outcome: Outcome) -> Outcome:
        """Positions in the submitted code: the lines the header block took are added back."""
        if not job.line_offset or not outcome.messages:
            return outcome
        return dataclasses.replace(
            outcome, messages=[shift_lines(m, job.line_offset) for m in outcome.messages]
        )

    async def check(self, job: Job) -> Outcome:
        if self._pool is None:
            return Outcome.error("no_lean_repl")
        try:
            return await self._check(self._pool, job)
        except Exception:  # a bug here must not take the batch down, nor blame the proof
            logger.exception("lean4: unexpected failure while checking a proof")
            return Outcome.error("internal_error")

    async def _check(self, pool: ReplPool, job: Job) -> Outcome:
        if len(job.code) + len(job.header) > INLINE_ANALYSIS_CHARS:
            violations, targets = await asyncio.to_thread(_analyse, job)
        else:
            violations, targets = _analyse(job)
        if violations:
            return _invalid(violations, [v.to_message() for v in violations])
        stage = "lease"
        started = time.perf_counter()
        try:
            async with pool.lease(
                job.header, acquire_timeout_s=self.settings.lean_acquire_timeout_s
            ) as worker:
                env = worker.header_env if worker.header_env is not None else 0
                stage = "parse"
                refused = await self._lean_parse(worker, env, job, targets)
                if refused is not None:
                    return refused
                stage = "proof"
                started = time.perf_counter()
                code = targets.code_to_run(job.code)
                raw = await worker.send({"cmd": code, "env": env}, timeout_s=job.timeout_s)
                elapsed = time.perf_counter() - started
                try:
                    reply = parse_reply(raw)
                    if reply.repl_message is None and reply.env is None:
                        raise MalformedReply("a command reply without 'env'")
                except MalformedReply:
                    worker.kill()  # out of step with its REPL: never reuse it
                    raise
                if reply.repl_message is not None:
                    # e.g. "Unknown environment.": this worker lost its header; replace it
                    logger.error("lean4: the REPL refused a proof: %s", reply.repl_message)
                    worker.kill()
                    return Outcome.error("repl_error", time_s=elapsed)
                messages = _client_messages(reply, targets)
                violations = [*no_lean_errors(reply), *no_sorry(reply, job.policy)]
                if violations:
                    return _invalid(violations, messages, time_s=elapsed)
                if targets.main is None:  # nothing claimed, nothing to ask Lean about
                    return Outcome(Verdict.VALID, messages=messages, time_s=elapsed)
                assert reply.env is not None
                stage = "statement"
                statement = None
                if job.statement is not None:
                    statement = await elaborate_statement(
                        worker,
                        env,
                        statement_for_elaboration(statement_declaration(job.statement)),
                        PROGRAM_TIMEOUT_S,
                        header=job.header,
                    )
                stage = "target"
                target = await target_type(worker, reply.env, targets.main.name, PROGRAM_TIMEOUT_S)
                refused = _judge_kernel_terms(statement, target, messages, elapsed)
                if refused is not None:
                    return refused
                stage = "axioms"
                axioms_raw = await worker.send(
                    {"cmd": targets.print_axioms, "env": reply.env}, timeout_s=AXIOMS_TIMEOUT_S
                )
        except HeaderFailed as exc:
            elapsed = time.perf_counter() - started
            if self._deployment_fault(job.header, exc.messages):
                logger.error("lean4: a configured import does not load: %s", exc)
                return Outcome(
                    Verdict.ERROR, ["header_import_failed"], list(exc.messages), time_s=elapsed
                )
            return _invalid(
                [Violation("header_error", str(exc))], list(exc.messages), time_s=elapsed
            )
        except ProtocolViolation as exc:  # the lease killed the worker before this runs
            logger.error(
                "lean4: protocol violation during %s, proof %s: %s",
                stage,
                proof_digest(job.header, job.code),
                exc,
            )
            return Outcome.error("protocol_violation")
        except UnencodableCommand as exc:  # the API refuses such text; a library caller may not
            logger.warning("lean4: %s command not sent: %s", stage, exc)
            return Outcome.error("unencodable_text")
        except ProgramUnavailable as exc:
            logger.error("lean4: the trusted %s program gave no answer: %s", stage, exc)
            return Outcome.error(f"{stage}_unavailable")
        except ReplTimeout:
            if stage == "proof":
                return Outcome.timeout(job.timeout_s, time_s=time.perf_counter() - started)
            return Outcome.error(f"{stage}_timeout")
        except ReplCrashed as exc:
            logger.warning("lean4: REPL crashed during %s: %s", stage, exc)
            return Outcome.error("repl_crashed")
        except PoolUnavailable as exc:
            logger.warning("lean4: no REPL available: %s", exc)
            return Outcome.error("pool_unavailable")
        except MalformedReply as exc:
            logger.error("lean4: malformed REPL reply during %s: %s", stage, exc)
            return Outcome.error("malformed_reply")
        return _judge_axioms(targets, axioms_raw, messages, job.policy, elapsed)

    async def _lean_parse(
        self, worker: LeanWorker, env: int, job: Job, targets: Targets
    ) -> Outcome | None:
        """Lean's parse of the code, and the rules decided on it: ``None`` when the code may be
        elaborated, else the ``invalid`` outcome (``parse_mismatch`` when the pre-filter read
        the code otherwise than Lean)."""
        statement = statement_declaration(job.statement) if job.statement is not None else None
        parse = await parse_code(worker, env, job.code, statement, PROGRAM_TIMEOUT_S)
        if len(job.code) > INLINE_ANALYSIS_CHARS:
            judged = await asyncio.to_thread(_judge_parse, job, parse, targets)
        else:
            judged = _judge_parse(job, parse, targets)
        mismatch, violations = judged
        if mismatch is not None:
            self.parse_mismatches += 1
            logger.warning(
                "lean4: parse_mismatch digest=%s: %s", proof_digest(job.header, job.code), mismatch
            )
            detail = f"the pre-filter and Lean read the code differently: {mismatch}"
            return _invalid([Violation("parse_mismatch", detail)], [])
        if violations:
            messages = [v.to_message() for v in violations]
            if parse.code.errors:
                messages = [e.to_message() for e in parse.code.errors]
            return _invalid(violations, messages)
        return None


def proof_digest(header: str, code: str) -> str:
    """sha256 of header and code: names a proof in logs without writing its text there."""
    data = (header + "\n" + code).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def _judge_parse(
    job: Job, parse: LeanParse, targets: Targets
) -> tuple[str | None, list[Violation]]:
    """(why the pre-filter disagrees with Lean, or None; the rules' violations on Lean's parse).
    Parse errors come first: on code Lean cannot parse there is nothing to compare."""
    code = parse.text if parse.text is not None else job.code
    if code != job.code:  # Lean read the code with CRLF made LF: compare on that text
        targets = find_targets(code, header=job.header, statement=job.statement)
    violations = lean_violations(code, parse)
    if parse.code.errors:
        return None, violations
    return parse_mismatch(code, parse, targets), violations


def _judge_kernel_terms(
    statement: ConstantType | None,
    target: ConstantType,
    messages: list[dict[str, Any]],
    elapsed: float,
) -> Outcome | None:
    """The target is a theorem whose type is, as a term, the statement's (``None``: it is)."""
    if target.error is not None:
        # The code elaborated, so its target must be in the environment; if Lean cannot find
        # it, something is wrong on our side, not with the proof.
        logger.error("lean4: the target program found no target: %s", target.error)
        return Outcome.error("target_unavailable", time_s=elapsed)
    if statement is not None and statement.error is not None:
        violation = Violation("statement_error", f"the statement alone: {statement.error}")
        return _invalid([violation], messages, time_s=elapsed)
    expected = statement.kind if statement is not None else "theorem"
    if target.kind != expected:
        reason = "target_not_theorem" if expected == "theorem" else "statement_mismatch"
        detail = f"the target is a {target.kind} constant, not a {expected}"
        return _invalid([Violation(reason, detail)], messages, time_s=elapsed)
    if statement is not None and target.type != statement.type:
        detail = "the target's type is not, as a term, the statement's elaborated alone"
        return _invalid([Violation("statement_mismatch", detail)], messages, time_s=elapsed)
    return None


def _analyse(job: Job) -> tuple[list[Violation], Targets]:
    """The static rules and the declarations to check: pure, and CPU-bound on large code."""
    violations = static_violations(job.header, job.code, job.statement)
    targets = find_targets(job.code, header=job.header, statement=job.statement)
    return violations, targets


def _judge_axioms(
    targets: Targets,
    raw: Mapping[str, Any],
    messages: list[dict[str, Any]],
    policy: Policy,
    elapsed: float,
) -> Outcome:
    """Read one ``#print axioms`` answer per target (line ``k + 1`` answers for target ``k``)
    and refuse any axiom the policy does not allow, in any of them."""
    try:
        reply = parse_reply(raw)
    except MalformedReply:
        reply = ReplReply(repl_message="malformed reply")
    answers: dict[int, tuple[str, ...]] = {}
    if reply.repl_message is None:
        for message in reply.messages:
            answer = None if message.is_error else parse_axioms(message.data)
            if answer is not None:  # by its line; a reply without positions, by its order
                line = message.pos.line if message.pos is not None else len(answers) + 1
                answers.setdefault(line, answer.axioms)
    missing = [t.name for k, t in enumerate(targets.all, start=1) if k not in answers]
    if missing:
        # The theorems compiled, so Lean must be able to say what they rest on; if it cannot,
        # something is wrong on our side, not with the proof.
        logger.error("lean4: no axioms answer for %s: %s", ", ".join(missing), raw)
        return Outcome.error("axioms_unavailable", time_s=elapsed)
    axioms = list(dict.fromkeys(a for k in range(1, len(targets.all) + 1) for a in answers[k]))
    violations = allowed_axioms(axioms, policy)
    verdict = Verdict.INVALID if violations else Verdict.VALID
    return Outcome(
        verdict,
        reasons=[v.reason for v in violations],
        messages=messages,
        axioms=axioms,
        time_s=elapsed,
    )


def _client_messages(reply: ReplReply, targets: Targets) -> list[dict[str, Any]]:
    """The proof's messages as Lean sent them, with positions in the submitted code."""
    return [targets.restore_positions(dict(message.raw)) for message in reply.messages]


def _invalid(
    violations: list[Violation], messages: list[dict[str, Any]], *, time_s: float = 0.0
) -> Outcome:
    reasons = list(dict.fromkeys(v.reason for v in violations))
    return Outcome(Verdict.INVALID, reasons=reasons, messages=messages, time_s=time_s)
