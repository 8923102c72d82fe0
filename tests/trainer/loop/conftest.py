"""Fixtures for the loop's unit tests."""

from __future__ import annotations

import pytest
import torch

from tests.trainer.loop.helpers import FakeVerifier, lenient, tiny_gpt2
from trainer_client.data import Problem
from trainer_client.demo import char_tokenizer


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    return char_tokenizer()


@pytest.fixture
def model(tokenizer):
    return tiny_gpt2(tokenizer)


@pytest.fixture
def problems() -> list[Problem]:
    return [
        Problem(name=f"p{i}", statement=f"{i}+{i}=", checker="math", answer=str(2 * i))
        for i in range(1, 9)
    ]


@pytest.fixture
def verifier() -> FakeVerifier:
    return FakeVerifier(lenient)
