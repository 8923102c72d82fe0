#
# The Sieve verifier: Lean 4 + Mathlib + the Lean REPL + the HTTP service, in one image.
#
#   docker build -f docker/verifier.Dockerfile -t sieve-verifier .
#   docker build -f docker/verifier.Dockerfile --build-arg LEAN_VERSION=v4.9.0 -t sieve-verifier:v4.9.0 .
#   docker build -f docker/verifier.Dockerfile --build-arg LEAN_STAGE=lean-double -t sieve-verifier:smoke .
#     (no Lean: the REPL double in its place; deploy/smoke.sh builds and runs this one)
#
# Versions must line up: the Lean toolchain, Mathlib and the REPL are all taken at the same tag
# (`vX.Y.Z`), because a REPL or Mathlib built by another toolchain cannot load the other's
# `.olean` files. LEAN_VERSION names that tag; MATHLIB_REV and REPL_REV default to it and may
# name another tag, a branch or a full commit hash built for the same toolchain.
#
# The default, v4.19.0, is a release tagged by all three projects, and the first Lean that
# elaborates in parallel (see SIEVE_LEAN_THREADS). The datasets in data/ were written for
# Mathlib of the Lean v4.9 era (DeepSeek-Prover-V1.5; Lean Workbook pinned v4.8.0-rc1); newer
# Mathlib renamed lemmas and deprecated syntax such as `∑ k in s, f k`, so reproduce the paper's
# numbers with `--build-arg LEAN_VERSION=v4.9.0`.
#
# Sizes: toolchain ~2 GB, Mathlib with its build ~6 GB: expect an image of 7-9 GB. The build
# needs about 30 GB of free disk (build stage, layers and the final image) and about 7 GB of RAM
# for the import check (CHECK_MATHLIB_IMPORT=0 skips it). Lean and Mathlib are built in the first
# stage and copied in early layers, so changing the Python code rebuilds only the last layers.
#
# Running it: bubblewrap needs seccomp=unconfined, systempaths=unconfined and, on hosts with
# AppArmor, the profile docker/apparmor/sieve-verifier (docker-compose.yml sets all three). The
# image sets SIEVE_LEAN_SANDBOX=bwrap: without a working sandbox the service refuses to start and
# says why. SIEVE_LEAN_SANDBOX=uid (start the container as root; the entrypoint keeps only the
# capabilities to run Lean as the `lean` user) is for clusters without user namespaces.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Where /opt/elan, /opt/lean, /opt/mathlib4, /opt/repl and /etc/sieve/build.env come from: `lean`
# (the real toolchain, Mathlib and REPL; the default) or `lean-double` (no Lean: the REPL protocol
# double at the same paths, owned and permitted the same way; what deploy/smoke.sh builds where
# Lean cannot be fetched). Everything after the Lean stage is the same for both. Choosing a stage
# by argument needs BuildKit (the default builder of Docker >= 23; DOCKER_BUILDKIT=1 on 20.10),
# which builds only the stages the image uses.
ARG LEAN_STAGE=lean

# ------------------------------------------------------------------------------------------------
# Stage 1: the Lean toolchain, the REPL and Mathlib, under /opt (built as root, read-only later).
# ------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS lean

ARG LEAN_VERSION=v4.19.0
ARG MATHLIB_REV=""
ARG REPL_REV=""
# REPL_REV and MATHLIB_REV must be an existing tag, branch or commit of their repository. The
# REPL has no tags v4.11.0, v4.12.0, v4.13.0 or v4.20.0: for those Lean versions set REPL_REV to
# a commit built for that toolchain. Both are checked before anything is built.
# The REPL's end-of-line flush fix (upstream commit 4fc1e6d): older REPL revisions lack it, and
# without it a reply can stall in the pipe until the next command arrives. `auto` applies it when
# 4fc1e6d is not an ancestor of the REPL revision (v4.9.0-rc1 and v4.10.0-rc1 included);
# `yes`/`no` force the choice.
ARG REPL_EOL_FLUSH_FIX=auto
# Import Mathlib once through the REPL at build time: proves that toolchain, REPL and Mathlib
# fit together before anyone deploys the image. Needs ~7 GB of RAM for a minute; 0 skips it.
ARG CHECK_MATHLIB_IMPORT=1
ARG REPL_URL=https://github.com/leanprover-community/repl.git
ARG MATHLIB_URL=https://github.com/leanprover-community/mathlib4.git
ARG ELAN_INIT_URL=https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh

