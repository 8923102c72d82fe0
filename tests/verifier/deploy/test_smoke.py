"""``deploy/smoke.sh`` and the compose reader it starts containers with, checked without Docker.

The smoke test itself needs a Docker engine (CI runs it from ``.ci/run``); these keep its
pieces honest where none is."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from typing import Any

import pytest

from .conftest import REPO_ROOT

SMOKE = REPO_ROOT / "deploy" / "smoke.sh"
_SPEC = importlib.util.spec_from_file_location(
    "compose_args", REPO_ROOT / "deploy" / "compose_args.py"
)
assert _SPEC is not None and _SPEC.loader is not None
compose_args = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(compose_args)


def test_smoke_script_is_valid_bash() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    done = subprocess.run([bash, "-n", str(SMOKE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert SMOKE.stat().st_mode & 0o111, "deploy/smoke.sh must be executable"


def test_compose_args_carry_the_verifiers_options(compose: dict[str, Any]) -> None:
    options = compose_args.options(compose, "verifier", {})
    assert "--security-opt=seccomp=unconfined" in options
    assert "--security-opt=systempaths=unconfined" in options
    assert "--security-opt=apparmor=sieve-verifier" in options
    assert "--env=SIEVE_LEAN_SANDBOX=bwrap" in options
    assert "--env=SIEVE_REDIS_URL=redis://redis:6379/0" in options
    assert "VOLUME:redis-password:/run/sieve-redis:ro" in options
    assert "--memory=32g" in options
    (health,) = [o for o in options if o.startswith("--health-cmd=")]
    assert "http://127.0.0.1:8000/health" in health
    assert not any(o.startswith("--user=") for o in options), "compose leaves the image's user"


def test_compose_args_resolve_like_compose(compose: dict[str, Any]) -> None:
    options = compose_args.options(
        compose, "verifier", {"SIEVE_LEAN_SANDBOX": "uid", "SIEVE_LEAN_WORKERS": ""}
    )
    assert "--env=SIEVE_LEAN_SANDBOX=uid" in options
    assert "--env=SIEVE_LEAN_WORKERS=4" in options, "${VAR:-default} takes the default when empty"
    redis = compose_args.options(compose, "redis", {})
    (health,) = [o for o in redis if o.startswith("--health-cmd=")]
    assert '"$(cat /run/sieve-redis/password)"' in health, "$$ is a literal $"
    assert "BIND:./docker/redis-start.sh:/usr/local/bin/sieve-redis-start:ro" in redis
    assert any(o.startswith("SIEVE_ENTRYPOINT:") for o in redis)
    with pytest.raises(SystemExit, match="REQUIRED"):
        compose_args.interpolate("${REQUIRED:?set it}", {})


def test_defaults_run_drops_exactly_the_two_options() -> None:
    """The refusal check must differ from compose only by the two options bwrap needs."""
    text = SMOKE.read_text()
    assert "--security-opt=seccomp=* | --security-opt=systempaths=*) ;;" in text
    assert "seccomp=unconfined" in text and "systempaths=unconfined" in text
