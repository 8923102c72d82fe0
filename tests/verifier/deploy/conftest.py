"""Readers for the deployment files: the compose file (with ``${VAR:-default}`` resolved as
Compose does with an empty environment) and the Dockerfile (continuations joined, by stage)."""

from __future__ import annotations

import runpy
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from verifier_service.settings import VerifierSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "docker" / "verifier.Dockerfile"
ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

ENV_PREFIX = VerifierSettings.model_config["env_prefix"]
SETTINGS_VARIABLES = {ENV_PREFIX + name.upper(): name for name in VerifierSettings.model_fields}

#: ``deploy/compose_args.py``, the reader deploy/smoke.sh starts containers with: a script, not a
#: module of the package, so it is loaded by path. Its variable substitution is Compose's.
_COMPOSE_ARGS = runpy.run_path(str(REPO_ROOT / "deploy" / "compose_args.py"))


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?…}`` and ``$$``,
    resolved with ``env`` (none: an empty environment), by the smoke test's own reader."""
    result: str = _COMPOSE_ARGS["interpolate"](text, env or {})
    return result


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` (mapping or ``KEY=VALUE`` list), unresolved."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@dataclass
class Instruction:
    keyword: str
    arguments: str
    stage: int


@dataclass
class Dockerfile:
    instructions: list[Instruction] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        joined: list[str] = []
        pending = ""
        for line in text.splitlines():
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if pending and stripped.startswith("#"):
                continue  # comment lines inside a continuation are dropped by Docker too
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            joined.append(pending + stripped)
            pending = ""
        stage = -1
        instructions = []
        for line in joined:
            keyword, _, arguments = line.partition(" ")
            keyword = keyword.upper()
            if keyword == "FROM":
                stage += 1
            instructions.append(Instruction(keyword, arguments.strip(), stage))
        return cls(instructions)

    def all(self, keyword: str, *, stage: int | None = None) -> list[str]:
        return [
            i.arguments
            for i in self.instructions
            if i.keyword == keyword and (stage is None or i.stage == stage)
        ]

    @property
    def final_stage(self) -> int:
        return max(i.stage for i in self.instructions)

    def env(self, *, stage: int | None = None) -> dict[str, str]:
        """``ENV`` pairs (``KEY=VALUE`` form) of one stage or all."""
        pairs: dict[str, str] = {}
        for arguments in self.all("ENV", stage=stage):
            for token in shlex.split(arguments):
                key, sep, value = token.partition("=")
                assert sep, f"use the ENV KEY=VALUE form: {arguments!r}"
                pairs[key] = value
        return pairs


@pytest.fixture(scope="session")
def dockerfile() -> Dockerfile:
    return Dockerfile.parse(DOCKERFILE.read_text())
