"""``docker-compose.yml`` agrees with ``VerifierSettings`` and with the app it runs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from verifier_service.settings import VerifierSettings

from .conftest import DOCKERFILE, REPO_ROOT, SETTINGS_VARIABLES, environment_of, interpolate

#: Recorded by the image at build time; compose must leave them alone.
BUILD_TIME_VARIABLES = {"SIEVE_LEAN_TOOLCHAIN", "SIEVE_MATHLIB_REV", "SIEVE_REPL_REV"}
#: The one variable an operator must set (compose refuses to start without it).
OPERATOR_ENV = {"REDIS_PASSWORD": "0123abcd-test-password"}
APPARMOR_PROFILE = REPO_ROOT / "docker" / "apparmor" / "sieve-verifier"


def _verifier(compose: dict[str, Any]) -> dict[str, Any]:
    assert set(compose["services"]) >= {"verifier", "redis"}
    return compose["services"]["verifier"]


def _settings_from_compose(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """VerifierSettings exactly as the container would build them (defaults resolved)."""
    for name in list(SETTINGS_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment_of(_verifier(compose)).items():
        monkeypatch.setenv(name, interpolate(value, OPERATOR_ENV))
    return VerifierSettings()


def test_every_sieve_variable_is_a_setting(compose: dict[str, Any]) -> None:
    env = environment_of(_verifier(compose))
    sieve = {name for name in env if name.startswith("SIEVE_")}
    assert sieve, "the verifier sets no SIEVE_* variables"
    unknown = sieve - set(SETTINGS_VARIABLES)
    assert not unknown, f"not VerifierSettings fields: {sorted(unknown)}"
    assert not sieve & BUILD_TIME_VARIABLES, "these are recorded by the image at build time"


def test_every_setting_is_configurable(compose: dict[str, Any], dockerfile: Any) -> None:
    """Each field is set by compose, by the image's ENV, or recorded at build time."""
    covered = (
        set(environment_of(_verifier(compose)))
        | set(dockerfile.env(stage=dockerfile.final_stage))
        | BUILD_TIME_VARIABLES
    )
    missing = set(SETTINGS_VARIABLES) - covered
    assert not missing, f"settings neither compose nor the image sets: {sorted(missing)}"


def test_defaults_use_substitution(compose: dict[str, Any]) -> None:
    # container internals (see the ports comment), and the Redis URL built from the password
    fixed = {"SIEVE_HOST", "SIEVE_PORT", "SIEVE_REDIS_URL"}
    for name, value in environment_of(_verifier(compose)).items():
        if name not in fixed:
            assert value.startswith(f"${{{name}:-"), f"{name} should be ${{{name}:-default}}"


def test_compose_environment_parses_into_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings_from_compose(compose, monkeypatch)
    assert settings.redis_url == "redis://:0123abcd-test-password@redis:6379/0"
    assert settings.lean_prewarm_headers == ["import Mathlib\nimport Aesop"]
    assert settings.checkers == ["lean4", "math"]
    assert settings.api_keys == []
    assert settings.lean_sandbox == "bwrap", "never run proofs unsandboxed by default"
    assert settings.lean_tmp_size_mb == 1024
    assert (settings.lean_sandbox_uid, settings.lean_sandbox_gid) == (10001, 10001)
    assert settings.lean_workers >= 1


def test_published_port_is_the_settings_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, dockerfile: Any
) -> None:
    settings = _settings_from_compose(compose, monkeypatch)
    ports = _verifier(compose)["ports"]
    assert len(ports) == 1
    container_port = int(interpolate(str(ports[0])).rsplit(":", 1)[1].split("/")[0])
    assert container_port == settings.port
    assert str(settings.port) in " ".join(dockerfile.all("EXPOSE"))


