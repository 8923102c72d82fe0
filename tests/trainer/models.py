"""Tiny randomly initialised models for the trainer tests: built from a config, not downloaded."""

from __future__ import annotations

from pathlib import Path

from trainer_client.build import random_model


def tiny_gpt2(tokenizer, seed: int = 0, *, n_layer: int = 2, n_embd: int = 32, n_head: int = 2):
    """A GPT-2 with dropout off (so recomputed log-probs match the sampled ones exactly)."""
    return random_model(
        {
            "model_type": "gpt2",
            "n_layer": n_layer,
            "n_embd": n_embd,
            "n_head": n_head,
            "n_positions": 64,
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
        },
        tokenizer,
        seed=seed,
    )


def tiny_llama(tokenizer, seed: int = 0):
    """A Llama (rotary positions, grouped-query attention): a second architecture for the
    sampler's tests."""
    return random_model(
        {
            "model_type": "llama",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 128,
        },
        tokenizer,
        seed=seed,
    )


def save_tiny_gpt2(path: Path, tokenizer, **kwargs) -> Path:
    """:func:`tiny_gpt2` and its tokenizer saved like any Hugging Face checkpoint."""
    tiny_gpt2(tokenizer, **kwargs).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
