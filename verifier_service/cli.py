"""``sieve-verifier``: run the HTTP service, or check one file locally.

``serve`` builds one :class:`~verifier_service.settings.VerifierSettings` from ``SIEVE_*``
variables with the flags on top, and runs uvicorn with a single worker process: the Lean pool
and the in-flight de-duplication live in that process, so scale out with replicas sharing a
Redis, not with uvicorn workers.

``check`` checks one file through the same checkers and rules as the service, without HTTP or
cache; its exit status is 0 for ``valid``, 1 for ``invalid`` and 2 for ``timeout``/``error``
(or input the checker refuses).

``selftest`` sends bundled known-valid and hostile proofs to a running service and exits 0 only
if every verdict is the known one (see :mod:`verifier_service.selftest`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging.config
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from verifier_service.checkers.base import DEFAULT_AXIOMS, Policy
from verifier_service.settings import VerifierSettings
from verifier_service.verdicts import Verdict

__all__ = ["app", "main"]

app = typer.Typer(
    name="sieve-verifier",
    help="Sieve's proof verifier: Lean 4 and final-answer checking over HTTP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_CODES = {Verdict.VALID: 0, Verdict.INVALID: 1, Verdict.TIMEOUT: 2, Verdict.ERROR: 2}
VERDICT_STYLES = {
    Verdict.VALID: "bold green",
    Verdict.INVALID: "bold red",
    Verdict.TIMEOUT: "bold magenta",
    Verdict.ERROR: "bold yellow",
}


def _settings(overrides: dict[str, Any]) -> VerifierSettings:
    """Environment first, then every flag that was given."""
    try:
        return VerifierSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _log_config(level: str, secrets: Sequence[str] = ()) -> dict[str, Any]:
    """uvicorn's logging config, plus the service's own loggers on the same handler.

    Every handler redacts: query strings leave the access log, and ``secrets`` (the API keys)
    are masked in any line (:mod:`verifier_service.api.redaction`).
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {
        "()": "verifier_service.api.redaction.RedactingFilter",
        "secrets": list(secrets),
    }
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    config["loggers"]["verifier_service"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind [SIEVE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [SIEVE_PORT].")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Lean REPL processes in the pool [SIEVE_LEAN_WORKERS]."),
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis for the verdict cache [SIEVE_REDIS_URL].")
    ] = None,
    lean_repl: Annotated[
        str | None,
        typer.Option(help="Command starting one Lean REPL; enables lean4 [SIEVE_LEAN_REPL]."),
    ] = None,
    lean_cwd: Annotated[
        str | None, typer.Option(help="Mathlib project directory [SIEVE_LEAN_CWD].")
    ] = None,
    checkers: Annotated[
        str | None, typer.Option(help="Comma-separated checkers, e.g. lean4,math [SIEVE_CHECKERS].")
    ] = None,
    max_pending: Annotated[
        int | None, typer.Option(help="Proofs queued before 429 [SIEVE_MAX_PENDING].")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="Log level [SIEVE_LOG_LEVEL].")] = None,
) -> None:
    """Serve the HTTP API (API keys come from SIEVE_API_KEYS only, never from flags)."""
    import uvicorn

    from verifier_service.app import create_app

    settings = _settings(
        {
            "host": host,
            "port": port,
            "lean_workers": workers,
            "redis_url": redis_url,
            "lean_repl": lean_repl,
            "lean_cwd": lean_cwd,
            "checkers": checkers,
            "max_pending": max_pending,
            "log_level": log_level,
        }
    )
    log_config = _log_config(settings.log_level, settings.api_keys)
    logging.config.dictConfig(log_config)  # before create_app: checkers log while being built
    from verifier_service.lean.sandbox import SandboxUnavailable

    try:
        application = create_app(settings)
    except (ValueError, SandboxUnavailable) as exc:  # unknown checker, bad URL, no sandbox
        Console(stderr=True).print(f"[bold red]cannot start:[/] {exc}")
        raise typer.Exit(2) from exc
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        workers=1,
        log_level=settings.log_level.lower(),
        log_config=log_config,
        timeout_graceful_shutdown=10,
    )