ENV ELAN_HOME=/opt/elan \
    PATH=/opt/elan/bin:${PATH} \
    DEBIAN_FRONTEND=noninteractive

SHELL ["/bin/bash", "-euo", "pipefail", "-c"]

# build-essential only here: the REPL's `lake build` links with the system toolchain's libc
# objects. The final image does not carry it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git build-essential unzip jq \
 && rm -rf /var/lib/apt/lists/*

# Fail early, before hours of work, when a revision does not exist. A tag or branch is looked up
# with ls-remote; a commit hash is checked when it is fetched (fetch-rev says the same).
RUN check_rev() { \
      local what=$1 url=$2 rev=$3; \
      if [[ "${rev}" =~ ^[0-9a-f]{7,40}$ ]]; then return 0; fi; \
      if ! git ls-remote --exit-code --tags --heads "${url}" "${rev}" > /dev/null; then \
        echo "error: ${what}=${rev} is not a tag or branch of ${url}. ${what} must be an existing tag, branch or commit (the REPL has no tags v4.11.0, v4.12.0, v4.13.0, v4.20.0)." >&2; \
        exit 1; \
      fi; \
    } \
 && check_rev REPL_REV "${REPL_URL}" "${REPL_REV:-${LEAN_VERSION}}" \
 && check_rev MATHLIB_REV "${MATHLIB_URL}" "${MATHLIB_REV:-${LEAN_VERSION}}"

# elan and the pinned toolchain, installed system-wide (ELAN_HOME=/opt/elan), not under /root.
# Permissions are set in the same layer that makes each tree (a later `chmod -R` layer would copy
# all of it again through overlayfs).
RUN curl -sSfL "${ELAN_INIT_URL}" -o /tmp/elan-init.sh \
 && sh /tmp/elan-init.sh -y --no-modify-path --default-toolchain "leanprover/lean4:${LEAN_VERSION}" \
 && rm /tmp/elan-init.sh \
 && lean --version && lake --version \
 && chmod -R a+rX,go-w /opt/elan

# Fetch one revision (tag, branch or full commit hash) of a repository, shallowly.
RUN printf '%s\n' \
      '#!/bin/bash' \
      'set -euo pipefail' \
      'url=$1 rev=$2 dir=$3' \
      'git init -q "$dir"' \
      'git -C "$dir" remote add origin "$url"' \
      'if ! git -C "$dir" fetch -q --depth 1 origin "$rev"; then' \
      '  echo "error: $rev is not a tag, branch or commit of $url" >&2; exit 1' \
      'fi' \
      'git -C "$dir" -c advice.detachedHead=false checkout -q FETCH_HEAD' \
      > /usr/local/bin/fetch-rev \
 && chmod +x /usr/local/bin/fetch-rev \
 && mkdir -p /etc/sieve

# The REPL, built against its own lean-toolchain (the same tag).
RUN repl_rev="${REPL_REV:-${LEAN_VERSION}}" \
 && fetch-rev "${REPL_URL}" "${repl_rev}" /opt/repl \
 && cd /opt/repl \
 && repl_commit="$(git rev-parse --short=12 HEAD)" \
 && repl_desc="${repl_rev}@${repl_commit}" \
 && fix="${REPL_EOL_FLUSH_FIX}" \
 && if [[ "${fix}" == auto ]]; then \
      git fetch -q --unshallow origin \
      && git cat-file -e '4fc1e6d^{commit}' \
      && if git merge-base --is-ancestor 4fc1e6d HEAD; then fix=no; else fix=yes; fi; \
    fi \
 && if [[ "${fix}" == yes ]]; then \
      { git cat-file -e '4fc1e6d^{commit}' 2>/dev/null || git fetch -q --unshallow origin; } \
      && git -c user.name=sieve -c user.email=sieve@localhost cherry-pick 4fc1e6d \
      && repl_desc="${repl_desc}+4fc1e6d"; \
    fi \
 && lake build \
 && test -x .lake/build/bin/repl \
 && rm -rf .git \
 && chmod -R a+rX,go-w /opt/repl \
 && echo "SIEVE_REPL_REV=${repl_desc}" >> /etc/sieve/build.env

# Mathlib: prebuilt .olean files from its cache (never build Mathlib from source in an image:
# hours), then `lake build --no-build` to confirm nothing is missing: a cache miss fails here at
# once instead of starting a build of several hours.
RUN mathlib_rev="${MATHLIB_REV:-${LEAN_VERSION}}" \
 && fetch-rev "${MATHLIB_URL}" "${mathlib_rev}" /opt/mathlib4 \
 && cd /opt/mathlib4 \
 && mathlib_commit="$(git rev-parse --short=12 HEAD)" \
 && lake exe cache get \
 && lake build --no-build \
 && rm -rf /root/.cache/mathlib .git \
 && chmod -R a+rX,go-w /opt/mathlib4 \
 && echo "SIEVE_MATHLIB_REV=${mathlib_rev}@${mathlib_commit}" >> /etc/sieve/build.env \
 && echo "SIEVE_LEAN_TOOLCHAIN=$(tr -d '[:space:]' < lean-toolchain)" >> /etc/sieve/build.env

# Make every Mathlib dependency a local `path` package (as kimina-lean-server does): Lake then
# never runs git or touches the network at run time, so a non-root user and read-only mounts
# can share this one Mathlib. `lake env true` re-reads the manifest now, as root, so nothing is
# left to write at run time.
RUN cd /opt/mathlib4 \
 && jq '(.packagesDir // ".lake/packages") as $dir \
        | .packages |= map({type: "path", scope: (.scope // ""), name, \
                            manifestFile: (.manifestFile // "lake-manifest.json"), \
                            inherited: (.inherited // false), \
                            dir: ("./" + $dir + "/" + .name), \
                            configFile: (.configFile // "lakefile.lean")})' \
      lake-manifest.json > /tmp/lake-manifest.json \
 && mv /tmp/lake-manifest.json lake-manifest.json \
 && find .lake/packages -mindepth 2 -maxdepth 2 -name .git -type d -exec rm -rf {} + \
 && lake env true

# The toolchain's own binaries first on PATH, so running Lean never goes through elan's proxies
# (which may want to write under ELAN_HOME).
RUN mkdir -p /opt/lean/bin \
 && cd /opt/mathlib4 \
 && for tool in lean lake; do ln -s "$(elan which "${tool}")" "/opt/lean/bin/${tool}"; done \
 && /opt/lean/bin/lake --version \
 && chmod a+rX,go-w /opt/lean /opt/lean/bin /etc/sieve /etc/sieve/build.env

# Smoke test, as an unprivileged user for whom all of /opt is read-only (as at run time): the
# REPL answers a command and, by default, imports Mathlib.
RUN cd /opt/mathlib4 \
 && as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups \
      env HOME=/tmp PATH="/opt/lean/bin:${PATH}" "$@"; } \
 && printf '{"cmd": "theorem sieve_smoke : 1 + 1 = 2 := rfl"}\n\n' \
      | as_nobody lake env /opt/repl/.lake/build/bin/repl | tee /tmp/smoke.out \
 && grep -q '"env"' /tmp/smoke.out \
 && if [[ "${CHECK_MATHLIB_IMPORT}" == 1 ]]; then \
      printf '{"cmd": "import Mathlib\\n#check Nat.Prime"}\n\n' \
        | as_nobody lake env /opt/repl/.lake/build/bin/repl | tee /tmp/smoke.out \
      && ! grep -q '"severity": "error"' /tmp/smoke.out \
      && grep -q '"env"' /tmp/smoke.out; \
    fi \
 && rm -f /tmp/smoke.out \
 && cat /etc/sieve/build.env

# ------------------------------------------------------------------------------------------------
# Stage 1, without Lean (--build-arg LEAN_STAGE=lean-double): the REPL double stands in for the
# REPL, behind the same command (`lake env /opt/repl/.lake/build/bin/repl`, run in /opt/mathlib4),
# with `lake` a link from /opt/lean/bin into a toolchain under /opt/elan as in the real stage,
# every tree owned by root and world-readable. It answers the REPL's protocol (no proofs are
# checked); deploy/smoke.sh uses it to run the image for real without Lean.
# ------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS lean-double

SHELL ["/bin/bash", "-euo", "pipefail", "-c"]

COPY verifier_service/testing/repl_double.py /opt/repl/repl_double.py
# The double answers Sieve's trusted Lean programs (parse, statement, target) with the service's
# own lexer, which it loads by path from --lexer: the two modules it needs sit beside it.
COPY verifier_service/soundness/source.py verifier_service/soundness/allowlist.py \
     /opt/repl/soundness/

RUN toolchain=/opt/elan/toolchains/repl-double \
 && mkdir -p "${toolchain}/bin" /opt/lean/bin /opt/repl/.lake/build/bin /opt/mathlib4 /etc/sieve \
 && printf '%s\n' \
      '#!/bin/sh' \
      '# Stands in for Lake: `lake env CMD...` runs CMD (real Lake sets LEAN_PATH first).' \
      'case "${1:-}" in' \
      '  env) shift; exec "$@" ;;' \
      '  --version) echo "Lake version repl-double (no Lean in this image)" ;;' \
      '  *) echo "lake (double): only env and --version" >&2; exit 1 ;;' \
      'esac' > "${toolchain}/bin/lake" \
 && printf '%s\n' '#!/bin/sh' 'echo "Lean (version repl-double, no Lean in this image)"' \
      > "${toolchain}/bin/lean" \
 && printf '%s\n' '#!/bin/sh' \
      'exec python3 -I /opt/repl/repl_double.py --lexer /opt/repl/soundness --no-transcripts "$@"' \
      > /opt/repl/.lake/build/bin/repl \
 && chmod 0755 "${toolchain}/bin/lake" "${toolchain}/bin/lean" /opt/repl/.lake/build/bin/repl \
 && for tool in lean lake; do ln -s "${toolchain}/bin/${tool}" "/opt/lean/bin/${tool}"; done \
 && echo "repl-double" > /opt/mathlib4/lean-toolchain \
 && printf '%s\n' SIEVE_REPL_REV=repl-double SIEVE_MATHLIB_REV=none \
      SIEVE_LEAN_TOOLCHAIN=repl-double > /etc/sieve/build.env \
 && chmod -R a+rX,go-w /opt/elan \
 && chmod -R a+rX,go-w /opt/repl \
 && chmod -R a+rX,go-w /opt/mathlib4 \
 && chmod a+rX,go-w /opt/lean /opt/lean/bin /etc/sieve /etc/sieve/build.env

# The same smoke test as the real stage: an unprivileged user runs the command from /opt/mathlib4.
RUN cd /opt/mathlib4 \
 && printf '{"cmd": "theorem sieve_smoke : 1 + 1 = 2 := rfl"}\n\n' \
      | setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp \
          PATH="/opt/lean/bin:${PATH}" lake env /opt/repl/.lake/build/bin/repl \
      | tee /tmp/smoke.out \
 && grep -q '"env"' /tmp/smoke.out \
 && rm -f /tmp/smoke.out

# The stage chosen by LEAN_STAGE.
FROM ${LEAN_STAGE} AS lean-tree

# ------------------------------------------------------------------------------------------------
# Stage 2: the service. Lean comes first (large, rarely changes), the Python package last.
# ------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS verifier

ENV DEBIAN_FRONTEND=noninteractive
# curl: HEALTHCHECK; git: Lake looks for it; bubblewrap: one sandbox per REPL; tini: PID 1 that
# reaps REPL processes and forwards signals. (No compiler: nothing is built at run time.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git bubblewrap tini \
 && rm -rf /var/lib/apt/lists/*

# Owned by root, world-readable: the service user can run Lean but never change it.
COPY --from=lean-tree /opt/elan /opt/elan
COPY --from=lean-tree /opt/lean /opt/lean
COPY --from=lean-tree /opt/mathlib4 /opt/mathlib4
COPY --from=lean-tree /opt/repl /opt/repl
COPY --from=lean-tree /etc/sieve/build.env /etc/sieve/build.env
COPY docker/entrypoint.sh /usr/local/bin/sieve-entrypoint

# Two users: `sieve` (10000) runs the service; `lean` (10001) is the uid Lean runs as in
# SIEVE_LEAN_SANDBOX=uid mode (and the one bwrap mode switches to if started as root), so a proof
# can read neither the service's files nor its /proc/*/environ.
RUN chmod 0755 /usr/local/bin/sieve-entrypoint \
 && groupadd --system --gid 10000 sieve \
 && useradd --system --uid 10000 --gid 10000 --create-home --home-dir /var/lib/sieve \
      --shell /usr/sbin/nologin sieve \
 && chmod 0700 /var/lib/sieve \
 && groupadd --system --gid 10001 lean \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin lean

