"""``sieve-eval`` end to end: a tiny random GPT-2 checkpoint, demo problems, a verifier.

Two verifiers: an ``httpx.MockTransport`` with a scripted rule (always runs, and checks the
tallies sample by sample, errors included), and the real service (``python -m verifier_service
serve`` with the math checker on a free port; skipped if it cannot start).
"""

import dataclasses
import json
from functools import partial

import httpx
import pytest
import torch
import typer
from typer.testing import CliRunner

import trainer_client.client
import trainer_client.evaluation.cli as eval_cli
from examples.demo.task import demo_problems
from examples.demo.tokenizer import char_tokenizer
from tests.trainer.models import save_tiny_gpt2
from trainer_client.data import load_problems, proof_request, save_problems
from trainer_client.evaluation import EvalResult, ProblemResult
from trainer_client.evaluation.cli import app
from verifier_service.launcher import VerifierStartError, free_port, serve_subprocess

torch.set_num_threads(1)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N = 4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "demo" / "step_0"
    return save_tiny_gpt2(path, char_tokenizer(), n_layer=1, n_embd=16)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return save_problems(
        demo_problems(3, split="test"), tmp_path_factory.mktemp("data") / "p.jsonl"
    )


def scripted_verdict(code: str) -> str:
    """error if the answer holds a 7, valid if its length is even, else invalid.

    An empty answer never reaches the verifier: the runner judges it invalid itself.
    """
    if not code.strip():
        return "invalid"
    if "7" in code:
        return "error"
    return "valid" if len(code) % 2 == 0 else "invalid"


def scripted_transport(request: httpx.Request) -> httpx.Response:
    proofs = json.loads(request.content)["proofs"]
    results = [
        {"id": p["id"], "verdict": scripted_verdict(p["code"]), "reasons": [], "time_s": 0.0}
        for p in proofs
    ]
    return httpx.Response(200, json={"results": results})


