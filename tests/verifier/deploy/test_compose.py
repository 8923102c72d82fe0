"""``docker-compose.yml`` agrees with ``VerifierSettings`` and with the app it runs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from verifier_service.settings import VerifierSettings

from .conftest import DOCKERFILE, REPO_ROOT, SETTINGS_VARIABLES, environment_of, interpolate

#: Recorded by the image at build time; compose must leave them alone.
BUILD_TIME_VARIABLES = {"SIEVE_LEAN_TOOLCHAIN", "SIEVE_MATHLIB_REV", "SIEVE_REPL_REV"}


def _verifier(compose: dict[str, Any]) -> dict[str, Any]:
    assert set(compose["services"]) >= {"verifier", "redis"}
    return compose["services"]["verifier"]


def _settings_from_compose(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """VerifierSettings exactly as the container would build them (defaults resolved)."""
    for name in list(SETTINGS_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment_of(_verifier(compose)).items():
        monkeypatch.setenv(name, interpolate(value))
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
    fixed = {"SIEVE_HOST", "SIEVE_PORT"}  # container internals, see the ports comment
    for name, value in environment_of(_verifier(compose)).items():
        if name not in fixed:
            assert value.startswith(f"${{{name}:-"), f"{name} should be ${{{name}:-default}}"


def test_compose_environment_parses_into_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings_from_compose(compose, monkeypatch)
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.lean_prewarm_headers == ["import Mathlib\nimport Aesop"]
    assert settings.checkers == ["lean4", "math"]
    assert settings.api_keys == []
    assert settings.lean_sandbox == "auto"
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

    if not hasattr(app_module, "create_app"):
        pytest.skip("verifier_service.app has no create_app(settings) in this checkout")
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
    command = [interpolate(str(part)) for part in redis["command"]]
    assert command[command.index("--appendonly") + 1] == "yes"
    mounts = {mount.split(":")[1]: mount.split(":")[0] for mount in redis["volumes"]}
    assert "/data" in mounts, "AOF lives in /data in the official image"
    assert mounts["/data"] in (compose.get("volumes") or {}), "/data must be a named volume"
    assert redis["restart"] == "unless-stopped"
