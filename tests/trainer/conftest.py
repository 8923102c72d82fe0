"""Fixtures of every trainer test: one CPU thread, the demo's character tokenizer, eight
arithmetic problems."""

from __future__ import annotations

import pytest
import torch

from examples.demo.tokenizer import char_tokenizer
from trainer_client.data import Problem


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and the figures do not vary with the machine."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    return char_tokenizer()


@pytest.fixture
def problems() -> list[Problem]:
    return [
        Problem(name=f"p{i}", statement=f"{i}+{i}=", checker="math", answer=str(2 * i))
        for i in range(1, 9)
    ]
