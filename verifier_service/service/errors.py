"""Why the service refuses a batch, each refusal with the HTTP status the API answers it with.

The hierarchy::

    ValueError
      InvalidItem      one item cannot be checked at all; the client must fix it   (422)
      BatchTooLarge    the batch could never be admitted, whatever the load        (413)
    RuntimeError
      QueueFull        admitting it now would exceed ``max_pending``               (429)
        QuotaExceeded  ... or the client's own ``pending_quota``                   (429)

Every refusal is raised before any check starts, so a refused batch leaves nothing half-done.
A fault while checking is not one of these: it makes that item's verdict ``error``.
"""

from __future__ import annotations

__all__ = ["BatchTooLarge", "InvalidItem", "QueueFull", "QuotaExceeded"]


class InvalidItem(ValueError):
    """Item ``index`` cannot be checked at all; ``field`` names the culprit (HTTP 422)."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(f"proofs[{index}].{field}: {message}")
        self.index = index
        self.field = field
        self.message = message


class BatchTooLarge(ValueError):
    """The batch could never be admitted, whatever the load (HTTP 413)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class QueueFull(RuntimeError):
    """Admitting the batch would exceed ``max_pending`` (HTTP 429, retry later)."""

    def __init__(self, pending: int, requested: int, limit: int, retry_after_s: int) -> None:
        super().__init__(
            f"{pending} proofs pending, {requested} more requested, limit {limit}; "
            f"retry in {retry_after_s} s"
        )
        self.pending = pending
        self.requested = requested
        self.limit = limit
        self.retry_after_s = retry_after_s


class QuotaExceeded(QueueFull):
    """Admitting the batch would exceed the client's own ``pending_quota`` (HTTP 429)."""

    def __init__(self, pending: int, requested: int, limit: int, retry_after_s: int) -> None:
        super().__init__(pending, requested, limit, retry_after_s)
        self.args = (
            f"this client has {pending} proofs pending, {requested} more requested, quota "
            f"max_pending_per_key={limit}; retry in {retry_after_s} s",
        )
