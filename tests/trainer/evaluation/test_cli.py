"""``sieve-eval`` end to end: a tiny random GPT-2 checkpoint, demo problems, a verifier.

Two verifiers: an ``httpx.MockTransport`` with a scripted rule (always runs, and checks the
tallies sample by sample, errors included), and the real service (``python -m verifier_service
serve`` with the math checker on a free port; skipped if it cannot start).
"""

import json
from functools import partial

import httpx
import pytest
import torch
from typer.testing import CliRunner

import trainer_client.client
from tests.trainer.models import save_tiny_gpt2
from trainer_client.data import load_problems, proof_request, save_problems
from trainer_client.demo import char_tokenizer, demo_problems
from trainer_client.evaluation import EvalResult
from trainer_client.evaluation.cli import app
from verifier_service.launcher import VerifierStartError, serve_subprocess

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


def test_cli_tallies_every_sample_and_excludes_errors(checkpoint, data, tmp_path, monkeypatch):
    monkeypatch.setattr(
        trainer_client.client,
        "VerifierClient",
        partial(
            trainer_client.client.VerifierClient, transport=httpx.MockTransport(scripted_transport)
        ),
    )
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
    monkeypatch.setattr(
        trainer_client.client,
        "VerifierClient",
        partial(
            trainer_client.client.VerifierClient, transport=httpx.MockTransport(scripted_transport)
        ),
    )
    run_cli(checkpoint, data, tmp_path / "a", "http://verifier.test")
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app, ["compare", str(tmp_path / "a" / "results.json"), str(tmp_path / "a" / "results.json"),
              "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "precision_coverage.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "pass_at_k.png").read_bytes()[:8] == PNG_MAGIC


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
