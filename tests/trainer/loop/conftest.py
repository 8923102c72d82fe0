"""Fixtures for the loop's unit tests (the tokenizer, the problems and one thread are
``tests/trainer/conftest.py``'s)."""

from __future__ import annotations

import pytest

from tests.trainer.loop.helpers import FakeVerifier, lenient, tiny_gpt2


@pytest.fixture
def model(tokenizer):
    return tiny_gpt2(tokenizer)


@pytest.fixture
def verifier() -> FakeVerifier:
    return FakeVerifier(lenient)
