"""The rules decided on Lean's own parse of the proof, and the check that the lexer agrees.

:mod:`verifier_service.lean.trusted`'s parse program reads the code with ``Lean.Parser
.parseCommand`` on the header's environment before anything of the proof is elaborated. Its
answer decides:

- **the command allowlist, by syntax kind** (:func:`lean_violations`): every command, and every
  command of an ``in`` chain, maps through :func:`~.allowlist.policy_word` to the policy's word
  and is allowed or refused as that word is; a kind nobody listed is refused;
- **the target**: the declaration Lean parsed whose signature is the statement's
  (:func:`lean_target`), else the last theorem-like declaration;
- **the statement**: the target's keyword, name, modifiers and signature (``declSig``) compared
  with the statement's, parsed the same way, as Lean's syntax trees without positions,
  whitespace or comments; before the target only helper theorems, ``#check``/``#print``,
  ``open`` and ``set_option`` (and module docs).

**Why parsing the whole code first sees what elaboration will see (the fixpoint).** Lean parses a
file command by command, each with the parser tables of the environment the previous commands
built. Parsing the whole code on the header's environment is faithful as long as no command of the
code changes those tables. The commands that can (``syntax``, ``notation``, ``macro``, ``infix``
and the other mixfix forms, ``declare_syntax_cat``, ``elab``, new tokens through any of them,
``initialize``, ``#eval`` or ``run_cmd`` of meta code) all have syntax kinds outside the allowlist,
so a code that has one is refused on that same parse; attributes that register parsers are outside
the attribute allowlist, which the pre-filter reads on tokens :func:`parse_mismatch` proved equal
to Lean's. A code that has none of them parses under elaboration exactly as it parsed here. The
scope commands (``open``, ``namespace``, ``section``, ``end``) change the parser too: opening a
namespace activates its ``scoped`` syntax for the commands after it. The parse program elaborates
exactly these commands as it meets them, as Lean's frontend does, so every later command is parsed
with the scoped syntax elaboration will have; nothing else of the code runs there. (For ``open X in
cmd`` Lean's parser itself activates ``X``'s scoped syntax while it parses ``cmd`` (``withOpen`` in
``Lean/Parser/Extension.lean``), so the parse program sees it as elaboration will.) ``set_option``
does not change the parser.

**The lexer is a pre-filter.** :func:`parse_mismatch` compares the pre-filter's view
(:mod:`.source`: tokens, command split, targets) with Lean's. Where they disagree, the proof is
``invalid`` with ``parse_mismatch``: a disagreement means some rule of the pre-filter looked at
a different text than Lean will run. The pre-filter may refuse on its own; it never accepts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from verifier_service.lean.trusted import (
    LeanParse,
    ParsedCommand,
    ParsedDecl,
    ParsedPart,
    ParseResult,
)
from verifier_service.soundness.allowlist import (
    ALLOWED_COMMANDS,
    ALLOWED_HASH_COMMANDS,
    COMMENT_KINDS,
    DECLARATION_KIND,
    DECLARATION_KINDS,
    THEOREM_WORDS,
    policy_word,
)
from verifier_service.soundness.rules import DEFAULT_FORBIDDEN, Violation, statement_tokens
from verifier_service.soundness.source import (
    Command,
    Token,
    TokenKind,
    body_commands,
    command_head,
    line_col,
    tokenize,
)
from verifier_service.soundness.target import EXAMPLE_NAME, Target, Targets

__all__ = [
    "lean_target",
    "lean_violations",
    "parse_mismatch",
    "statement_declaration",
    "statement_for_elaboration",
]

#: Policy words allowed before the target (besides module docs): helper theorems, prints, and
#: the ``open``/``set_option`` lines the pre-filter's statement rule judged harmless.
_BEFORE_TARGET = THEOREM_WORDS | {"#check", "#print", "open", "set_option"}


# --- the statement as a declaration -------------------------------------------------------------


def statement_declaration(statement: str) -> str:
    """The statement as one complete declaration whose value is ``sorry``: a trailing
    ``sorry``, ``by`` and ``:=`` are dropped and `` := sorry`` appended. Lean parses this text
    (for the signature to compare) and elaborates it (for the type); if the cut is wrong, Lean's
    parse of it is not one declaration or not the code's, and the proof is refused."""
    tokens = statement_tokens(statement)
    if tokens and tokens[-1].value == "by":
        tokens.pop()
    if (
        len(tokens) >= 2
        and tokens[-2].text == ":"
        and tokens[-1].text == "="
        and not tokens[-1].spaced
    ):
        del tokens[-2:]
    end = tokens[-1].end if tokens else 0
    return statement[:end] + " := sorry"


