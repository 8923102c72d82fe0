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


def scripted(code: str, answer: str, budget_s: float) -> dict[str, Any]:
    """The real comparison, except for answers that script a fault of their worker:
    ``die`` kills it every time, ``die-once:<file>`` only while ``<file>`` does not exist (then
    judges ``3*8``), ``hang`` sleeps where no timer reaches it."""
    from verifier_service.checkers.math import judge

    if code == "die":
        os._exit(1)
    if code.startswith("die-once:"):
        marker = code.split(":", 1)[1]
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return judge("3*8", answer, budget_s)
    if code == "hang":
        time.sleep(3600)
    return judge(code, answer, budget_s)


def explode_on_boom(code: str, answer: str, budget_s: float) -> dict[str, Any]:
    """The real comparison, except that the answer ``boom`` raises inside it."""
    from verifier_service.checkers.math import judge

    if code == "boom":
        raise RuntimeError("boom")
    return judge(code, answer, budget_s)
