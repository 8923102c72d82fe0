"""Which theorem gets ``#print axioms``."""

from __future__ import annotations

from verifier_service.soundness import EXAMPLE_NAME, find_target, find_targets


def test_statement_theorem_is_the_main_target():
    code = "theorem foo : 1 = 1 := rfl\ntheorem bar : 2 = 2 := rfl"
    target = find_target(code, statement="theorem foo : 1 = 1 :=")
    assert target is not None and target.name == "foo"
    assert target.print_axioms == "#print axioms foo"


def test_helper_lemmas_first_the_statement_is_still_the_main_target():
    code = "lemma h1 : 1 = 1 := rfl\ntheorem h2 : 2 = 2 := rfl\ntheorem foo : 3 = 3 := by rfl"
    targets = find_targets(code, statement="theorem foo : 3 = 3 := by")
    assert targets.main is not None and targets.main.name == "foo"
    # and every helper is asked about too, one line each, the main target first
    assert [t.name for t in targets.all] == ["foo", "h1", "h2"]
    assert targets.print_axioms.splitlines() == [
        "#print axioms foo",
        "#print axioms h1",
        "#print axioms h2",
    ]


def test_without_statement_every_theorem_lemma_and_example_is_a_target():
    code = "lemma a : 1 = 1 := rfl\nexample : 2 = 2 := rfl\ndef d := 1\ntheorem b : True := trivial"
    targets = find_targets(code)
    assert targets.main is not None and targets.main.name == "b"
    assert [t.name for t in targets.all] == ["b", "a", EXAMPLE_NAME]


def test_without_statement_the_last_declaration():
    target = find_target("lemma foo : 1 = 1 := rfl\nlemma bar : 2 = 2 := rfl")
    assert target is not None and target.name == "bar"


def test_namespaces_qualify_the_name():
    code = (
        "namespace A.B\nsection\ntheorem foo : True := trivial\nend\nend A.B\n"
        "theorem top : True := trivial"
    )
    assert find_target(code, statement="theorem foo").name == "A.B.foo"
    assert find_target(code).name == "top"
    assert find_target("namespace X\ntheorem _root_.foo : True := trivial").name == "foo"


def test_header_namespace_counts():
    target = find_target("theorem foo : True := trivial", header="namespace Ns")
    assert target is not None and target.name == "Ns.foo"
    assert target.print_axioms == "#print axioms _root_.Ns.foo"


def test_root_name_whenever_a_namespace_could_capture_the_plain_one():
    plain = find_target("theorem foo : True := trivial")
    assert plain is not None and plain.print_axioms == "#print axioms foo"
    for header, code in [
        ("open Real", "theorem foo : True := trivial"),
        ("", "theorem foo : True := trivial\nnamespace X\ntheorem foo : True := trivial"),
        ("", "theorem foo : True := trivial\nopen X in\ntheorem bar : True := trivial"),
    ]:
        target = find_target(code, header=header, statement="theorem foo : True :=")
        assert target is not None and target.print_axioms == "#print axioms _root_.foo"


def test_a_def_counts_only_as_a_statement():
    code = "def g (n : ℕ) : ℕ := n\ntheorem foo : g 1 = 1 := rfl\ndef h := 2"
    assert find_target(code).name == "foo"
    construction = "def exercise (G : Type*) [Group G] : Group G :="
    target = find_target(construction + " inferInstance", statement=construction)
    assert target is not None and target.name == "exercise"


def test_no_declaration():
    assert find_target("def f := 37") is None
    assert find_target("-- theorem foo\n") is None


def test_example_is_renamed_and_positions_restored():
    code = "theorem a : True := trivial\n  example : 1 = 1 := by rfl"
    targets = find_targets(code)
    target = targets.main
    assert target is not None and target.is_example and target.name == EXAMPLE_NAME
    run = targets.code_to_run(code)
    assert run.splitlines()[1] == f"  theorem {EXAMPLE_NAME} : 1 = 1 := by rfl"
    # Lean reports the `rfl` at its column in the renamed code ...
    column_in_run = run.splitlines()[1].index("rfl")
    message = {"severity": "error", "pos": {"line": 2, "column": column_in_run}, "data": "x"}
    # ... and the client sees its column in the submitted code.
    fixed = targets.restore_positions(message)
    assert fixed["pos"] == {"line": 2, "column": code.splitlines()[1].index("rfl")}
    assert message["pos"]["column"] == column_in_run  # the input is not modified
    other_line = {"pos": {"line": 1, "column": 30}}
    assert targets.restore_positions(other_line) == other_line
    # a line that is not a number (a list cannot even be looked up) is left as it came
    for line in ([2], "2", None):
        odd = {"pos": {"line": line, "column": column_in_run}}
        assert targets.restore_positions(odd) == odd


def test_every_example_gets_its_own_name_and_columns_come_back():
    code = "example : 1 = 1 := rfl example : 2 = 2 := rfl\nexample : 3 = 3 := by rfl"
    targets = find_targets(code)
    names = [t.name for t in targets.all]
    assert sorted(names) == sorted([EXAMPLE_NAME, f"{EXAMPLE_NAME}_2", f"{EXAMPLE_NAME}_3"])
    run = targets.code_to_run(code)
    first, second = run.splitlines()
    assert first == f"theorem {EXAMPLE_NAME} : 1 = 1 := rfl theorem {EXAMPLE_NAME}_2 : 2 = 2 := rfl"
    assert second == f"theorem {EXAMPLE_NAME}_3 : 3 = 3 := by rfl"
    # a message on the second `rfl` of line 1 comes back to that `rfl` in the submitted code
    at = {"pos": {"line": 1, "column": first.rindex("rfl")}}
    assert targets.restore_positions(at)["pos"]["column"] == code.splitlines()[0].rindex("rfl")
    at = {"pos": {"line": 1, "column": first.index("rfl")}}
    assert targets.restore_positions(at)["pos"]["column"] == code.splitlines()[0].index("rfl")


def test_theorem_code_runs_unchanged():
    code = "theorem foo : True := trivial"
    assert find_targets(code).code_to_run(code) == code