def statement_for_elaboration(declaration: str) -> str:
    """``declaration`` with a leading ``example`` renamed to a theorem (an example declares no
    constant whose type could be read), as :meth:`~.target.Targets.code_to_run` renames the
    code's."""
    for tok in tokenize(declaration):
        if tok.kind is TokenKind.IDENT and tok.value == "example":
            return f"{declaration[: tok.start]}theorem {EXAMPLE_NAME}{declaration[tok.end :]}"
        if tok.kind is TokenKind.IDENT and tok.value in DECLARATION_KINDS.values():
            break
    return declaration


# --- Lean's decisions ---------------------------------------------------------------------------


def _word(part: ParsedPart) -> str | None:
    """The policy word of one command (a declaration's by its own kind)."""
    decl = part.decl
    if decl is not None and part.kind in (DECLARATION_KIND, decl.kind):
        return policy_word(DECLARATION_KIND, decl.kind, decl.keyword)
    return policy_word(part.kind)


def _decl_word(decl: ParsedDecl) -> str | None:
    return policy_word(DECLARATION_KIND, decl.kind, decl.keyword)


def _theorem_like(command: ParsedCommand) -> bool:
    return command.decl is not None and _decl_word(command.decl) in THEOREM_WORDS


def lean_target(parse: LeanParse) -> ParsedCommand | None:
    """The command declaring the target: the first whose declaration is the statement's (up to
    whitespace and comments, as Lean's syntax), else, without a statement, the last
    theorem-like one."""
    commands = parse.code.commands
    if parse.statement is not None:
        wanted = _statement_decl(parse.statement)
        if wanted is None:
            return None
        return next(
            (c for c in commands if c.decl is not None and c.decl.same_statement(wanted)), None
        )
    theorems = [c for c in commands if _theorem_like(c)]
    return theorems[-1] if theorems else None


def _statement_decl(statement: ParseResult) -> ParsedDecl | None:
    if statement.errors or len(statement.commands) != 1:
        return None
    return statement.commands[0].decl


def lean_violations(
    code: str,
    parse: LeanParse,
    *,
    forbidden: Collection[str] = DEFAULT_FORBIDDEN,
) -> list[Violation]:
    """The rules on Lean's parse (see the module docstring). Parse errors are ``lean_error``."""
    if parse.code.errors:
        first = parse.code.errors[0]
        return [Violation("lean_error", first.message, first.line, first.column)]
    found: list[Violation] = []
    seen: set[str] = set()
    for command in parse.code.commands:
        if command.kind in COMMENT_KINDS:
            continue
        for part in command.parts:
            word = _word(part)
            allowed = word is not None and (
                word in ALLOWED_COMMANDS
                or word in ALLOWED_HASH_COMMANDS
                or (word in DEFAULT_FORBIDDEN and word not in forbidden)
            )
            what = word if word is not None else part.kind
            if not allowed and what not in seen:
                seen.add(what)
                line, column = line_col(code, part.head)
                found.append(
                    Violation(
                        f"forbidden_command:{what}",
                        f"`{what}` is not allowed in the code (Lean's parse)",
                        line,
                        column,
                    )
                )
    if parse.statement is None:
        return found
    wanted = _statement_decl(parse.statement)
    if wanted is None:
        detail = "the statement is not exactly one declaration Lean can parse"
        return [*found, Violation("statement_error", detail)]
    target = lean_target(parse)
    if target is None:
        return [*found, Violation("statement_changed", "the code does not contain the statement")]
    for command in parse.code.commands:
        if command is target:
            break
        if command.kind in COMMENT_KINDS:
            continue
        for part in command.parts:
            word = _word(part)
            if word not in _BEFORE_TARGET:
                line, column = line_col(code, part.head)
                what = word or part.kind
                detail = f"`{what}` before the statement can change what it means"
                found.append(Violation("statement_changed", detail, line, column))
                return found
    return found


# --- the pre-filter against Lean ----------------------------------------------------------------


def parse_mismatch(code: str, parse: LeanParse, targets: Targets) -> str | None:
    """Why the pre-filter's reading of ``code`` differs from Lean's, or ``None`` if it does not.

    They agree when:

    - **tokens**: every token Lean read (outside doc comments) is exactly a run of the lexer's
      tokens, and every lexer token lies inside one of Lean's (the lexer splits ``:=`` in two;
      it may not see a token inside what Lean reads as a comment, nor miss one);
    - **commands**: every command Lean parsed (each command of an ``in`` chain, module docs
      aside) begins where a command of the lexer's split begins, with the same policy word
      (``theorem``, ``open``, ``#print``, ...). The lexer may split more finely (it splits
      inside tactic blocks, judging each piece as a command), never less;
    - **targets**: every theorem-like declaration Lean parsed is one the lexer found, and the
      target is the same declaration, with the same name.
    """
    tokens = tokenize(code)
    why = _tokens_differ(tokens, parse.code.commands)
    if why is not None:
        return why
    why = _commands_differ(code, body_commands(tokens), parse.code.commands)
    if why is not None:
        return why
    return _targets_differ(code, parse, targets)


