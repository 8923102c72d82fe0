"""No secret reaches a log: not in uvicorn's access log, not in the service's own lines."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx

from verifier_service.api.redaction import REDACTED, RedactingFilter, redact_query
from verifier_service.launcher import serve_subprocess

KEY = "log-secret-key-0123456789"
QUERY_SECRET = "query-secret-abcdef"


def test_redact_query_keeps_the_path_only():
    assert redact_query("/verify?api_key=s3cret&x=1") == f"/verify?{REDACTED}"
    assert redact_query("/verify") == "/verify"


def test_filter_masks_keys_in_any_record_and_keeps_access_args_shaped():
    flt = RedactingFilter([KEY])
    own = logging.LogRecord("verifier_service.x", logging.INFO, "f", 1, "got %s", (KEY,), None)
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "f",
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", f"/{KEY}?api_key={QUERY_SECRET}", "1.1", 200),
        None,
    )
    assert flt.filter(own) and flt.filter(access)
    assert own.getMessage() == f"got {REDACTED}"
    assert access.args == ("1.2.3.4:5", "GET", f"/{REDACTED}?{REDACTED}", "1.1", 200)


def test_served_logs_hold_no_key_and_no_query(tmp_path: Path):
    """A real ``sieve-verifier serve`` with its access log on: the log file is searched."""
    log_path = tmp_path / "server.log"
    env = {"SIEVE_CHECKERS": "math", "SIEVE_LOG_LEVEL": "debug", "SIEVE_API_KEYS": f"{KEY},other"}
    with serve_subprocess(env, ready_path="/health", log_path=log_path) as url:
        body = {"proofs": [{"id": "a", "checker": "math", "code": "2", "answer": "2"}]}
        with httpx.Client(base_url=url, timeout=30) as client:
            statuses = [
                client.get(f"/health?api_key={QUERY_SECRET}").status_code,
                client.post(f"/verify?api_key={QUERY_SECRET}", json=body).status_code,
                client.post(
                    f"/verify?token={QUERY_SECRET}",
                    json=body,
                    headers={"Authorization": f"Bearer {KEY}"},
                ).status_code,
                client.post(f"/{KEY}", headers={"Authorization": "Bearer nope"}).status_code,
            ]
    assert statuses == [200, 401, 200, 401]
    text = log_path.read_text()
    assert '"GET /health?[redacted] HTTP/1.1" 200' in text, text  # the access log is on
    assert '"POST /verify?[redacted] HTTP/1.1" 401' in text, text
    assert "refused a request" in text  # our own logger is on too
    assert QUERY_SECRET not in text
    assert KEY not in text
