from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from examples.demo.tokenizer import DEMO_ALPHABET, SPECIAL_TOKENS, char_tokenizer


def test_one_token_per_character_and_roundtrip():
    tok = char_tokenizer()
    text = "24=(3+5)*3 \n"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert len(ids) == len(text) + 1
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_vocab_is_specials_then_alphabet():
    tok = char_tokenizer()
    assert len(tok) == len(SPECIAL_TOKENS) + len(DEMO_ALPHABET)
    assert tok.pad_token_id == 0
    assert {tok.bos_token_id, tok.eos_token_id, tok.unk_token_id} == {1, 2, 3}
    assert tok.convert_ids_to_tokens(tok("x")["input_ids"])[1] == tok.unk_token


def test_left_padding_for_generation():
    tok = char_tokenizer()
    batch = tok(["1=", "123="], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == (2, 5)
    assert batch["input_ids"][0, :2].tolist() == [tok.pad_token_id] * 2
    assert batch["attention_mask"][0].tolist() == [0, 0, 1, 1, 1]
    assert batch["input_ids"][1, -1].item() == tok.convert_tokens_to_ids("=")


def test_save_and_load_offline(tmp_path):
    tok = char_tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert loaded.padding_side == "left"
    assert loaded.eos_token == tok.eos_token
    text = "7=2*3+1"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.decode(loaded(text)["input_ids"], skip_special_tokens=True) == text


def test_empty_alphabet_is_rejected():
    with pytest.raises(ValueError, match="alphabet"):
        char_tokenizer("")


def test_duplicate_characters_are_merged():
    assert len(char_tokenizer("aab")) == len(SPECIAL_TOKENS) + 2
