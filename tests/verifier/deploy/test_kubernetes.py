"""``deploy/kubernetes/`` validates offline and agrees with ``VerifierSettings`` and the app.

Schema validation is ``kubernetes-validate --strict`` against a pinned Kubernetes version, whose
schemas ship inside the package (no network). The other tests read the manifests as Kubernetes
would (``$(VAR)`` expansion in env values, secrets resolved from ``secrets.yaml``) and check the
result against the settings object, the app's routes and its ``/metrics``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from verifier_service.settings import VerifierSettings

from .conftest import REPO_ROOT, SETTINGS_VARIABLES

KUBERNETES = REPO_ROOT / "deploy" / "kubernetes"
#: The schema version the manifests are written for (hostUsers, appArmorProfile, procMount).
KUBERNETES_VERSION = "1.33.0"
APPARMOR_PROFILE = REPO_ROOT / "docker" / "apparmor" / "sieve-verifier"
IMAGE_UID = 10000  # the image's user `sieve`


def _manifest_files() -> list[Path]:
    return sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in _manifest_files()
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    containers = {c["name"]: c for c in workload["spec"]["template"]["spec"]["containers"]}
    return containers[name]


def _secret(name: str, key: str) -> str:
    return _one("Secret", name)["stringData"][key]


def _resolve_env(container: dict[str, Any]) -> dict[str, str]:
    """The environment Kubernetes gives the container: secrets read, ``$(VAR)`` expanded from
    variables defined earlier in the list (later or unknown ones stay as written)."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            value = re.sub(
                r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), str(item["value"])
            )
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            value = _secret(ref["name"], ref["key"])
        env[item["name"]] = value
    return env


def _verifier() -> dict[str, Any]:
    return _container(_one("Deployment", "sieve-verifier"), "verifier")


