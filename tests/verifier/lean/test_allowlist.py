"""The allowlist is a contract: the manual states it, and it admits everything real data uses."""

from __future__ import annotations

import json
import re

import pytest

from tests.docs import PAGES, doc_section
from verifier_service.soundness import allowlist, no_forbidden_commands, statement_unchanged
from verifier_service.soundness.source import TokenKind, attribute_names, attribute_spans, tokenize
from verifier_service.vendored import data_file


def _readme_section() -> str:
    return doc_section("soundness", "## What `lean4` counts as verified")


def _bullet(section: str, title: str) -> str:
    match = re.search(rf"- {title}[^:]*:(.*?)(?=\n   - |\n\n)", section, re.DOTALL)
    assert match, f"{PAGES['soundness']} has no '{title}' bullet"
    return match.group(1)


def _names(text: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", text))


def test_readme_states_the_allowed_commands():
    listed = _names(_bullet(_readme_section(), "Commands").split("Any other")[0])
    expected = (
        allowlist.ALLOWED_COMMANDS
        | allowlist.ALLOWED_HASH_COMMANDS
        | (allowlist.MODIFIERS - {"unsafe"})  # unsafe is refused outright
    )
    assert listed == expected


def test_readme_states_the_allowed_attributes():
    listed = _names(_bullet(_readme_section(), "Attributes").split("Every other")[0])
    assert listed == allowlist.ALLOWED_ATTRIBUTES | {"*_simps"}


def test_readme_states_the_allowed_options():
    section = _readme_section()
    listed = _names(_bullet(section, "Options").split("Others are")[0])
    harmless = _names(section[section.index("options\n     that only bound") :].split(".\n")[0])
    for name in allowlist.ALLOWED_OPTIONS:
        assert name in listed | harmless, name
    for prefix in allowlist.HARMLESS_OPTION_PREFIXES:
        assert f"{prefix}*" in harmless, prefix


def test_readme_names_the_refused_words_it_promises():
    refused = _names(_bullet(_readme_section(), "Refused wherever they occur"))
    for word in refused:
        if word.endswith("…") or " " in word or word.startswith("`"):
            continue
        tokens = tokenize(word)
        if len(tokens) != 1 or tokens[0].kind not in (TokenKind.IDENT, TokenKind.COMMAND):
            continue
        assert no_forbidden_commands(f"{word} x\n"), word


def _statements() -> list[tuple[str, str]]:
    """(header, statement) of every vendored data set (``data/``); a missing file fails."""
    pd = pytest.importorskip("pandas", reason="the parquet splits need pandas (the trainer extra)")
    pairs = []
    for name in ("minif2f.jsonl", "proofnet.jsonl"):
        for line in data_file(name).read_text("utf-8").splitlines():
            row = json.loads(line)
            pairs.append((row["header"], row["formal_statement"]))
    for name in ("mff-lwb-10k-seen.parquet", "mff-lwb-unseen-200.parquet"):
        frame = pd.read_parquet(data_file(name), columns=["theorem_statement", "src_context"])
        pairs += list(zip(frame["src_context"], frame["theorem_statement"], strict=True))
    return pairs


def test_every_statement_and_header_of_the_data_sets_passes_the_rules():
    pairs = _statements()
    assert len(pairs) > 10_000, f"the vendored data sets are not all there ({len(pairs)})"
    refused = []
    for header, statement in pairs:
        code = statement + "\n  sorry\n"
        found = no_forbidden_commands(header, where="header") + no_forbidden_commands(code)
        found += statement_unchanged(code, statement, header)
        if found:
            refused.append((statement[:80], [v.reason for v in found]))
    assert refused == []


def test_every_attribute_command_and_option_of_the_published_proofs_is_allowed():
    for line in data_file("prover_proofs.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        texts = [row["proof"]] + ([] if "miniCTX" in row["source"] else [row["header"]])
        for text in texts:
            tokens = tokenize(text)
            for start, end in attribute_spans(tokens):
                for name in attribute_names(tokens, start, end):
                    assert allowlist.attribute_allowed(name.value), (row["name"], name.value)
            assert no_forbidden_commands(text) == [], row["name"]