@app.command()
def check(
    file: Annotated[
        Path,
        typer.Argument(
            help="Lean file (or, with --checker math, the answer text); '-' reads stdin.",
            allow_dash=True,
        ),
    ],
    header_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Header (imports, options, opens)."),
    ] = None,
    statement: Annotated[
        str | None, typer.Option(help="Formal statement the code must begin with, unchanged.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds the check may take.")] = None,
    checker: Annotated[str, typer.Option(help="lean4 or math.")] = "lean4",
    answer: Annotated[str | None, typer.Option(help="Reference answer (math checker).")] = None,
    allow_sorry: Annotated[bool, typer.Option(help="Accept proofs that use sorry.")] = False,
    lean_repl: Annotated[
        str | None, typer.Option(help="Command starting one Lean REPL [SIEVE_LEAN_REPL].")
    ] = None,
    lean_cwd: Annotated[
        str | None, typer.Option(help="Mathlib project directory [SIEVE_LEAN_CWD].")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check one proof locally (no HTTP, no cache). Exit 0 valid, 1 invalid, 2 otherwise."""
    from verifier_service.checkers import build_checker
    from verifier_service.lean.sandbox import SandboxUnavailable
    from verifier_service.service import (
        BatchTooLarge,
        InvalidItem,
        ProofItem,
        VerificationService,
    )

    code = sys.stdin.read() if str(file) == "-" else _read(file)
    header = _read(header_file) if header_file is not None else None
    settings = _settings(
        {"checkers": [checker], "lean_repl": lean_repl, "lean_cwd": lean_cwd, "lean_workers": 1}
    )
    console = Console()
    err = Console(stderr=True)

    async def run() -> tuple[dict[str, Any], str]:
        service = VerificationService(
            {checker: build_checker(checker, settings)}, None, settings=settings
        )
        await service.start()
        try:
            await service.wait_started()
            item = ProofItem(
                id=str(file),
                code=code,
                checker=checker,
                header=header,
                statement=statement,
                answer=answer,
                timeout_s=timeout,
            )
            policy = Policy(allow_sorry=allow_sorry, axioms=DEFAULT_AXIOMS)
            (result,) = await service.verify([item], policy)
            return result.to_dict(), service.checker_versions[checker]
        finally:
            await service.aclose()

    try:
        result, version = asyncio.run(run())
    except (InvalidItem, BatchTooLarge) as exc:
        err.print(f"[bold red]refused:[/] {exc}")
        raise typer.Exit(2) from exc
    except (ValueError, SandboxUnavailable) as exc:  # unknown checker, no sandbox
        err.print(f"[bold red]cannot check:[/] {exc}")
        raise typer.Exit(2) from exc

    verdict = Verdict(result["verdict"])
    if json_output:
        console.print_json(json.dumps({**result, "checker_version": version}))
    else:
        _print_result(console, result, verdict, version)
    raise typer.Exit(EXIT_CODES[verdict])


@app.command()
def selftest(
    url: Annotated[str, typer.Option(help="Base URL of the running verifier.")] = (
        "http://localhost:8000"
    ),
    api_key: Annotated[
        str | None, typer.Option(envvar="SIEVE_API_KEY", help="Bearer token [SIEVE_API_KEY].")
    ] = None,
    header_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Header for the cases (default: Mathlib)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Lean budget per proof, seconds.")] = 120.0,
    wait_ready: Annotated[
        float, typer.Option(help="Seconds to wait for /ready (workers import Mathlib first).")
    ] = 600.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Instead: check, here, that the Lean sandbox holds. Run it where the service "
            "runs (docker compose exec verifier sieve-verifier selftest --sandbox); it uses "
            "the SIEVE_LEAN_* settings and never the URL.",
        ),
    ] = False,
) -> None:
    """Send known-valid and hostile proofs to URL; exit 0 only if every verdict is right.

    Exit 1 when a verdict is wrong, 2 when the server cannot be asked. With ``--sandbox``: start
    one REPL as the service would and try escapes inside it; exit 0 only if none succeeds.
    """
    if sandbox:
        from verifier_service.selftest.sandbox import main_sandbox

        raise typer.Exit(main_sandbox(_settings({}), Console()))
    from verifier_service.selftest import DEFAULT_HEADER, SelftestError, run_selftest

    header = _read(header_file) if header_file is not None else DEFAULT_HEADER
    console = Console()
    try:
        report = run_selftest(
            url, api_key=api_key, header=header, timeout_s=timeout, ready_timeout_s=wait_ready
        )
    except SelftestError as exc:
        Console(stderr=True).print(f"[bold red]selftest could not run:[/] {exc}")
        raise typer.Exit(2) from exc
    if json_output:
        console.print_json(json.dumps(report.to_dict()))
    else:
        _print_selftest(console, report)
    raise typer.Exit(0 if report.ok else 1)


def _print_selftest(console: Console, report: Any) -> None:
    from rich.markup import escape

    table = Table("", "case", "what it tries", "expected", "got", "reasons", header_style="bold")
    for result in report.results:
        mark = "[bold green]ok[/]" if result.right else "[bold red]WRONG[/]"
        verdict = Verdict(result.verdict) if result.verdict in Verdict._value2member_map_ else None
        style = VERDICT_STYLES.get(verdict, "bold") if verdict else "bold"
        table.add_row(
            mark,
            escape(result.case.name),
            escape(result.case.kind),
            result.case.expect.value,
            f"[{style}]{escape(result.verdict)}[/]",
            escape(", ".join(result.reasons)),
        )
    console.print(table)
    right = len(report.results) - len(report.wrong)
    summary = (
        f"{right}/{len(report.results)} verdicts right; hostile proofs tried "
        f"{len(report.hostile)}, accepted {len(report.hostile_accepted)}; "
        f"{report.seconds:.1f} s  [dim]{escape(report.url)} {escape(report.checker_version)}[/]"
    )
    console.print(("[bold green]PASS[/] " if report.ok else "[bold red]FAIL[/] ") + summary)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from exc


def _print_result(console: Console, result: dict[str, Any], verdict: Verdict, version: str) -> None:
    style = VERDICT_STYLES[verdict]
    console.print(f"[{style}]{verdict.value}[/]  {result['time_s']:.3f} s  [dim]{version}[/]")
    if result["reasons"]:
        console.print("reasons: " + ", ".join(result["reasons"]))
    if result["axioms"] is not None:
        console.print("axioms: " + (", ".join(result["axioms"]) or "none"))
    if result["messages"]:
        table = Table("severity", "at", "message", show_edge=False, header_style="bold")
        for message in result["messages"]:
            pos = message.get("pos") or {}
            at = f"{pos.get('line', '?')}:{pos.get('column', '?')}" if pos else ""
            table.add_row(str(message.get("severity", "")), at, str(message.get("data", "")))
        console.print(table)


def main() -> None:
    app(prog_name="sieve-verifier")
