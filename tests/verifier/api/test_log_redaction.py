"""No secret reaches a log: not in uvicorn's access log, not in the service's own lines."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from verifier_service.api.redaction import REDACTED, RedactingFilter, redact_query
from verifier_service.launcher import free_port

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
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEVE_")}
    env.update(
        {"SIEVE_CHECKERS": "math", "SIEVE_LOG_LEVEL": "debug", "SIEVE_API_KEYS": f"{KEY},other"}
    )
    argv = [sys.executable, "-m", "verifier_service", "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
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
        finally:
            process.terminate()
            process.wait(timeout=15)
    assert statuses == [200, 401, 200, 401]
    text = log_path.read_text()
    assert '"GET /health?[redacted] HTTP/1.1" 200' in text, text  # the access log is on
    assert '"POST /verify?[redacted] HTTP/1.1" 401' in text, text
    assert "refused a request" in text  # our own logger is on too
    assert QUERY_SECRET not in text
    assert KEY not in text