ENV ELAN_HOME=/opt/elan \
    PATH=/opt/lean/bin:/opt/elan/bin:${PATH} \
    HOME=/var/lib/sieve \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The service's defaults for this image (each is a VerifierSettings field; override with -e).
# SIEVE_LEAN_TOOLCHAIN, SIEVE_MATHLIB_REV and SIEVE_REPL_REV are computed at build time and
# exported by the entrypoint from /etc/sieve/build.env.
ENV SIEVE_HOST=0.0.0.0 \
    SIEVE_PORT=8000 \
    SIEVE_LEAN_REPL="lake env /opt/repl/.lake/build/bin/repl" \
    SIEVE_LEAN_CWD=/opt/mathlib4 \
    SIEVE_LEAN_READONLY_PATHS=/opt/elan,/opt/lean,/opt/mathlib4,/opt/repl \
    SIEVE_LEAN_SANDBOX=bwrap \
    SIEVE_LEAN_SANDBOX_UID=10001 \
    SIEVE_LEAN_SANDBOX_GID=10001 \
    SIEVE_CHECKERS=lean4,math

# The package index pip installs from (a mirror, or the local index deploy/smoke.sh serves).
ARG PIP_INDEX_URL=https://pypi.org/simple

# The Python package, last: code changes rebuild only this layer.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY verifier_service ./verifier_service
RUN pip install ".[verifier]" \
 && rm -rf /src

# Started as root (user: "0"), the entrypoint drops to `sieve` itself (keeping CAP_SETUID,
# CAP_SETGID and CAP_KILL only when SIEVE_LEAN_SANDBOX=uid).
USER 10000:10000
WORKDIR /var/lib/sieve
EXPOSE 8000

# /health: the process serves HTTP (Lean may still be importing Mathlib; /ready says when done).
# The first probe runs one interval after start (Docker < 25 has no start interval): 10 s, not
# 30 s, so `healthy` follows the service's few seconds of start-up instead of lagging 30 s.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${SIEVE_PORT}/health" || exit 1

ENTRYPOINT ["tini", "--", "sieve-entrypoint"]
CMD ["sieve-verifier", "serve"]
