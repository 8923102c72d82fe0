"""An app per test, driven in-process through httpx with its lifespan running."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI

from tests.verifier.service.fakes import FakeChecker
from verifier_service.app import create_app
from verifier_service.cache import MemoryCache
from verifier_service.checkers.base import Checker
from verifier_service.settings import VerifierSettings
from verifier_service.testing.settings import double_settings

MakeClient = Callable[..., Awaitable[tuple[httpx.AsyncClient, FastAPI]]]

#: The header the REPL double's workers are prewarmed with.
LEAN_HEADER = "import Mathlib\nimport Aesop"


def lean_double_settings(**overrides: object) -> VerifierSettings:
    """Settings for a ``lean4`` checker over the REPL protocol double: one worker, prewarmed
    with :data:`LEAN_HEADER`, unsandboxed; ``overrides`` change any field."""
    return double_settings(prewarm=LEAN_HEADER, **overrides)


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    async with AsyncExitStack() as stack:

        async def make(
            *,
            checkers: Mapping[str, Checker] | None = None,
            cache: object | None = None,
            wait_started: bool = True,
            **settings: object,
        ) -> tuple[httpx.AsyncClient, FastAPI]:
            if checkers is None:
                checkers = {"fake": FakeChecker()}
            settings.setdefault("checkers", list(checkers))
            app = create_app(
                VerifierSettings(**settings),
                checkers=checkers,
                cache=cache if cache is not None else MemoryCache(),
            )
            await stack.enter_async_context(app.router.lifespan_context(app))
            if wait_started:
                await app.state.service.wait_started()
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sieve")
            await stack.enter_async_context(client)
            return client, app

        yield make


def proof(pid: str, code: str, **fields: object) -> dict[str, object]:
    return {"id": pid, "checker": "fake", "code": code, **fields}