def run_cli(checkpoint, data, out, url, extra=()):
    args = [
        "--checkpoint", str(checkpoint), "--data", str(data), "--n", str(N),
        "--max-new-tokens", "6", "--batch-size", "4", "--verifier-url", url,
        "--out", str(out), "--device", "cpu", "--save-samples", "--seed", "3", *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return EvalResult.from_json(out / "results.json")


def use_scripted_verifier(monkeypatch):
    """Route the CLI's verifier through the scripted transport (no reachability probe)."""
    monkeypatch.setattr(eval_cli, "_require_reachable", lambda url: None)
    monkeypatch.setattr(
        trainer_client.client,
        "VerifierClient",
        partial(
            trainer_client.client.VerifierClient, transport=httpx.MockTransport(scripted_transport)
        ),
    )


def test_cli_tallies_every_sample_and_excludes_errors(checkpoint, data, tmp_path, monkeypatch):
    use_scripted_verifier(monkeypatch)
    out = tmp_path / "eval"
    result = run_cli(checkpoint, data, out, "http://verifier.test")

    problems = {p.name: p for p in load_problems(data)}
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == len(problems) * N
    for tally in result.problems:
        mine = [r for r in rows if r["problem"] == tally.name]
        verdicts = [
            scripted_verdict(
                proof_request(problems[tally.name], "", r["completion"], id="x")["code"]
            )
            for r in mine
        ]
        assert [r["verdict"] for r in mine] == verdicts
        assert tally.errors == verdicts.count("error")
        assert tally.n == N - tally.errors
        assert tally.c == verdicts.count("valid")
    # the fixed seed gives a mix of all three outcomes, so every branch above was exercised
    assert {r["verdict"] for r in rows} == {"valid", "invalid", "error"}
    assert result.config["n"] == N
    assert result.ks == list(range(1, N + 1))
    assert (out / "pass_at_k.png").read_bytes()[:8] == PNG_MAGIC

    # A second run compared against the first: transitions and the frontier plot appear.
    out2 = tmp_path / "eval2"
    second = run_cli(
        checkpoint, data, out2, "http://verifier.test",
        extra=["--base-results", str(out / "results.json"), "--compare", str(out / "results.json"),
               "--label", "again", "--seed", "4"],
    )  # fmt: skip
    assert second.transitions is not None
    assert sum(map(sum, second.transitions["counts"])) == sum(p.n > 0 for p in result.problems)
    for name in ("transitions.png", "precision_coverage.png"):
        assert (out2 / name).read_bytes()[:8] == PNG_MAGIC


def test_compare_command_plots_existing_results(checkpoint, data, tmp_path, monkeypatch):
    use_scripted_verifier(monkeypatch)
    run_cli(checkpoint, data, tmp_path / "a", "http://verifier.test")
    run_cli(
        checkpoint,
        data,
        tmp_path / "b",
        "http://verifier.test",
        extra=["--seed", "9", "--label", "other"],
    )
    out = tmp_path / "cmp"
    a, b = (str(tmp_path / x / "results.json") for x in "ab")
    result = CliRunner().invoke(
        app, ["compare", a, a, b, "--out", str(out), "--n-resamples", "500",
              "--pareto-rule", "paper"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("precision_coverage.png", "pass_at_k.png", "pvalues.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    pvalues = json.loads((out / "pvalues.json").read_text())
    assert set(pvalues) >= {"pass@1", f"pass@{N}"}
    assert pvalues["n"] == N and pvalues["n_resamples"] == 500
    labels = set(pvalues["pass@1"])
    assert len(labels) == 3  # the same file twice gets two distinct labels
    first, second = sorted(label for label in labels if label.endswith(")"))
    assert pvalues["pass@1"][first][second] == 1.0  # identical results
    for matrix in (pvalues["pass@1"], pvalues[f"pass@{N}"]):
        for row, cells in matrix.items():
            assert set(cells) == labels - {row}
            assert all(0.0 <= p <= 1.0 for p in cells.values())


def test_cli_reports_missing_inputs_by_flag(tmp_path):
    result = CliRunner().invoke(app, ["--data", str(tmp_path / "nope.jsonl")])
    assert result.exit_code != 0
    assert "--checkpoint" in result.output
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "missing.json")])
    assert result.exit_code != 0
    assert "does not exist" in result.output


@pytest.fixture(scope="module")
def math_verifier():
    try:
        with serve_subprocess({"SIEVE_CHECKERS": "math"}, ready_path="/health") as url:
            yield url
    except VerifierStartError as exc:
        pytest.skip(f"the verifier service (math checker) did not start: {exc}")


def test_cli_against_the_real_math_verifier(checkpoint, data, tmp_path, math_verifier):
    out = tmp_path / "eval"
    result = run_cli(checkpoint, data, out, math_verifier)
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert {r["verdict"] for r in rows} <= {"valid", "invalid"}
    assert result.errors == 0
    for tally in result.problems:
        mine = [r for r in rows if r["problem"] == tally.name]
        assert tally.n == N
        assert tally.c == sum(r["verdict"] == "valid" for r in mine)


# ------------------------------------------------------------------ mistakes get messages


def write_result(path, names, label="run"):
    problems = [ProblemResult(name, n=4, c=i % 5) for i, name in enumerate(names)]
    return EvalResult.from_problems(label, problems, n=4, n_boot=20).to_json(path)


def assert_clean_failure(result, code, *needles):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output


def test_unreachable_verifier_is_named_before_any_sampling(checkpoint, data, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    out = tmp_path / "eval"
    args = ["--checkpoint", str(checkpoint), "--data", str(data), "--n", "2",
            "--verifier-url", url, "--out", str(out), "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert_clean_failure(result, 1, "verifier unreachable", url)
    assert not out.exists()  # it stopped before loading the model or writing anything


def test_a_run_directory_is_not_a_checkpoint(checkpoint, data, tmp_path):
    run_dir = checkpoint.parent  # runs/demo, holding step_0
    result = CliRunner().invoke(app, ["--checkpoint", str(run_dir), "--data", str(data)])
    assert_clean_failure(result, 2, "run directory", "step_0")
    result = CliRunner().invoke(app, ["--checkpoint", str(tmp_path), "--data", str(data)])
    assert_clean_failure(result, 2, "no config.json")


def test_a_run_directory_suggests_its_latest_checkpoint(tmp_path):
    run = tmp_path / "run"
    for step in (2, 10, 9):  # step_10 sorts before step_2 as text
        (run / f"step_{step}").mkdir(parents=True)
        (run / f"step_{step}" / "config.json").write_text("{}")
    with pytest.raises(typer.BadParameter) as error:
        eval_cli._check_checkpoint(run)
    assert f"e.g. --checkpoint {run / 'step_10'} " in str(error.value)
    assert "found: step_2, step_9, step_10" in str(error.value)


def test_a_prompt_longer_than_the_context_is_named(checkpoint, tmp_path, monkeypatch):
    use_scripted_verifier(monkeypatch)
    problems = demo_problems(2, split="test")
    problems[1] = dataclasses.replace(problems[1], statement="1" * 80)  # 64 positions
    data = save_problems(problems, tmp_path / "long.jsonl")
    args = ["--checkpoint", str(checkpoint), "--data", str(data), "--n", "2", "--max-new-tokens",
            "6", "--verifier-url", "http://verifier.test", "--out", str(tmp_path / "e"),
            "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert_clean_failure(result, 2, "prompt too long", problems[1].name, "64")


def test_results_on_different_problem_sets_are_refused(tmp_path):
    a = write_result(tmp_path / "a.json", ["p1", "p2", "p3", "p4", "p5", "p6"])
    b = write_result(tmp_path / "b.json", ["p1", "p2", "p3"])
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "c")])
    assert_clean_failure(result, 2, "different problem", "6 vs 3", "3 shared")
    assert not (tmp_path / "c" / "pvalues.json").exists()


def test_base_results_on_other_problems_are_refused(checkpoint, data, tmp_path, monkeypatch):
    use_scripted_verifier(monkeypatch)
    base = write_result(tmp_path / "base.json", ["other-1", "other-2"])
    args = ["--checkpoint", str(checkpoint), "--data", str(data), "--n", "2", "--max-new-tokens",
            "4", "--verifier-url", "http://verifier.test", "--out", str(tmp_path / "e"),
            "--device", "cpu", "--base-results", str(base)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert_clean_failure(result, 2, "different problem")
