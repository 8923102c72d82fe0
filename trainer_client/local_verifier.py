"""The verifier a run talks to: the configured URLs, or a local one started for the run.

This is the trainer's one import of :mod:`verifier_service`: with no ``verifier.url`` a run
starts ``python -m verifier_service serve`` on a free loopback port with only the checkers in
``verifier.local_checkers`` (``math`` by default), and stops it when the run ends. With several
processes the main one starts it and the others receive its URL.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from accelerate.utils import broadcast_object_list

from trainer_client.client import VerifierClient
from trainer_client.config import TrainConfig
from trainer_client.distributed import process_state
from verifier_service.launcher import serve_subprocess

__all__ = ["local_verifier", "verifier_for"]


@contextlib.contextmanager
def local_verifier(
    checkers: Sequence[str] = ("math",), *, startup_timeout_s: float = 60.0
) -> Iterator[str]:
    """Run ``python -m verifier_service serve`` on a free loopback port; yields its base URL."""
    env = {"SIEVE_CHECKERS": ",".join(checkers), "SIEVE_LOG_LEVEL": "warning"}
    with serve_subprocess(env, startup_timeout_s=startup_timeout_s) as url:
        yield url


@contextlib.contextmanager
def verifier_for(cfg: TrainConfig) -> Iterator[VerifierClient]:
    """A client of ``cfg``'s verifier (a local one started first when ``verifier.url`` is
    none), closed, and the local verifier stopped, when the block ends."""
    v = cfg.verifier
    with contextlib.ExitStack() as stack:
        url = v.url
        if url is None:
            url = stack.enter_context(_local_verifier_for_all(v.local_checkers))
        client = VerifierClient(
            url,
            api_key=v.api_key or os.environ.get("SIEVE_API_KEY"),
            timeout_s=v.request_timeout_s,
            max_batch=v.max_batch,
            max_concurrency=v.max_concurrency,
            retries=v.retries,
        )
        stack.callback(client.close)
        yield client


@contextlib.contextmanager
def _local_verifier_for_all(checkers: Sequence[str]) -> Iterator[str]:
    """One local verifier per run: with several processes the main one starts it, the others
    receive its URL, and it stops only once every process is done with it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        with local_verifier(checkers) as url:
            yield url
        return
    state = process_state()
    with contextlib.ExitStack() as stack:
        mine = stack.enter_context(local_verifier(checkers)) if state.is_main_process else None
        shared: str = broadcast_object_list([mine], from_process=0)[0]
        yield shared
        state.wait_for_everyone()
