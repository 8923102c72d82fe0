"""LeanChecker end to end, through the REPL protocol double running as a real process."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from verifier_service.checkers.base import InvalidInput, Job, Policy
from verifier_service.checkers.lean import INLINE_ANALYSIS_CHARS, LeanChecker, proof_digest
from verifier_service.lean.header import split_imports
from verifier_service.lean.pool import ReplPool
from verifier_service.lean.trusted import lean_string_literal, statement_cache_size
from verifier_service.settings import VerifierSettings
from verifier_service.testing import repl_double
from verifier_service.verdicts import Verdict

# The data's header: with its ``open`` the checker asks for ``_root_.foo``.
HEADER = (
    "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\n"
    "open BigOperators Real Nat Topology Rat"
)
STATEMENT = "theorem foo (a b : ℕ) : a + b = b + a := by\n"


def settings(**overrides: Any) -> VerifierSettings:
    return VerifierSettings(**{"lean_repl": None, "lean_max_timeout_s": 60, **overrides})


@pytest.fixture
async def make_checker() -> AsyncIterator[Callable[..., LeanChecker]]:
    """Checkers over a pool of the double (synthetic answers only), closed after the test."""
    checkers: list[LeanChecker] = []

    def make(*double_args: str, workers: int = 1) -> LeanChecker:
        command = repl_double.command("--no-transcripts", *double_args)
        pool = ReplPool(command, workers=workers, header_timeout_s=30)
        checker = LeanChecker(settings(lean_acquire_timeout_s=30), pool=pool)
        checkers.append(checker)
        return checker

    yield make
    for checker in checkers:
        await checker.aclose()


def job(
    checker: LeanChecker,
    code: str,
    *,
    header: str | None = HEADER,
    statement: str | None = None,
    timeout_s: float = 20.0,
    policy: Policy | None = None,
) -> Job:
    return checker.prepare(
        code=code,
        header=header,
        statement=statement,
        answer=None,
        timeout_s=timeout_s,
        policy=policy or Policy(),
    )


async def test_valid_proof(make_checker):
    checker = make_checker()
    await checker.start()
    outcome = await checker.check(job(checker, STATEMENT + "  omega", statement=STATEMENT))
    assert outcome.verdict is Verdict.VALID, outcome
    assert outcome.reasons == []
    assert outcome.axioms == ["propext", "Classical.choice", "Quot.sound"]


async def test_sorry_is_invalid_with_its_warning(make_checker):
    checker = make_checker()
    outcome = await checker.check(job(checker, STATEMENT + "  sorry", statement=STATEMENT))
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["sorry"]
    assert any("sorry" in m["data"] for m in outcome.messages)


async def test_allowed_sorry_passes_the_axiom_check_too(make_checker):
    checker = make_checker()
    allow = Policy(allow_sorry=True)
    outcome = await checker.check(job(checker, STATEMENT + "  sorry", policy=allow))
    assert outcome.verdict is Verdict.VALID, outcome
    assert outcome.axioms is not None and "sorryAx" in outcome.axioms


async def test_lean_error_is_invalid_with_positions_in_the_submitted_code(make_checker):
    checker = make_checker()
    code = "import Mathlib\n\n" + STATEMENT + "  simp -- double:error unsolved goals"
    submitted = job(checker, code, header=None)
    assert submitted.line_offset == 2  # the import line and the blank line after it
    outcome = checker.present(submitted, await checker.check(submitted))
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["lean_error"]
    (error,) = [m for m in outcome.messages if m["severity"] == "error"]
    line = error["pos"]["line"]
    assert "double:error" in code.splitlines()[line - 1]


async def test_timeout_is_a_timeout_verdict_with_its_budget(make_checker):
    checker = make_checker()
    code = STATEMENT + "  omega -- double:hang"
    outcome = await checker.check(job(checker, code, timeout_s=0.5))
    assert outcome.verdict is Verdict.TIMEOUT
    assert outcome.budget_s == 0.5
    # the pool replaces the killed worker and the next proof is checked normally
    again = await checker.check(job(checker, STATEMENT + "  omega"))
    assert again.verdict is Verdict.VALID
    assert checker.stats()["timeouts"] >= 1


async def test_crash_is_an_error_never_invalid(make_checker):
    checker = make_checker()
    outcome = await checker.check(job(checker, STATEMENT + "  omega -- double:crash"))
    assert outcome.verdict is Verdict.ERROR
    assert outcome.reasons == ["repl_crashed"]


async def test_native_decide_is_a_forbidden_axiom(make_checker):
    checker = make_checker()
    statement = "theorem big : 2 ^ 20 % 7 = 4 := by\n"
    outcome = await checker.check(job(checker, statement + "  native_decide", statement=statement))
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["forbidden_axiom:Lean.ofReduceBool"]
    assert outcome.axioms is not None and "Lean.ofReduceBool" in outcome.axioms
    allowed = Policy(axioms=("propext", "Classical.choice", "Quot.sound", "Lean.ofReduceBool"))
    outcome = await checker.check(job(checker, statement + "  native_decide", policy=allowed))
    assert outcome.verdict is Verdict.VALID


async def test_example_is_checked_for_axioms(make_checker):
    checker = make_checker()
    outcome = await checker.check(job(checker, "example : 2 ^ 20 % 7 = 4 := by native_decide"))
    assert outcome.reasons == ["forbidden_axiom:Lean.ofReduceBool"]


async def test_header_error_is_invalid_with_lean_messages(make_checker):
    checker = make_checker()
    outcome = await checker.check(job(checker, STATEMENT + "  omega", header="import NoSuchLib"))
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["header_error"]
    assert any("NoSuchLib" in m["data"] for m in outcome.messages)


async def test_a_configured_import_that_fails_is_a_system_error():
    # The operator said this header works (a prewarm header): its failing is the deployment's
    # fault (say, a broken Mathlib build), so no proof may be called wrong, or cached, for it.
    pool = ReplPool(repl_double.command("--no-transcripts"), workers=1, header_timeout_s=30)
    checker = LeanChecker(
        settings(lean_acquire_timeout_s=30, lean_prewarm_headers=["import NoSuchLib"]), pool=pool
    )
    try:
        configured = await checker.check(
            job(checker, STATEMENT + "  omega", header="import NoSuchLib")
        )
        other = await checker.check(job(checker, STATEMENT + "  omega", header="import Nope"))
    finally:
        await checker.aclose()
    assert configured.verdict is Verdict.ERROR
    assert configured.reasons == ["header_import_failed"]
    assert other.verdict is Verdict.INVALID and other.reasons == ["header_error"]


async def test_static_rules_reject_without_lean(make_checker):
    checker = make_checker()
    outcome = await checker.check(
        job(
            checker, "axiom cheat : False\n" + STATEMENT + "  exact cheat.elim", statement=STATEMENT
        )
    )
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["forbidden_command:axiom", "statement_changed"]
    assert outcome.messages[0]["pos"] == {"line": 1, "column": 0}
    assert checker.stats()["restarts"] == 0 and checker.stats()["busy"] == 0
    assert checker.pool is not None and checker.pool.stats().headers == {}  # Lean never started


async def test_statement_changed_to_true(make_checker):
    checker = make_checker()
    outcome = await checker.check(
        job(checker, "theorem foo (a b : ℕ) : True := trivial", statement=STATEMENT)
    )
    assert outcome.reasons == ["statement_changed"]


async def test_namespaced_theorems_get_their_axioms(make_checker):
    checker = make_checker()
    code = "namespace X\n" + STATEMENT + "  omega\nend X\ntheorem bar : True := trivial"
    outcome = await checker.check(job(checker, code))
    assert outcome.verdict is Verdict.VALID, outcome
    assert outcome.axioms == ["propext", "Classical.choice", "Quot.sound"]


async def test_an_axioms_answer_missing_for_one_target_is_a_system_error():
    one = {
        "severity": "info",
        "pos": {"line": 1, "column": 0},
        "data": "'foo' depends on axioms: []",
    }
    pool = _ScriptedPool([{"env": 7}, {"env": 8, "messages": [one]}])
    checker = LeanChecker(settings(), pool=pool)  # type: ignore[arg-type]
    code = "lemma helper : True := trivial\n" + STATEMENT + "  omega"
    outcome = await checker.check(job(checker, code, statement=STATEMENT))
    assert outcome.verdict is Verdict.ERROR
    assert outcome.reasons == ["axioms_unavailable"]


async def test_equivalent_headers_share_a_worker(make_checker):
    checker = make_checker()
    first = job(checker, STATEMENT + "  omega", header=HEADER)
    second = job(checker, "import Aesop\n" + STATEMENT + "  omega", header="-- same\n" + HEADER)
    assert first.header == second.header
    assert (await checker.check(first)).verdict is Verdict.VALID
    assert (await checker.check(second)).verdict is Verdict.VALID
    assert checker.pool is not None
    assert checker.pool.stats().headers == {split_imports(first.header)[0]: 1}


async def test_readiness_follows_the_pool(make_checker):
    checker = make_checker()
    assert checker.readiness() != {}  # not started
    await checker.start()
    await checker.check(job(checker, STATEMENT + "  omega"))
    for _ in range(200):
        if not checker.readiness():
            break
        await _sleep()
    assert checker.readiness() == {}


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.05)


# --- without a REPL ---------------------------------------------------------------------------


async def test_without_a_repl_every_proof_is_an_error():
    checker = LeanChecker(settings())
    assert checker.readiness() == {"lean4": "SIEVE_LEAN_REPL is not set"}
    await checker.start()  # does nothing, says why in the log
    outcome = await checker.check(job(checker, STATEMENT + "  omega"))
    assert outcome.verdict is Verdict.ERROR and outcome.reasons == ["no_lean_repl"]
    assert checker.stats() == {}
    await checker.aclose()


def test_a_configured_repl_builds_the_pool():
    checker = LeanChecker(settings(lean_repl="lake env repl", lean_sandbox="none"))
    assert isinstance(checker.pool, ReplPool)


def test_version_names_the_toolchain():
    checker = LeanChecker(settings(lean_toolchain="v4.33.0", mathlib_rev="abc", repl_rev="def"))
    assert checker.version == "lean4 toolchain=v4.33.0 mathlib=abc repl=def"


# --- prepare ----------------------------------------------------------------------------------


def test_prepare_normalises_the_header_and_moves_imports():
    checker = LeanChecker(settings())
    prepared = job(checker, "import Aesop\nimport Mathlib\n" + STATEMENT + " omega", header=None)
    assert prepared.header == "import Aesop\nimport Mathlib"
    assert prepared.code.startswith("theorem foo")  # the import lines are counted, not kept
    assert prepared.line_offset == 2
    assert prepared.checker == "lean4"


def test_prepare_moves_a_statements_imports_into_the_header():
    checker = LeanChecker(settings())
    prepared = job(
        checker, STATEMENT + " omega", header=None, statement="import Mathlib\n" + STATEMENT
    )
    assert prepared.header == "import Mathlib"
    assert prepared.statement == STATEMENT
    assert prepared.answer is None


def test_a_statement_with_imports_and_a_whole_file_share_one_header():
    checker = LeanChecker(settings())
    block = "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen Real\n\n"
    whole = job(
        checker, block + STATEMENT + " omega", header=None, statement="import Mathlib\n" + STATEMENT
    )
    split = job(checker, STATEMENT + " omega", header=block, statement=STATEMENT)
    assert (
        whole.header
        == split.header
        == "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen Real"
    )
    assert whole.code == split.code


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"code": "   \n"}, "code"),
        ({"code": "", "statement": STATEMENT}, "code"),
        ({"timeout_s": 61}, "timeout_s"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"statement": "  -- nothing\n"}, "statement"),
        ({"statement": "instance : Inhabited ℕ := ⟨1⟩"}, "statement"),
    ],
)
def test_prepare_rejects_bad_input_naming_the_field(kwargs, field):
    checker = LeanChecker(settings())
    args = {"code": STATEMENT + " omega", "statement": None, "timeout_s": 10.0, **kwargs}
    with pytest.raises(InvalidInput) as info:
        job(checker, args.pop("code"), **args)
    assert info.value.field == field


# --- replies the real REPL process cannot be made to give -------------------------------------


class _ScriptedWorker:
    """Answers the proof's own commands (the code, ``#print axioms``) from a script, in order,
    and Sieve's trusted programs (parse, statement, target) as the REPL double does, on what
    the double made of the same code; ``sent`` holds the scripted commands only."""

    header_env = 0

    def __init__(self, replies: list[Any]) -> None:
        self.replies = replies
        self.sent: list[dict[str, Any]] = []
        self.programs: list[str] = []
        self.program_payloads: list[dict[str, Any]] = []
        #: When set, every trusted program gets this reply instead of the double's.
        self.program_override: dict[str, Any] | None = None
        self.killed = False
        self._double = repl_double.ReplDouble([])
        self._double.answer({"cmd": "import Mathlib"})  # its env 0: the header's
        self._proof_env = 0

    def kill(self, reason: str = "killed") -> None:
        self.killed = True

    async def send(self, payload: dict[str, Any], timeout_s: float) -> Any:
        program = repl_double.trusted_program(payload["cmd"])
        if program is not None:
            self.programs.append(program)
            self.program_payloads.append(payload)
            if self.program_override is not None:
                return self.program_override
            env = self._proof_env if program == "target" else 0
            return self._double.answer({"cmd": payload["cmd"], "env": env})
        if not payload["cmd"].startswith("#print axioms"):
            self._proof_env = self._double.answer({"cmd": payload["cmd"], "env": 0})["env"]
        self.sent.append(payload)
        return self.replies.pop(0)


class _ScriptedPool:
    def __init__(self, replies: list[Any]) -> None:
        self.worker = _ScriptedWorker(replies)

    @contextlib.asynccontextmanager
    async def lease(self, header: str, *, acquire_timeout_s: float):
        yield self.worker


@pytest.mark.parametrize(
    ("replies", "reason", "killed"),
    [
        ([{"message": "Unknown environment."}], "repl_error", True),
        ([{"env": 1, "messages": "oops"}], "malformed_reply", True),
        ([{"messages": []}], "malformed_reply", True),
        ([{"env": 1}, {"message": "Lean error: boom"}], "axioms_unavailable", False),
        ([{"env": 1}, ["not", "a", "reply"]], "axioms_unavailable", False),
    ],
)
async def test_repl_level_failures_are_errors(replies, reason, killed):
    pool = _ScriptedPool(replies)
    checker = LeanChecker(settings(), pool=pool)  # type: ignore[arg-type]
    outcome = await checker.check(job(checker, STATEMENT + "  omega"))
    assert outcome.verdict is Verdict.ERROR
    assert outcome.reasons == [reason]
    assert pool.worker.killed is killed


async def test_axioms_are_asked_on_the_proofs_env():
    answer = {"env": 8, "messages": [{"severity": "info", "data": "'foo' depends on axioms: []"}]}
    pool = _ScriptedPool([{"env": 7}, answer])
    checker = LeanChecker(settings(), pool=pool)  # type: ignore[arg-type]
    no_opens = "import Mathlib\nset_option maxHeartbeats 400000"
    outcome = await checker.check(job(checker, STATEMENT + "  omega", header=no_opens))
    assert outcome.verdict is Verdict.VALID
    assert pool.worker.sent[1] == {"cmd": "#print axioms foo", "env": 7}
    assert pool.worker.sent[0]["env"] == 0


async def test_axioms_of_the_root_name_when_namespaces_are_open():
    # ``namespace X`` left open would make a plain ``foo`` resolve to a harmless ``X.foo``
    said = {1: "'foo' depends on axioms: []", 2: "'X.foo' depends on axioms: []"}
    info = [{"severity": "info", "pos": {"line": k, "column": 0}, "data": said[k]} for k in said]
    pool = _ScriptedPool([{"env": 7}, {"env": 8, "messages": info}])
    checker = LeanChecker(settings(), pool=pool)  # type: ignore[arg-type]
    code = STATEMENT + "  native_decide\nnamespace X\ntheorem foo : True := trivial"
    outcome = await checker.check(
        job(checker, code, header=HEADER + "\nopen Real", statement=STATEMENT)
    )
    assert outcome.verdict is Verdict.VALID
    # the statement's theorem first, then every other theorem of the code
    assert pool.worker.sent[1]["cmd"] == "#print axioms _root_.foo\n#print axioms _root_.X.foo"


async def test_large_code_is_analysed_off_the_event_loop(make_checker):
    checker = make_checker()
    padding = "-- filler line that keeps the proof long\n" * 1000
    code = STATEMENT + "  omega\n" + padding + "#exit\n"
    outcome = await checker.check(job(checker, code, statement=STATEMENT))
    assert len(code) > INLINE_ANALYSIS_CHARS
    assert outcome.reasons == ["forbidden_command:#exit"]
    valid = await checker.check(job(checker, STATEMENT + "  omega\n" + padding))
    assert valid.verdict is Verdict.VALID


@pytest.mark.parametrize(
    ("policy", "verdict", "reasons"),
    [
        (Policy(), Verdict.INVALID, ["forbidden_axiom:big._native.native_decide.ax_1_1"]),
        (
            Policy(axioms=("propext", "Classical.choice", "Quot.sound", "Lean.ofReduceBool")),
            Verdict.VALID,
            [],
        ),
    ],
)
async def test_lean_4_29_native_decide_axioms_need_a_policy_that_trusts_the_compiler(
    policy, verdict, reasons
):
    # Lean >= 4.29 writes one axiom per native_decide instead of Lean.ofReduceBool
    said = "'big' depends on axioms: [propext, big._native.native_decide.ax_1_1]"
    answer = {"severity": "info", "pos": {"line": 1, "column": 0}, "data": said}
    pool = _ScriptedPool([{"env": 7}, {"env": 8, "messages": [answer]}])
    checker = LeanChecker(settings(), pool=pool)  # type: ignore[arg-type]
    statement = "theorem big : 2 ^ 20 % 7 = 4 := by\n"
    outcome = await checker.check(job(checker, statement + "  native_decide", policy=policy))
    assert outcome.verdict is verdict
    assert outcome.reasons == reasons
    assert outcome.axioms == ["propext", "big._native.native_decide.ax_1_1"]


async def test_an_unused_helper_with_sorry_or_native_decide_fails(make_checker):
    checker = make_checker()
    unused = "lemma unused : (1 : ℕ) = 2 := by\n  sorry\n\n"
    outcome = await checker.check(job(checker, unused + STATEMENT + "  omega", statement=STATEMENT))
    assert outcome.verdict is Verdict.INVALID and outcome.reasons == ["sorry"]
    native = "lemma unused : 2 ^ 20 % 7 = 4 := by\n  native_decide\n\n"
    outcome = await checker.check(job(checker, native + STATEMENT + "  omega", statement=STATEMENT))
    assert outcome.reasons == ["forbidden_axiom:Lean.ofReduceBool"]


async def test_without_a_statement_an_error_in_any_theorem_fails(make_checker):
    checker = make_checker()
    code = "theorem first : 1 = 2 := by\n  simp -- double:error unsolved goals\n\n" + STATEMENT
    outcome = await checker.check(job(checker, code + "  omega"))
    assert outcome.verdict is Verdict.INVALID and outcome.reasons == ["lean_error"]


# --- Lean's parse, the kernel terms ----------------------------------------------------------


@pytest.mark.parametrize(
    "marker",
    [
        "-- double:parse-extra",  # Lean reads code where the lexer sees a comment
        "-- double:parse-kind Lean.Parser.Command.eval",  # a command of another kind
        "-- double:parse-name bar",  # another target
    ],
)
async def test_when_the_pre_filter_and_lean_disagree_the_proof_is_invalid(
    make_checker, marker, caplog
):
    checker = make_checker()
    code = STATEMENT + "  omega " + marker
    submitted = job(checker, code, statement=STATEMENT)
    with caplog.at_level("WARNING", logger="verifier_service.checkers.lean"):
        outcome = await checker.check(submitted)
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["parse_mismatch"]
    assert checker.counters() == {"sieve_lean_parse_mismatch": 1.0}
    digest = proof_digest(submitted.header, submitted.code)
    assert any(
        digest in r.getMessage() and "parse_mismatch" in r.getMessage() for r in caplog.records
    )
    assert code not in caplog.text  # the digest names the proof; its text stays out of the log


async def test_the_code_is_not_elaborated_when_lean_s_parse_refuses_it(make_checker):
    checker = make_checker()
    # the marker would kill the worker if the code were elaborated; the parse stops it first
    code = STATEMENT + "  omega -- double:parse-error\n  -- double:crash"
    outcome = await checker.check(job(checker, code, statement=STATEMENT))
    assert outcome.verdict is Verdict.INVALID and outcome.reasons == ["lean_error"]
    assert checker.stats()["crashes"] == 0


async def test_markers_inside_a_program_s_data_are_inert(make_checker):
    checker = make_checker()
    # ``double:hang`` in the code travels to the parse program as data, where it must not act;
    # it acts when the code itself runs, as a proof's own behaviour
    outcome = await checker.check(job(checker, STATEMENT + "  omega -- double:hang", timeout_s=1))
    assert outcome.verdict is Verdict.TIMEOUT


async def test_a_target_whose_type_is_not_the_statement_s_is_invalid(make_checker):
    checker = make_checker()
    # the text is the statement's, token for token; the elaborated term is not
    code = STATEMENT + "  omega -- double:type-differs"
    outcome = await checker.check(job(checker, code, statement=STATEMENT))
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["statement_mismatch"]
    same = await checker.check(job(checker, STATEMENT + "  omega", statement=STATEMENT))
    assert same.verdict is Verdict.VALID


@pytest.mark.parametrize("kind", ["axiom", "def", "opaque"])
@pytest.mark.parametrize("statement", [STATEMENT, None])
async def test_a_target_that_is_not_a_theorem_is_invalid(make_checker, kind, statement):
    checker = make_checker()
    code = STATEMENT + f"  omega -- double:target-kind {kind}"
    outcome = await checker.check(job(checker, code, statement=statement))
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["target_not_theorem"]


async def test_the_statement_is_elaborated_once_per_worker():
    pool = _ScriptedPool([{"env": 7}, _axioms("foo"), {"env": 9}, _axioms("foo")])
    checker = LeanChecker(settings(), pool=pool)  # type: ignore[arg-type]
    for _ in range(2):
        outcome = await checker.check(job(checker, STATEMENT + "  omega", statement=STATEMENT))
        assert outcome.verdict is Verdict.VALID, outcome
    assert pool.worker.programs == ["parse", "statement", "target", "parse", "target"]
    assert statement_cache_size(pool.worker) == 1  # type: ignore[arg-type]


async def test_the_statement_cache_is_per_header():
    """One worker serves every header with its imports: a statement elaborated under one
    header's ``open`` says nothing about its meaning under another's."""
    pool = _ScriptedPool([{"env": 7}, _axioms("foo"), {"env": 9}, _axioms("foo")])
    checker = LeanChecker(settings(), pool=pool)  # type: ignore[arg-type]
    for header in (HEADER, "import Mathlib\nimport Aesop\nopen Nat"):
        outcome = await checker.check(
            job(checker, STATEMENT + "  omega", header=header, statement=STATEMENT)
        )
        assert outcome.verdict is Verdict.VALID, outcome
    assert pool.worker.programs == ["parse", "statement", "target"] * 2
    assert statement_cache_size(pool.worker) == 2  # type: ignore[arg-type]


async def test_headers_with_the_same_imports_get_their_own_results(make_checker):
    """Same imports, different ``open``: one worker, one import, and the verdicts Lean gives
    each header (the trusted programs and the proof all run on the header's own env)."""
    checker = make_checker()
    code = STATEMENT + "  omega -- double:needsopen Real"
    with_real = await checker.check(job(checker, code, statement=STATEMENT))
    without = await checker.check(
        job(checker, code, header="import Mathlib\nimport Aesop\nopen Nat", statement=STATEMENT)
    )
    assert with_real.verdict is Verdict.VALID, with_real
    assert without.verdict is Verdict.INVALID and without.reasons == ["lean_error"]
    assert checker.pool is not None
    stats = checker.pool.stats()
    assert stats.headers == {"import Mathlib\nimport Aesop": 1} and stats.derived_envs == 2


async def test_a_header_failing_after_its_imports_is_the_proofs_header_error(make_checker):
    checker = make_checker()
    header = "import Mathlib\nset_option maxHeartbeats 0\nimport Aesop"
    outcome = await checker.check(job(checker, STATEMENT + "  omega", header=header))
    assert outcome.verdict is Verdict.INVALID and outcome.reasons == ["header_error"]
    assert outcome.messages[0]["pos"]["line"] == 3
    good = await checker.check(job(checker, STATEMENT + "  omega"))
    assert good.verdict is Verdict.VALID
    assert checker.pool is not None and checker.pool.stats().crashes == 0


async def test_the_code_reaches_lean_s_parse_as_data_on_the_header_s_env():
    pool = _ScriptedPool([{"env": 7}, _axioms("foo")])
    checker = LeanChecker(settings(), pool=pool)  # type: ignore[arg-type]
    code = STATEMENT + '  omega -- "} -/ \\ {'
    await checker.check(job(checker, code, statement=STATEMENT))
    parse = pool.worker.program_payloads[0]
    assert parse["env"] == 0
    assert code not in parse["cmd"]  # only its escaped literal is
    literal = repl_double._DATA_LITERAL.search(parse["cmd"])
    assert literal is not None
    data = json.loads(repl_double.decode_lean_string(literal.group("literal")))
    assert data["code"] == code
    assert lean_string_literal(json.dumps(data, ensure_ascii=False)) == literal.group("literal")


async def test_a_forged_program_answer_is_a_protocol_violation():
    pool = _ScriptedPool([])
    forged = {"env": 1, "messages": [{"severity": "info", "data": 'SIEVE-PARSE {"nonce": "x"}'}]}
    pool.worker.program_override = forged
    checker = LeanChecker(settings(), pool=pool)  # type: ignore[arg-type]
    outcome = await checker.check(job(checker, STATEMENT + "  omega", statement=STATEMENT))
    assert outcome.verdict is Verdict.ERROR
    assert outcome.reasons == ["protocol_violation"]
    assert pool.worker.killed


async def test_a_program_that_does_not_elaborate_is_a_system_error():
    pool = _ScriptedPool([])
    pool.worker.program_override = {
        "env": 1,
        "messages": [{"severity": "error", "data": "unknown namespace 'Lean'"}],
    }
    checker = LeanChecker(settings(), pool=pool)  # type: ignore[arg-type]
    outcome = await checker.check(job(checker, STATEMENT + "  omega"))
    assert outcome.verdict is Verdict.ERROR
    assert outcome.reasons == ["parse_unavailable"]


def _axioms(name: str) -> dict[str, Any]:
    data = f"'{name}' depends on axioms: [propext]"
    return {
        "env": 8,
        "messages": [{"severity": "info", "pos": {"line": 1, "column": 0}, "data": data}],
    }


async def test_crlf_line_endings_are_compared_on_the_text_lean_read(make_checker):
    checker = make_checker()
    code = "theorem helper : True := trivial\r\n\r\n" + STATEMENT.replace("\n", "\r\n") + "  omega"
    outcome = await checker.check(job(checker, code, statement=STATEMENT))
    assert outcome.verdict is Verdict.VALID, outcome
