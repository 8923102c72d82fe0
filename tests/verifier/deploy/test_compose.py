"""``docker-compose.yml`` agrees with ``VerifierSettings`` and with the app it runs."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.docs import doc_text
from verifier_service.settings import VerifierSettings

from .conftest import (
    DOCKERFILE,
    ENTRYPOINT,
    ENV_PREFIX,
    REPO_ROOT,
    SETTINGS_VARIABLES,
    environment_of,
    interpolate,
)

#: Recorded by the image at build time; compose must leave them alone.
BUILD_TIME_VARIABLES = {"SIEVE_LEAN_TOOLCHAIN", "SIEVE_MATHLIB_REV", "SIEVE_REPL_REV"}
#: A password the operator chose (optional: one is generated on Redis's first start).
OPERATOR_ENV = {"REDIS_PASSWORD": "0123abcd-test-password"}
APPARMOR_PROFILE = REPO_ROOT / "docker" / "apparmor" / "sieve-verifier"
REDIS_START = REPO_ROOT / "docker" / "redis-start.sh"


def _verifier(compose: dict[str, Any]) -> dict[str, Any]:
    assert set(compose["services"]) >= {"verifier", "redis"}
    return compose["services"]["verifier"]


def _redis_start(
    compose: dict[str, Any], password_dir: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """The redis service's entrypoint and command as compose runs them, with the image's
    ``docker-entrypoint.sh`` replaced by ``echo`` (prints the redis-server argv) and the password
    file moved under ``password_dir``."""
    redis = compose["services"]["redis"]
    entrypoint = [interpolate(str(part), env) for part in redis["entrypoint"]]
    command = [interpolate(str(part), env) for part in redis["command"]]
    assert entrypoint[:2] == ["/bin/sh", "/usr/local/bin/sieve-redis-start"]
    assert command[0] == "docker-entrypoint.sh"
    redis_env = {k: interpolate(v, env) for k, v in environment_of(redis).items()}
    if os.geteuid() != 0:
        redis_env.pop("REDIS_PASSWORD_OWNER")  # chown needs root
    password_file = password_dir / Path(entrypoint[2]).name
    return subprocess.run(
        ["sh", str(REDIS_START), str(password_file), "echo", *command[1:]],
        env={"PATH": "/usr/bin:/bin", **redis_env},
        capture_output=True,
        text=True,
        check=False,
    )


def _container_environment(
    compose: dict[str, Any], password_dir: Path, env: dict[str, str]
) -> dict[str, str]:
    """The verifier's environment after the image's entrypoint ran (it adds the password)."""
    environment = {k: interpolate(v, env) for k, v in environment_of(_verifier(compose)).items()}
    mount = environment["REDIS_PASSWORD_FILE"]
    environment["REDIS_PASSWORD_FILE"] = str(password_dir / Path(mount).name)
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "env"],
        env={
            "PATH": "/usr/bin:/bin",
            "BUILD_ENV_FILE": "/nonexistent",
            "SERVICE_USER": "nobody",  # as root (CI) the entrypoint switches to this user
            "REDIS_PASSWORD_WAIT_S": "0",
            **environment,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def _settings_from_compose(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Any:
    """VerifierSettings exactly as the container would build them (defaults resolved, the
    Redis password written by the redis service and added by the entrypoint)."""
    for name in list(SETTINGS_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    assert _redis_start(compose, tmp_path, OPERATOR_ENV).returncode == 0
    environment = _container_environment(compose, tmp_path, OPERATOR_ENV)
    for name, value in environment.items():
        if name.startswith(ENV_PREFIX):
            monkeypatch.setenv(name, value)
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
    # container internals (see the ports comment) and the mounted password file
    fixed = {"SIEVE_HOST", "SIEVE_PORT", "REDIS_PASSWORD_FILE"}
    for name, value in environment_of(_verifier(compose)).items():
        if name not in fixed:
            assert value.startswith(f"${{{name}:-"), f"{name} should be ${{{name}:-default}}"


def test_compose_environment_parses_into_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = _settings_from_compose(compose, monkeypatch, tmp_path)
    assert settings.redis_url == "redis://:0123abcd-test-password@redis:6379/0"
    assert settings.lean_prewarm_headers == ["import Mathlib\nimport Aesop"]
    assert settings.checkers == ["lean4", "math"]
    assert settings.api_keys == []
    assert settings.lean_sandbox == "bwrap", "never run proofs unsandboxed by default"
    assert settings.lean_tmp_size_mb == 1024
    assert (settings.lean_sandbox_uid, settings.lean_sandbox_gid) == (10001, 10001)
    assert settings.lean_workers >= 1


def test_published_port_is_the_settings_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, dockerfile: Any, tmp_path: Path
) -> None:
    settings = _settings_from_compose(compose, monkeypatch, tmp_path)
    ports = _verifier(compose)["ports"]
    assert len(ports) == 1
    container_port = int(interpolate(str(ports[0])).rsplit(":", 1)[1].split("/")[0])
    assert container_port == settings.port
    assert str(settings.port) in " ".join(dockerfile.all("EXPOSE"))


def test_verifier_healthcheck_is_health(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = _settings_from_compose(compose, monkeypatch, tmp_path)
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
    test = redis["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and "redis-cli ping" in test[1], test
    # it authenticates from the password file, never with the password on its command line
    entrypoint = [str(part) for part in redis["entrypoint"]]
    assert f'REDISCLI_AUTH="$$(cat {entrypoint[2]})"' in test[1]
    command = [interpolate(str(part), OPERATOR_ENV) for part in redis["command"]]
    assert command[command.index("--appendonly") + 1] == "yes"
    mounts = {mount.split(":")[1]: mount.split(":")[0] for mount in redis["volumes"]}
    assert "/data" in mounts, "AOF lives in /data in the official image"
    assert mounts["/data"] in (compose.get("volumes") or {}), "/data must be a named volume"
    assert redis["restart"] == "unless-stopped"


def _password_volumes(compose: dict[str, Any]) -> tuple[str, str, str]:
    """(volume, the redis mount, the verifier mount) of the password."""
    redis = compose["services"]["redis"]
    file = Path(str(redis["entrypoint"][2]))
    redis_mounts = {m.split(":")[1]: m for m in redis["volumes"]}
    (redis_mount,) = [m for target, m in redis_mounts.items() if target == str(file.parent)]
    volume = redis_mount.split(":")[0]
    (verifier_mount,) = [m for m in _verifier(compose)["volumes"] if m.startswith(volume + ":")]
    return volume, redis_mount, verifier_mount


def test_the_password_volume_is_shared_read_only_with_the_verifier(
    compose: dict[str, Any],
) -> None:
    volume, redis_mount, verifier_mount = _password_volumes(compose)
    assert volume in (compose.get("volumes") or {}), "the password must outlive the containers"
    assert not redis_mount.endswith(":ro"), "redis writes it"
    assert verifier_mount.endswith(":ro"), "the verifier only reads it"
    file = Path(str(compose["services"]["redis"]["entrypoint"][2]))
    assert verifier_mount.split(":")[1] == str(file.parent)
    assert environment_of(_verifier(compose))["REDIS_PASSWORD_FILE"] == str(file)
    # the script compose mounts is this repository's
    scripts = [m for m in compose["services"]["redis"]["volumes"] if m.startswith("./")]
    assert scripts == ["./docker/redis-start.sh:/usr/local/bin/sieve-redis-start:ro"]


def test_compose_needs_no_password_to_start(compose: dict[str, Any]) -> None:
    """``docker compose up`` on a fresh host, no .env: nothing is required."""
    for service in compose["services"].values():
        for value in [*environment_of(service).values(), *map(str, service.get("command", []))]:
            interpolate(value)  # raises on ${VAR:?...}


def test_redis_requires_the_password_the_service_is_given(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    done = _redis_start(compose, tmp_path, OPERATOR_ENV)
    assert done.returncode == 0, done.stderr
    argv = done.stdout.split()
    assert argv[0] == "redis-server"
    assert argv[argv.index("--requirepass") + 1] == OPERATOR_ENV["REDIS_PASSWORD"]
    env = _container_environment(compose, tmp_path, OPERATOR_ENV)
    assert env["SIEVE_REDIS_URL"] == f"redis://:{OPERATOR_ENV['REDIS_PASSWORD']}@redis:6379/0"
    assert "REDIS_PASSWORD_FILE" not in env


def test_a_password_is_generated_on_first_start_and_kept(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    first = _redis_start(compose, tmp_path, {})
    assert first.returncode == 0, first.stderr
    argv = first.stdout.split()
    password = argv[argv.index("--requirepass") + 1]
    assert len(password) == 64 and int(password, 16) >= 0, "32 random bytes, hex"
    file = tmp_path / "password"
    assert file.read_text() == password
    assert stat.S_IMODE(file.stat().st_mode) == 0o400
    if os.geteuid() == 0:
        owner = environment_of(compose["services"]["redis"])["REDIS_PASSWORD_OWNER"]
        assert f"{file.stat().st_uid}:{file.stat().st_gid}" == owner == "10000:10000"
    # a restart keeps it; the verifier gets the same one
    again = _redis_start(compose, tmp_path, {})
    assert again.stdout == first.stdout
    env = _container_environment(compose, tmp_path, {})
    assert env["SIEVE_REDIS_URL"] == f"redis://:{password}@redis:6379/0"
    # setting REDIS_PASSWORD later replaces it, for both
    chosen = _redis_start(compose, tmp_path, OPERATOR_ENV)
    assert chosen.stdout.split()[-1] == OPERATOR_ENV["REDIS_PASSWORD"]
    assert file.read_text() == OPERATOR_ENV["REDIS_PASSWORD"]


def test_a_password_that_breaks_the_url_is_refused(compose: dict[str, Any], tmp_path: Path) -> None:
    done = _redis_start(compose, tmp_path, {"REDIS_PASSWORD": "a@b/c"})
    assert done.returncode == 2
    assert "URL-safe" in done.stderr
    assert not (tmp_path / "password").exists()


def test_without_a_password_file_the_verifier_serves_uncached(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    env = _container_environment(compose, tmp_path, {})  # Redis never wrote it
    assert "SIEVE_REDIS_URL" not in env


def test_a_url_with_its_own_password_is_left_alone(compose: dict[str, Any], tmp_path: Path) -> None:
    assert _redis_start(compose, tmp_path, {}).returncode == 0
    url = "redis://:mine@cache.internal:6379/1"
    env = _container_environment(compose, tmp_path, {"SIEVE_REDIS_URL": url})
    assert env["SIEVE_REDIS_URL"] == url


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
    # the front page's first step on AppArmor hosts, and the Docker page that explains it
    for text in ((REPO_ROOT / "README.md").read_text(), doc_text("start"), doc_text("docker")):
        assert "docker/apparmor/sieve-verifier" in text
        assert "apparmor_parser -r -W docker/apparmor/sieve-verifier" in text


def test_apparmor_profile_parses() -> None:
    import shutil
    import subprocess

    parser = shutil.which("apparmor_parser")
    if parser is None:
        pytest.skip("apparmor_parser is not installed (Debian/Ubuntu package `apparmor`)")
    text = APPARMOR_PROFILE.read_text()
    version = subprocess.run([parser, "--version"], capture_output=True, text=True).stdout
    if " 3." in version.splitlines()[0]:  # AppArmor 3 has no userns rule: the manual's sed
        text = "\n".join(line for line in text.splitlines() if line.strip() != "userns,")
    done = subprocess.run(
        [parser, "--skip-kernel-load", "--skip-cache"], input=text, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_uid_mode_is_documented_next_to_the_switch(compose: dict[str, Any]) -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    assert 'user: "0"' in text and "SIEVE_LEAN_SANDBOX=uid" in text
