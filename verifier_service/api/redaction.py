"""Keep secrets out of logs: query strings in the access log, API keys anywhere.

uvicorn's access log prints each request's path *with* its query string, so a key sent as
``?api_key=…`` (some clients do) lands in the log in clear. :class:`RedactingFilter` replaces the
query of every access-log line with ``?[redacted]``, and masks each configured API key in any
record it sees, ours included. It is installed on the uvicorn access logger by
:func:`install_redaction` (whatever starts uvicorn) and on the handlers of ``sieve-verifier
serve``'s logging config (which carry the service's own loggers too).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["REDACTED", "RedactingFilter", "install_redaction", "redact_query"]

REDACTED = "[redacted]"

#: uvicorn's access logger; its records' args are ``(client, method, path?query, version, status)``.
ACCESS_LOGGER = "uvicorn.access"


def redact_query(path: str) -> str:
    """``/verify?api_key=s3cret`` -> ``/verify?[redacted]``; a path without a query is unchanged."""
    head, sep, _ = path.partition("?")
    return f"{head}?{REDACTED}" if sep else path


class RedactingFilter(logging.Filter):
    """Rewrites records in place (never drops one): access-log queries, and ``secrets``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a key containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) >= 3:
            # uvicorn's AccessFormatter unpacks these args: rewrite them, keep their shape.
            parts = list(args)
            if isinstance(parts[2], str):
                parts[2] = redact_query(parts[2])
            record.args = tuple(self._masked(p) if isinstance(p, str) else p for p in parts)
        elif self.secrets:
            try:
                message = record.getMessage()
            except Exception:  # a malformed record is the logging module's to report
                return True
            masked = self._masked(message)
            if masked != message:
                record.msg, record.args = masked, None
        if self.secrets and record.exc_text:
            record.exc_text = self._masked(record.exc_text)
        return True

    def _masked(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def install_redaction(secrets: Iterable[str] = (), logger_name: str = ACCESS_LOGGER) -> None:
    """Put one :class:`RedactingFilter` on ``logger_name``, replacing any installed before."""
    logger = logging.getLogger(logger_name)
    for existing in [f for f in logger.filters if isinstance(f, RedactingFilter)]:
        logger.removeFilter(existing)
    logger.addFilter(RedactingFilter(secrets))
