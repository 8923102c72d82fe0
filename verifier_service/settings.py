"""The verifier's one settings object, read from ``SIEVE_*`` environment variables.

Every field here is a documented env var (``SIEVE_`` + the field name in capitals); the CLI's
flags override them. ``docker-compose.yml`` may only set variables that exist here (a test checks).
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from verifier_service.lean.sandbox import (
    DEFAULT_MAX_FILE_MB,
    DEFAULT_MAX_PROCESSES,
    DEFAULT_TMP_SIZE_MB,
)


def _default_workers() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


def _split_list(value: object) -> object:
    """Accept ``a,b,c`` (env vars) as well as a JSON list or a Python list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class VerifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIEVE_", extra="ignore")

    # --- HTTP ---------------------------------------------------------------------------------
    host: str = "0.0.0.0"
    port: int = 8000
    #: Accepted bearer tokens; empty means no authentication.
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Most proofs in one request (413 above).
    max_batch_size: int = 1024
    #: Most bytes of code (header + code) in one proof (413 above).
    max_code_bytes: int = 200_000
    #: Most bytes in one request body (413 above), checked before the body is read; 0: no limit.
    max_body_bytes: int = 64 << 20
    #: Most proofs waiting or running at once across all requests (429 above).
    max_pending: int = 10_000
    #: Most proofs one client may have pending at once (429 above), so one client cannot fill the
    #: queue for all. A client is one API key; without ``api_keys``, one client address (so all
    #: clients behind one proxy share a quota). Unset: a quarter of ``max_pending``, but at least
    #: ``max_batch_size``; 0: no per-client quota.
    max_pending_per_key: int | None = Field(None, ge=0)
    #: Seconds a client is told to wait in ``Retry-After`` when the queue is full.
    retry_after_s: int = 5
    log_level: str = "info"
    #: Checkers to load. Empty (the default) means: ``math``, plus ``lean4`` when ``lean_repl`` is
    #: set. A checker named here explicitly must become ready before ``/ready`` says so.
    checkers: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- cache --------------------------------------------------------------------------------
    #: ``redis://host:port/db``; unset means an in-process LRU cache.
    redis_url: str | None = None
    #: Entries of the in-process LRU cache.
    cache_size: int = 100_000
    #: Seconds a cached verdict lives (0: forever).
    cache_ttl_s: int = 0
    #: Namespace for cache keys, so several deployments can share one Redis.
    cache_namespace: str = "sieve"

    # --- Lean ---------------------------------------------------------------------------------
    #: Command line that starts one REPL process, e.g. ``lake env /opt/repl/.lake/build/bin/repl``.
    lean_repl: str | None = None
    #: Working directory of REPL processes (the Mathlib project, so ``import Mathlib`` resolves).
    lean_cwd: str | None = None
    #: REPL processes in the pool.
    lean_workers: int = Field(default_factory=_default_workers)
    #: Headers imported at start-up, before the first request (``|``-separated in the env var).
    lean_prewarm_headers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["import Mathlib\nimport Aesop"]
    )
    #: Seconds a header import may take (not charged to any proof).
    lean_header_timeout_s: float = 600.0
    #: Per-proof budget when a request gives none, and the most a request may ask for.
    lean_default_timeout_s: float = 60.0
    lean_max_timeout_s: float = 600.0
    #: Seconds a proof may wait for a free worker before it is answered ``error``.
    lean_acquire_timeout_s: float = 600.0
    #: Recycle a worker after this many proofs ...
    lean_max_proofs_per_worker: int = 500
    #: ... or when its resident memory exceeds this many MiB.
    lean_max_rss_mb: int = 12_000
    #: Address-space cap per REPL process in MiB (RLIMIT_AS); 0 disables it.
    lean_address_space_mb: int = 0
    #: Share of the pool (0-1) that headers outside ``lean_prewarm_headers`` may hold together
    #: (at least one worker), so a client sending new headers cannot evict the prewarmed ones.
    lean_other_headers_share: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Environments each worker keeps derived from its imports for the rest of a header
    #: (``open``, ``set_option``, ...), least recently used evicted.
    lean_derived_envs: int = Field(default=32, ge=1)
    #: Import sets learned from traffic (sustained demand) that are kept warm and protected from
    #: churn like the prewarm headers' imports, on top of them; 0 learns none.
    lean_hot_import_sets: int = Field(default=2, ge=0)
    #: Threads one Lean process may use (``LEAN_NUM_THREADS``); Lean >= 4.19 elaborates in parallel.
    lean_threads: int = 1
    #: How each REPL is confined (see ``verifier_service/lean/sandbox.py``). ``bwrap``:
    #: bubblewrap (user/PID/network namespaces, read-only mounts, private /tmp); ``uid``: a
    #: separate unprivileged uid, no namespaces, network not isolated (defence in depth where
    #: namespaces are unavailable); ``none``: unconfined. ``bwrap``/``uid`` refuse to start when
    #: they cannot work; ``auto`` is ``bwrap`` when it works, else unconfined with a loud warning.
    lean_sandbox: Literal["auto", "bwrap", "uid", "none"] = "auto"
    #: Paths the sandbox mounts read-only (toolchain, Mathlib, REPL); ``lean_cwd`` and the REPL
    #: command's own installation are always added.
    lean_readonly_paths: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Size of the sandbox's private /tmp, MiB (bwrap mode).
    lean_tmp_size_mb: int = Field(default=DEFAULT_TMP_SIZE_MB, ge=1)
    #: The uid/gid Lean runs as in ``uid`` mode, and the one bwrap mode switches to first when the
    #: service runs as root. Unset: 65534 (nobody); the image sets its ``lean`` user (10001).
    lean_sandbox_uid: int | None = Field(default=None, ge=1)
    lean_sandbox_gid: int | None = Field(default=None, ge=1)
    #: Processes/threads Lean's uid may have (RLIMIT_NPROC; holds as root too, since Lean never
    #: runs as root in bwrap or uid mode); 0 leaves it alone.
    lean_max_processes: int = Field(default=DEFAULT_MAX_PROCESSES, ge=0)
    #: Largest file a proof may write, MiB (RLIMIT_FSIZE); 0 leaves it alone.
    lean_max_file_mb: int = Field(default=DEFAULT_MAX_FILE_MB, ge=0)
    #: Names of extra environment variables passed to Lean. Lean starts from an empty
    #: environment plus PATH, LANG/LC_*, TZ, ELAN_*/LEAN_*/LAKE_HOME paths and HOME=/tmp.
    lean_pass_env: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Recorded in ``checker_versions`` and cache keys; the Docker image sets them at build time.
    lean_toolchain: str = "unknown"
    mathlib_rev: str = "unknown"
    repl_rev: str = "unknown"

    @property
    def pending_quota(self) -> int:
        """``max_pending_per_key`` with its default resolved (0: no per-client quota)."""
        if self.max_pending_per_key is not None:
            return self.max_pending_per_key
        return max(self.max_pending // 4, self.max_batch_size)

    @field_validator("api_keys", "checkers", "lean_readonly_paths", "lean_pass_env", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("max_pending_per_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("lean_prewarm_headers", mode="before")
    @classmethod
    def _bar_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.replace("\\n", "\n") for part in text.split("|") if part.strip()]
        return value