def test_verifier_healthcheck_is_health(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings_from_compose(compose, monkeypatch)
    check = _verifier(compose)["healthcheck"]
    probe = " ".join(check["test"]) if isinstance(check["test"], list) else check["test"]
    assert f"127.0.0.1:{settings.port}/health" in probe


async def test_the_app_serves_health() -> None:
    import verifier_service.app as app_module
    from verifier_service.cache import MemoryCache

    app = app_module.create_app(VerifierSettings(), checkers={}, cache=MemoryCache(1))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://verifier") as client:
        response = await client.get("/health")
    assert response.status_code == 200


def test_verifier_service_policy(compose: dict[str, Any]) -> None:
    verifier = _verifier(compose)
    assert verifier["restart"] == "unless-stopped"
    assert verifier["depends_on"]["redis"]["condition"] == "service_healthy"
    assert interpolate(str(verifier["mem_limit"])).endswith("g")
    build = verifier["build"]
    assert (REPO_ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert "LEAN_VERSION" in build["args"]


def test_redis_is_healthchecked_and_persistent(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:")
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    command = [interpolate(str(part), OPERATOR_ENV) for part in redis["command"]]
    assert command[command.index("--appendonly") + 1] == "yes"
    mounts = {mount.split(":")[1]: mount.split(":")[0] for mount in redis["volumes"]}
    assert "/data" in mounts, "AOF lives in /data in the official image"
    assert mounts["/data"] in (compose.get("volumes") or {}), "/data must be a named volume"
    assert redis["restart"] == "unless-stopped"


def test_redis_requires_the_password_the_service_is_given(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = [interpolate(str(part), OPERATOR_ENV) for part in redis["command"]]
    password = command[command.index("--requirepass") + 1]
    assert password == OPERATOR_ENV["REDIS_PASSWORD"]
    url = interpolate(environment_of(_verifier(compose))["SIEVE_REDIS_URL"], OPERATOR_ENV)
    assert url == f"redis://:{password}@redis:6379/0"
    # the healthcheck authenticates without putting the password on its command line
    assert interpolate(environment_of(redis)["REDISCLI_AUTH"], OPERATOR_ENV) == password
    # and nothing starts without one
    with pytest.raises(AssertionError, match="REDIS_PASSWORD"):
        interpolate(environment_of(_verifier(compose))["SIEVE_REDIS_URL"])
    with pytest.raises(AssertionError, match="REDIS_PASSWORD"):
        [interpolate(str(part)) for part in redis["command"]]


def test_security_options_carry_what_bubblewrap_needs(compose: dict[str, Any]) -> None:
    options = [interpolate(str(o)) for o in _verifier(compose)["security_opt"]]
    assert "seccomp=unconfined" in options
    assert "systempaths=unconfined" in options
    assert "apparmor=sieve-verifier" in options
    assert "apparmor=unconfined" not in options
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    assert "apparmor_parser -r -W docker/apparmor/sieve-verifier" in text


def test_apparmor_profile_is_shipped_and_allows_what_bwrap_does() -> None:
    text = APPARMOR_PROFILE.read_text()
    rules = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    assert "profile sieve-verifier flags=(attach_disconnected,mediate_deleted) {" in rules
    for rule in ("mount,", "umount,", "pivot_root,", "userns,"):
        assert rule in rules, rule
    assert "deny mount," not in rules
    assert "deny /sys/kernel/security/** rwklx," in rules, "docker-default's denials stay"
    header = text.split("profile sieve-verifier")[0]
    assert "apparmor_parser -r -W docker/apparmor/sieve-verifier" in header
    readme = (REPO_ROOT / "README.md").read_text()
    assert "docker/apparmor/sieve-verifier" in readme
    assert "apparmor_parser -r -W docker/apparmor/sieve-verifier" in readme


def test_apparmor_profile_parses() -> None:
    import shutil
    import subprocess

    parser = shutil.which("apparmor_parser")
    if parser is None:
        pytest.skip("apparmor_parser is not installed (Debian/Ubuntu package `apparmor`)")
    text = APPARMOR_PROFILE.read_text()
    version = subprocess.run([parser, "--version"], capture_output=True, text=True).stdout
    if " 3." in version.splitlines()[0]:  # AppArmor 3 has no userns rule: the README's sed
        text = "\n".join(line for line in text.splitlines() if line.strip() != "userns,")
    done = subprocess.run(
        [parser, "--skip-kernel-load", "--skip-cache"], input=text, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_uid_mode_is_documented_next_to_the_switch(compose: dict[str, Any]) -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    assert 'user: "0"' in text and "SIEVE_LEAN_SANDBOX=uid" in text
