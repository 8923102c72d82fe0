"""Print the ``docker run`` options that ``docker-compose.yml`` gives one service.

    python3 deploy/compose_args.py docker-compose.yml verifier

deploy/smoke.sh starts the containers with ``docker run`` (it needs no Compose and no bridge
network) but must start them exactly as Compose would. This reads the compose file, resolves
``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}`` and ``$$`` from this
process's environment as Compose does, and prints one option per line for what ``docker run``
can take: ``user``, ``environment``, ``security_opt``, ``mem_limit``, ``stop_grace_period``,
``entrypoint``/``command`` (as ``SIEVE_ENTRYPOINT``/``SIEVE_COMMAND`` lines), ``healthcheck``
and ``volumes`` (named volumes as ``VOLUME:`` lines, so the caller names them). Networking,
ports, ``build`` and ``depends_on`` are the caller's. It needs PyYAML (the image has it).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import yaml

_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution, as it resolves with ``env``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return arg if value is None else value
        if op in (":?", "?"):
            if not value:
                raise SystemExit(f"compose_args: ${{{name}}} is required: {arg}")
            return value
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return "" if value is None else arg
        return value or ""

    return _INTERPOLATION.sub(substitute, text)


def _resolve(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [_resolve(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _resolve(item, env) for key, item in value.items()}
    return value


def _argv(value: Any) -> list[str]:
    return value.split() if isinstance(value, str) else [str(part) for part in value]


def options(compose: dict[str, Any], service: str, env: dict[str, str]) -> list[str]:
    """One ``docker run`` option (or ``KIND:VALUE`` line) per item."""
    spec = _resolve(compose["services"][service], env)
    out: list[str] = []
    if "user" in spec:
        out.append(f"--user={spec['user']}")
    raw_env = spec.get("environment") or {}
    if isinstance(raw_env, list):
        raw_env = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw_env)
    for key, value in raw_env.items():
        out.append(f"--env={key}={'' if value is None else value}")
    for option in spec.get("security_opt") or []:
        out.append(f"--security-opt={option}")
    if "mem_limit" in spec:
        out.append(f"--memory={spec['mem_limit']}")
    if "stop_grace_period" in spec:
        seconds = int(str(spec["stop_grace_period"]).rstrip("s"))
        out.append(f"--stop-timeout={seconds}")
    check = spec.get("healthcheck")
    if check:
        test = check["test"]
        if isinstance(test, list) and test[0] == "CMD":
            out.append("--health-cmd=" + " ".join(json.dumps(part) for part in test[1:]))
        elif isinstance(test, list) and test[0] == "CMD-SHELL":
            out.append("--health-cmd=" + " ".join(test[1:]))
        else:
            out.append(f"--health-cmd={test}")
        for key, flag in [
            ("interval", "--health-interval"),
            ("timeout", "--health-timeout"),
            ("start_period", "--health-start-period"),
            ("retries", "--health-retries"),
        ]:
            if key in check:
                out.append(f"{flag}={check[key]}")
    for volume in spec.get("volumes") or []:
        source = volume.split(":", 1)[0]
        kind = "BIND" if source.startswith((".", "/")) else "VOLUME"
        out.append(f"{kind}:{volume}")
    if "entrypoint" in spec:
        out.append("SIEVE_ENTRYPOINT:" + json.dumps(_argv(spec["entrypoint"])))
    if "command" in spec:
        out.append("SIEVE_COMMAND:" + json.dumps(_argv(spec["command"])))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        compose = yaml.safe_load(handle)
    for line in options(compose, argv[2], dict(os.environ)):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
