"""Tiny randomly initialised models for the trainer tests: built from a config, not downloaded."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_gpt2(tokenizer, seed: int = 0, *, n_layer: int = 2, n_embd: int = 32, n_head: int = 2):
    """A GPT-2 with dropout off (so recomputed log-probs match the sampled ones exactly)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_positions=64,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def tiny_llama(tokenizer, seed: int = 0):
    """A Llama (rotary positions, grouped-query attention): a second architecture for the
    sampler's tests."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=128,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def save_tiny_gpt2(path: Path, tokenizer, **kwargs) -> Path:
    """:func:`tiny_gpt2` and its tokenizer saved like any Hugging Face checkpoint."""
    tiny_gpt2(tokenizer, **kwargs).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
