"""The demo's character-level tokenizer: one token per character, built offline.

Also the tokenizer of the smoke config's randomly initialised model, saved once as
``configs/tokenizers/char`` (:func:`char_tokenizer` ``.save_pretrained``), so that config needs
no code of the demo.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

__all__ = ["DEMO_ALPHABET", "SPECIAL_TOKENS", "char_tokenizer"]

#: Every character the demo's prompts and expressions use. Anything else maps to ``<unk>``.
DEMO_ALPHABET = "0123456789+-*()= \n"
#: Special tokens, in id order: ``<pad>`` is id 0 so padded positions are easy to spot.
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")


def char_tokenizer(alphabet: str = DEMO_ALPHABET) -> PreTrainedTokenizerFast:
    """A character-level tokenizer: one token per character, built offline.

    A ``WordLevel`` model over single characters (the pre-tokenizer isolates every character,
    spaces and newlines included; the ``Fuse`` decoder joins them back without separators). Each
    encoded text starts with ``<bos>`` so a left-padded prompt always has a fixed first token;
    padding is on the left, as generation with a decoder-only model needs. It round-trips through
    ``save_pretrained``/``AutoTokenizer.from_pretrained`` with no network.
    """
    if not alphabet:
        raise ValueError("alphabet: must contain at least one character")
    chars = list(dict.fromkeys(alphabet))  # de-duplicate, keep order
    clash = [c for c in chars if c in SPECIAL_TOKENS]
    if clash:
        raise ValueError(f"alphabet: characters {clash!r} clash with special tokens")
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *chars])}
    pad, bos, eos, unk = SPECIAL_TOKENS

    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    # Oniguruma's (?m) is "dot matches newline": every character, "\n" included, is one piece.
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("(?m)."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, vocab[bos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token=unk,
        padding_side="left",
    )
