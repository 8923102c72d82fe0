"""Stand-ins for the worker function, importable by worker processes."""

from __future__ import annotations

import os
import time
from typing import Any


def hang(code: str, answer: str, budget_s: float) -> dict[str, Any]:
    """A worker stuck where no timer reaches it; writes its pid to the file named by ``code``."""
    with open(code, "w") as pid_file:
        pid_file.write(str(os.getpid()))
    time.sleep(3600)
    raise AssertionError("unreachable")


def die(code: str, answer: str, budget_s: float) -> dict[str, Any]:
    """A worker killed mid-check (OOM killer, segfault in a C extension)."""
    os._exit(1)


def explode(code: str, answer: str, budget_s: float) -> dict[str, Any]:
    """A bug in the comparison itself."""
    raise RuntimeError("comparison blew up")


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie counts as exited)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.split()[1:2] == ["Z"] for line in status if line.startswith("State:"))
    except FileNotFoundError:
        return True