def _settings(monkeypatch: pytest.MonkeyPatch) -> VerifierSettings:
    """VerifierSettings exactly as the pod would build them (image defaults aside)."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in _resolve_env(_verifier()).items():
        monkeypatch.setenv(name, value)
    return VerifierSettings()


def _port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p.get("name") == port)


def _quantity_gib(text: str) -> float:
    units = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 2**10, "G": 1e9 / 2**30, "M": 1e6 / 2**30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text) / 2**30


# --- schema ------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == [p.name for p in _manifest_files()]
    assert (
        kustomization["namespace"]
        == _one("Namespace", kustomization["namespace"])["metadata"]["name"]
    )
    images = {image["name"] for image in kustomization["images"]}
    assert _verifier()["image"] in images


@pytest.mark.parametrize(
    ("name", "doc"),
    _documents(),
    ids=[f"{name}:{doc['kind']}/{doc['metadata']['name']}" for name, doc in _documents()],
)
def test_manifest_validates_strictly(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(part) for part in exc.path)
        pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']}: {path}: {exc.message}")


def test_the_command_line_validator_passes_every_file() -> None:
    """What the manual tells an operator to run; offline, with the package's bundled schemas."""
    binary = shutil.which("kubernetes-validate")
    if binary is None:
        pytest.skip("kubernetes-validate is not on PATH (pip install -e '.[dev]')")
    files = [str(p) for p in _manifest_files()]
    run = subprocess.run(
        [binary, "--strict", "--quiet", "-k", KUBERNETES_VERSION, *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


# --- the verifier against the settings object and the app -------------------------------------


def test_every_sieve_variable_is_a_setting() -> None:
    env = _resolve_env(_verifier())
    sieve = {name for name in env if name.startswith("SIEVE_")}
    unknown = sieve - set(SETTINGS_VARIABLES)
    assert not unknown, f"not VerifierSettings fields: {sorted(unknown)}"
    assert "SIEVE_LEAN_TOOLCHAIN" not in sieve, "recorded by the image at build time"


def test_environment_parses_into_the_intended_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    assert settings.lean_sandbox == "bwrap"
    assert settings.checkers == ["lean4", "math"]
    assert settings.api_keys == [_secret("sieve-api-keys", "keys")]
    assert settings.lean_prewarm_headers == ["import Mathlib\nimport Aesop"]

    url = urlsplit(settings.redis_url or "")
    assert url.password == _secret("sieve-redis", "password"), "password from the Secret"
    redis_service = _one("Service", "sieve-redis")
    assert url.hostname == redis_service["metadata"]["name"]
    assert url.port == redis_service["spec"]["ports"][0]["port"]


def test_resources_are_sized_per_lean_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    resources = _verifier()["resources"]
    memory = _quantity_gib(resources["limits"]["memory"])
    assert memory >= 8 * settings.lean_workers, "about 8 GB per Lean worker"
    assert _quantity_gib(resources["requests"]["memory"]) == memory
    cpus = float(resources["requests"]["cpu"])
    assert cpus >= settings.lean_workers * settings.lean_threads


def test_ports_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    container = _verifier()
    assert [p["containerPort"] for p in container["ports"]] == [settings.port]
    service = _one("Service", "sieve-verifier")
    (port,) = service["spec"]["ports"]
    assert _port(container, port["targetPort"]) == settings.port
    policy = _one("NetworkPolicy", "sieve-verifier")
    for rule in policy["spec"]["ingress"]:
        assert [_port(container, p["port"]) for p in rule["ports"]] == [settings.port]


async def _get(path: str) -> httpx.Response:
    """``GET path`` from the app itself, in process."""
    from verifier_service.app import create_app
    from verifier_service.cache import MemoryCache

    app = create_app(VerifierSettings(), checkers={}, cache=MemoryCache(1))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://verifier") as client:
        return await client.get(path)


async def test_probes_use_the_apps_health_and_ready_routes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch)
    container = _verifier()
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert _port(container, get["port"]) == settings.port
        paths[probe] = get["path"]
    assert paths == {
        "startupProbe": "/health",
        "readinessProbe": "/ready",
        "livenessProbe": "/health",
    }
    assert (await _get("/health")).status_code == 200
    ready = await _get("/ready")
    assert ready.status_code in (200, 503) and "ready" in ready.json()


def test_what_bubblewrap_needs_is_set() -> None:
    pod = _one("Deployment", "sieve-verifier")["spec"]["template"]["spec"]
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == IMAGE_UID
    assert context["seccompProfile"] == {"type": "Unconfined"}
    assert context["appArmorProfile"] == {"type": "Localhost", "localhostProfile": "sieve-verifier"}
    assert pod["hostUsers"] is False, "procMount: Unmasked requires a user-namespaced pod"
    assert pod["automountServiceAccountToken"] is False
    container = _verifier()["securityContext"]
    assert container["procMount"] == "Unmasked"
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    text = (KUBERNETES / "verifier.yaml").read_text()
    lines = text.splitlines()
    for setting in ("seccompProfile", "appArmorProfile", "procMount", "hostUsers"):
        (at,) = [i for i, line in enumerate(lines) if line.strip().startswith(f"{setting}:")]
        above = lines[at - 1].strip()
        assert above.startswith("#"), f"{setting} is not explained by a comment above it"


def test_the_apparmor_profile_is_the_one_shipped() -> None:
    assert APPARMOR_PROFILE.exists(), f"{APPARMOR_PROFILE.relative_to(REPO_ROOT)} is missing"
    assert re.search(r"^\s*profile\s+sieve-verifier\b", APPARMOR_PROFILE.read_text(), re.M)


def test_the_image_user_is_uid_10000(dockerfile: Any) -> None:
    """runAsUser must be the uid the image gives `sieve`, or the service cannot read its home."""
    commands = [
        command.strip()
        for run in dockerfile.all("RUN", stage=dockerfile.final_stage)
        for command in re.split(r"&&|;", run)
        if re.match(r"\s*useradd\b", command)
    ]
    sieve = [c for c in commands if c.split()[-1] == "sieve"]
    assert sieve, "the image creates no user `sieve`"
    uids = [m.group(1) for c in sieve for m in [re.search(r"(?:--uid|-u)[ =](\d+)", c)] if m]
    assert uids == [str(IMAGE_UID)], "the Dockerfile must pin the uid of `sieve`"


# --- the other objects -------------------------------------------------------------------------


def _pod_labels(name: str, kind: str = "Deployment") -> dict[str, str]:
    return _one(kind, name)["spec"]["template"]["metadata"]["labels"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_selectors_match_the_pods() -> None:
    verifier = _pod_labels("sieve-verifier")
    redis = _pod_labels("sieve-redis", "StatefulSet")
    assert _selects(_one("Service", "sieve-verifier")["spec"]["selector"], verifier)
    assert _selects(_one("Service", "sieve-redis")["spec"]["selector"], redis)
    pdb = _one("PodDisruptionBudget", "sieve-verifier")["spec"]
    assert _selects(pdb["selector"]["matchLabels"], verifier)
    assert pdb["maxUnavailable"] == 1
    target = _one("HorizontalPodAutoscaler", "sieve-verifier")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "sieve-verifier")


def test_network_policies_fence_verifier_and_redis() -> None:
    verifier = _pod_labels("sieve-verifier")
    redis = _pod_labels("sieve-redis", "StatefulSet")
    policy = _one("NetworkPolicy", "sieve-verifier")["spec"]
    assert _selects(policy["podSelector"]["matchLabels"], verifier)
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    sources = [peer["podSelector"]["matchLabels"] for peer in policy["ingress"][0]["from"]]
    assert {"sieve/role": "trainer"} in sources
    assert all(set(s) <= {"sieve/role", "app.kubernetes.io/name"} for s in sources)
    redis_rule, dns_rule = policy["egress"]
    assert _selects(redis_rule["to"][0]["podSelector"]["matchLabels"], redis)
    assert [p["port"] for p in redis_rule["ports"]] == [6379]
    assert {p["port"] for p in dns_rule["ports"]} == {53}
    assert len(policy["egress"]) == 2, "the verifier reaches only Redis and DNS"

    fence = _one("NetworkPolicy", "sieve-redis")["spec"]
    assert _selects(fence["podSelector"]["matchLabels"], redis)
    assert sorted(fence["policyTypes"]) == ["Egress", "Ingress"] and "egress" not in fence
    (rule,) = fence["ingress"]
    (peer,) = rule["from"]
    assert _selects(peer["podSelector"]["matchLabels"], verifier)


def test_redis_is_persistent_and_password_protected() -> None:
    redis = _one("StatefulSet", "sieve-redis")
    container = _container(redis, "redis")
    script = " ".join(container["args"])
    assert "--appendonly yes" in script
    assert "requirepass ${REDIS_PASSWORD}" in script
    assert "--requirepass" not in script, "a password on the command line shows in ps"
    env = _resolve_env(container)
    assert env["REDIS_PASSWORD"] == _secret("sieve-redis", "password")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claims = {t["metadata"]["name"] for t in redis["spec"]["volumeClaimTemplates"]}
    assert mounts["/data"] in claims, "the AOF lives on a PersistentVolumeClaim"
    assert "--dir /data" in script
    port = _one("Service", "sieve-redis")["spec"]["ports"][0]
    assert _port(container, port["targetPort"]) == port["port"] == 6379


async def test_the_hpa_scales_on_a_metric_the_app_exports() -> None:
    (metric,) = _one("HorizontalPodAutoscaler", "sieve-verifier")["spec"]["metrics"]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    text = (await _get("/metrics")).text
    assert re.search(rf"^# TYPE {name} gauge$", text, re.M), f"/metrics has no gauge {name}"
