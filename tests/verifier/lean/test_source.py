"""The lexer never mistakes comments or strings for code."""

from __future__ import annotations

from verifier_service.soundness.source import (
    TokenKind,
    blank_comments,
    comment_spans,
    first_token,
    split_commands,
    tokenize,
)


def words(source: str) -> list[str]:
    return [t.value for t in tokenize(source)]


def test_comments_are_skipped_and_nest():
    assert words("a -- b c\nd /- e /- f -/ g -/ h") == ["a", "d", "h"]


def test_strings_and_chars_are_single_tokens():
    tokens = tokenize('#check "-- not a comment" \'"\' "esc \\" still" x')
    assert [t.kind for t in tokens] == [
        TokenKind.COMMAND,
        TokenKind.STRING,
        TokenKind.CHAR,
        TokenKind.STRING,
        TokenKind.IDENT,
    ]
    assert tokens[-1].value == "x"


def test_raw_strings():
    assert words('r#"a " -/ b"# x') == ['r#"a " -/ b"#', "x"]


def test_primes_belong_to_identifiers():
    assert words("h' h'' x₁ ℝ") == ["h'", "h''", "x₁", "ℝ"]


def test_guillemets_are_canonicalised():
    tokens = tokenize("«debug».«skipKernelTC» «my thm»")
    assert [t.value for t in tokens] == ["debug.skipKernelTC", "my thm"]
    assert tokens[0].text == "«debug».«skipKernelTC»"


def test_positions_and_spacing():
    tokens = tokenize("theorem foo :\n  h.1 = 2 := by")
    h = next(t for t in tokens if t.value == "h")
    assert (h.line, h.column, h.spaced) == (2, 2, True)
    dot = tokens[tokens.index(h) + 1]
    assert dot.text == "." and not dot.spaced


def test_blank_comments_keeps_offsets():
    source = "a /- x\ny -/ b -- z\nc"
    blanked = blank_comments(source)
    assert len(blanked) == len(source)
    assert blanked.split() == ["a", "b", "c"]
    assert len(comment_spans(source)) == 2


def test_unterminated_comment_runs_to_the_end():
    assert words("a /- never closed\n#exit") == ["a"]


def test_commands():
    commands = split_commands(
        tokenize(
            "import A\nopen B C\nset_option x 1 in\ndef f := 1\n  + 2\nopen scoped D in\nexample"
        )
    )
    assert [(c.kind, c.canonical) for c in commands] == [
        ("import", "import A"),
        ("open", "open B C"),
        ("set_option", "set_option x 1 in"),
        ("other", "def f := 1 + 2"),
        ("open", "open scoped D in"),
        ("other", "example"),
    ]


def test_the_lexer_keeps_recent_texts_up_to_its_character_budget(monkeypatch):
    from verifier_service.soundness import source

    monkeypatch.setattr(source, "LEX_CACHE_CHARS", 100)
    texts = [f"theorem t{i} : True := trivial -- {i:04d}" for i in range(10)]  # 40 chars each
    for text in texts:
        source._lex(text)
    assert source._lexed_chars <= 100
    assert source._lex(texts[-1]) is source._lex(texts[-1])  # kept
    assert texts[0] not in source._lexed  # the oldest went first
    assert tokenize(texts[0])[1].text == "t0"  # and is lexed again when asked for


def test_first_token_is_the_lexers_first_without_lexing_the_rest(monkeypatch):
    from verifier_service.soundness import source

    texts = [
        "",
        "  \n-- only a comment\n",
        "/- a /- nested -/ -/\n  /-- doc -/ theorem t : True := trivial",
        '-- x\n\n  "str" rest',
        "theorem t : True := trivial",
    ]
    for text in texts:
        source._lexed.pop(text, None)
        assert first_token(text) == (tokenize(text) or [None])[0], text
        assert first_token(text) == (tokenize(text) or [None])[0], text  # from the cache too
    tail = "theorem x : True := trivial\n" * 50_000  # far past the lexer's cache budget
    uncached = "-- leading comment\n  lemma h : True := trivial\n" + tail
    lexed = []
    real = source._Lexer.tokens

    def counting(self):
        for token in real(self):
            lexed.append(token)
            yield token

    monkeypatch.setattr(source._Lexer, "tokens", counting)
    token = first_token(uncached)
    assert token is not None and (token.text, token.line, token.column) == ("lemma", 2, 2)
    assert len(lexed) == 1
