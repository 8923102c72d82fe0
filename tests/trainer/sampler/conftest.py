"""Fixtures for the sampler's tests: one thread, the demo's character tokenizer."""

from __future__ import annotations

import pytest
import torch

from trainer_client.demo import char_tokenizer


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    return char_tokenizer()
