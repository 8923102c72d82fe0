"""Worked examples built on the trainer's public API; the library never imports them."""
