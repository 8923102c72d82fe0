"""One warm math checker shared by the tests that do not break its workers on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from verifier_service.checkers.math import MathChecker
from verifier_service.settings import VerifierSettings


@pytest.fixture(scope="package")
def math_checker() -> Iterator[MathChecker]:
    checker = MathChecker(VerifierSettings(), workers=2)
    yield checker
    asyncio.run(checker.aclose())