def _tokens_differ(tokens: Sequence[Token], commands: Sequence[ParsedCommand]) -> str | None:
    leaves = sorted(leaf for c in commands for leaf in c.leaves if leaf[0] < leaf[1])
    k = 0
    for start, stop in leaves:
        if k < len(tokens) and tokens[k].start < start:
            tok = tokens[k]
            return f"the lexer reads {tok.text!r} at {tok.start}, which Lean does not read as code"
        if k >= len(tokens) or tokens[k].start != start:
            return f"Lean reads a token at {start} that the lexer does not begin there"
        while k < len(tokens) and tokens[k].end <= stop:
            k += 1
        if tokens[k - 1].end != stop:
            return f"Lean's token at {start} ends at {stop}, inside one of the lexer's"
    if k < len(tokens):
        tok = tokens[k]
        return f"the lexer reads {tok.text!r} at {tok.start}, which Lean does not read as code"
    return None


def _piece_word(piece: Command) -> str | None:
    if piece.kind in ("open", "set_option", "import"):
        return piece.kind
    if piece.kind == "continuation":
        return None
    head = command_head(piece)
    return head.value if head is not None else None


def _commands_differ(
    code: str, pieces: Sequence[Command], commands: Sequence[ParsedCommand]
) -> str | None:
    by_start = {piece.start: piece for piece in pieces}
    for command in commands:
        if command.kind in COMMENT_KINDS:
            continue
        for part in command.parts:
            piece = by_start.get(part.head)
            line, column = line_col(code, part.head)
            where = f"line {line}, column {column}"
            if piece is None:
                return f"Lean begins a command ({part.kind}) at {where}; the lexer does not"
            lean_word, lexer_word = _word(part), _piece_word(piece)
            if lean_word != lexer_word:
                return (
                    f"the command at {where} is {lean_word or part.kind!r} to Lean "
                    f"and {lexer_word!r} to the lexer"
                )
    return None


def _inside(target: Target, command: ParsedCommand) -> bool:
    stop = command.decl.stop if command.decl is not None else command.stop
    return command.start <= target.keyword.start < max(stop, command.stop)


def _same_name(target: Target, decl: ParsedDecl) -> bool:
    """Lean's declared name (as written, ``_root_.`` and all) is the one the lexer qualified."""
    if target.is_example or decl.name is None:
        return target.is_example and decl.name is None
    full = target.name.replace("«", "").replace("»", "")
    written = decl.name.replace("«", "").replace("»", "").removeprefix("_root_.")
    return full == written or full.endswith("." + written)


def _targets_differ(code: str, parse: LeanParse, targets: Targets) -> str | None:
    commands = parse.code.commands
    # An example is elaborated renamed (``theorem sieve_checked_example``) at the lexer's
    # keyword: that keyword must be the one of an ``example`` Lean parsed, one per example, or
    # the elaborated text would not be the parsed one.
    examples = [c for c in commands if c.decl is not None and c.decl.keyword == "example"]
    for target in targets.all:
        if not target.is_example:
            continue
        owners = [c for c in examples if _inside(target, c)]
        if len(owners) != 1 or target.keyword.text != "example":
            line, column = target.keyword.line, target.keyword.column
            return f"the lexer's example at line {line}, column {column} is not one Lean parsed"
    for owner in examples:
        if sum(1 for t in targets.all if t.is_example and _inside(t, owner)) != 1:
            line, column = line_col(code, owner.head)
            return f"Lean's example at line {line}, column {column} is not one the lexer found"
    for command in commands:
        if not _theorem_like(command):
            continue
        if not any(_inside(t, command) for t in targets.all):
            line, column = line_col(code, command.head)
            return f"Lean declares a theorem at line {line}, column {column} the lexer does not"
    lean = lean_target(parse)
    main = targets.main
    if lean is None and main is None:
        return None
    if lean is None or main is None or lean.decl is None:
        return "the lexer and Lean do not find the same target"
    if not _inside(main, lean) or not _same_name(main, lean.decl):
        return (
            f"the target is {main.name!r} to the lexer and "
            f"{lean.decl.name or 'an example'!r} to Lean"
        )
    return None
