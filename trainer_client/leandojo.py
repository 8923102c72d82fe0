"""Theorems from Lean repositories, through LeanDojo (the optional ``[leandojo]`` extra).

Two ways in: :func:`load_leandojo_benchmark` reads a LeanDojo Benchmark 4 JSON file (a list of
theorems with ``url``, ``commit``, ``file_path``, ``full_name``, ``start``, ``end``,
``traced_tactics``; LeanDojo-v2 exports add ``theorem_statement``) and needs no LeanDojo at all;
:func:`problems_from_repo` traces a repository with ``lean_dojo`` (imported only there).

A theorem of a library is re-proved *against that library*: the header imports the theorem's own
module (or a header you give), which already contains the theorem. So the statement's declared
name is replaced by a fresh one (``fresh_names=True``), and the theorem's namespace is opened in
the header so that names the statement uses unqualified still resolve. Statements that rely on
other local context of their file (``variable``s, sections, local notation) may not elaborate
alone; the service reports those as invalid like any other failed proof.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainer_client.problem import Problem

__all__ = [
    "LEANDOJO_EXTRA_HINT",
    "load_leandojo_benchmark",
    "problem_from_theorem",
    "problems_from_repo",
    "split_statement",
]

LEANDOJO_EXTRA_HINT = "install the optional extra: pip install 'sieve[leandojo]'"
_SPLITS = {"train", "val", "valid", "test"}


def load_leandojo_benchmark(
    path: str | Path,
    *,
    repo_dir: str | Path | None = None,
    header: str | None = None,
    split: str | None = None,
    fresh_names: bool = True,
) -> list[Problem]:
    """Problems from a LeanDojo Benchmark 4 JSON file (``train.json``, ``val.json``, ...).

    The statement is the record's ``theorem_statement`` when it has one, else the source text from
    ``start`` to ``end`` of ``repo_dir / file_path`` (a checkout of ``url`` at ``commit``), cut at
    the ``:=`` that starts the proof. ``header``: a header for every problem (e.g.
    ``"import Mathlib\\n"`` for Mathlib, so all problems share one warm header on the service);
    by default each problem imports its own module. ``split`` defaults to the file's stem when it
    names a split. Theorems whose statement cannot be cut (equation-style definitions) are skipped.
    """
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of theorems")
    if split is None and path.stem in _SPLITS:
        split = path.stem
    problems: list[Problem] = []
    sources = _SourceCache(Path(repo_dir) if repo_dir is not None else None)
    for i, record in enumerate(records):
        where = f"{path}[{i}]"
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object")
        for field in ("full_name", "file_path"):
            if not isinstance(record.get(field), str):
                raise ValueError(f"{where}.{field}: missing or not a string")
        text = _statement_text(record, sources, where)
        problem = problem_from_theorem(
            record["full_name"],
            text,
            file_path=record["file_path"],
            header=header,
            split=split,
            fresh_name=fresh_names,
        )
        if problem is not None:
            problems.append(problem)
    return problems


def problems_from_repo(
    url: str,
    commit: str,
    *,
    header: str | None = None,
    build_deps: bool = False,
    fresh_names: bool = True,
    limit: int | None = None,
) -> list[Problem]:
    """Trace the Lean repository ``url`` at ``commit`` with LeanDojo and list its theorems.

    Needs ``lean_dojo`` (the ``[leandojo]`` extra), a Lean toolchain, network access, and time:
    tracing builds the repository (minutes for a small one, hours for Mathlib; LeanDojo caches the
    result). ``build_deps=False`` traces only the repository's own files.
    """
    try:
        import lean_dojo
    except ImportError as exc:
        raise ImportError(f"problems_from_repo needs lean_dojo: {LEANDOJO_EXTRA_HINT}") from exc

    repo = lean_dojo.LeanGitRepo(url, commit)
    traced = lean_dojo.trace(repo, build_deps=build_deps)
    problems: list[Problem] = []
    for theorem in traced.get_traced_theorems():
        if limit is not None and len(problems) >= limit:
            break
        problem = problem_from_theorem(
            theorem.theorem.full_name,
            theorem.get_theorem_statement(),
            file_path=str(theorem.theorem.file_path),
            header=header,
            fresh_name=fresh_names,
        )
        if problem is not None:
            problems.append(problem)
    return problems


def problem_from_theorem(
    full_name: str,
    text: str,
    *,
    file_path: str,
    header: str | None = None,
    split: str | None = None,
    fresh_name: bool = True,
) -> Problem | None:
    """A :class:`Problem` from a theorem's source text (statement, possibly with its proof).

    ``None`` when no top-level ``:=`` ends the statement. A leading doc comment becomes the
    informal statement.
    """
    informal, rest = _leading_doc_comment(text)
    statement = split_statement(rest)
    if statement is None:
        return None
    if fresh_name:
        statement = _rename(statement, _fresh_name(full_name))
    base = header if header is not None else f"import {_module_of(file_path)}\n"
    namespace = full_name.rpartition(".")[0]
    if namespace and "_private" not in namespace:
        base = base.rstrip("\n") + f"\nopen {namespace}\n"
    return Problem(
        name=full_name,
        statement=statement,
        header=base,
        informal=informal,
        split=split,
    )


def split_statement(text: str) -> str | None:
    """``text`` up to the top-level ``:=`` that starts the proof, ending in ``:= by\\n``.

    ``:=`` inside brackets (default arguments, ``let``s in types) is skipped; comments and string
    literals are not parsed, which is enough for theorem statements. ``None`` if there is none.
    """
    depth = 0
    closing = {")": "(", "]": "[", "}": "{", "⟩": "⟨", "⦄": "⦃"}
    for i, char in enumerate(text):
        if char in "([{⟨⦃":
            depth += 1
        elif char in closing:
            depth = max(0, depth - 1)
        elif char == ":" and depth == 0 and text.startswith(":=", i):
            return text[:i].rstrip() + " := by\n"
    return None


def _statement_text(record: Mapping[str, Any], sources: _SourceCache, where: str) -> str:
    statement = record.get("theorem_statement")
    if isinstance(statement, str) and statement.strip():
        return statement
    if sources.root is None:
        raise ValueError(
            f"{where}.theorem_statement: missing; pass repo_dir= (a checkout of "
            f"{record.get('url', 'the repository')} at {record.get('commit', 'its commit')}) "
            "to read statements from the sources"
        )
    for field in ("start", "end"):
        value = record.get(field)
        if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
            raise ValueError(f"{where}.{field}: expected [line, column]")
    return sources.span(record["file_path"], record["start"], record["end"], where)


class _SourceCache:
    """Source files of one checkout, read once each."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._lines: dict[str, list[str]] = {}

    def span(self, file_path: str, start: list[int], end: list[int], where: str) -> str:
        assert self.root is not None
        if file_path not in self._lines:
            source = self.root / file_path
            if not source.is_file():
                raise ValueError(f"{where}.file_path: {source} not found in repo_dir")
            self._lines[file_path] = source.read_text(encoding="utf-8").splitlines(keepends=True)
        lines = self._lines[file_path]
        # LeanDojo positions are [line, column], both 1-based. The end only bounds the proof,
        # which the caller cuts off anyway, so whole lines up to it are enough.
        (first, column), (last, _) = start, end
        chunk = lines[first - 1 : max(last, first)]
        if first < 1 or not chunk:
            raise ValueError(f"{where}.start: line {first} is not in {file_path}")
        return "".join(chunk)[max(column - 1, 0) :]


_DECL = re.compile(r"\b(theorem|lemma)(\s+)([^\s({\[⦃:]+)")


def _rename(statement: str, name: str) -> str:
    return _DECL.sub(lambda m: f"{m.group(1)}{m.group(2)}{name}", statement, count=1)


def _fresh_name(full_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", full_name) + "_sieve"


def _module_of(file_path: str) -> str:
    return Path(file_path).with_suffix("").as_posix().replace("/", ".")


def _leading_doc_comment(text: str) -> tuple[str, str]:
    stripped = text.lstrip()
    if stripped.startswith("/--"):
        end = stripped.find("-/")
        if end != -1:
            return stripped[: end + 2] + "\n", stripped[end + 2 :].lstrip()
    return "", stripped
