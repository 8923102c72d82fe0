"""``sieve-verifier check``: one file, exit status by verdict; ``serve`` refuses bad settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from verifier_service.cli import app

runner = CliRunner()


@pytest.fixture
def answer_file(tmp_path: Path) -> Path:
    path = tmp_path / "answer.txt"
    path.write_text("so the answer is \\boxed{\\frac{1}{2}}", encoding="utf-8")
    return path


def test_check_valid_answer_exits_0(answer_file: Path):
    result = runner.invoke(app, ["check", str(answer_file), "--checker", "math", "--answer", "0.5"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_check_wrong_answer_exits_1_and_prints_json(answer_file: Path):
    result = runner.invoke(
        app, ["check", str(answer_file), "--checker", "math", "--answer", "3", "--json"]
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["verdict"] == "invalid"
    assert data["id"] == str(answer_file)
    assert data["checker_version"].startswith("math-verify")


def test_check_refused_input_exits_2(answer_file: Path):
    result = runner.invoke(app, ["check", str(answer_file), "--checker", "math"])
    assert result.exit_code == 2
    assert "answer" in result.output


def test_check_unknown_checker_exits_2(answer_file: Path):
    result = runner.invoke(app, ["check", str(answer_file), "--checker", "coq"])
    assert result.exit_code == 2
    assert "unknown checker 'coq'" in result.output


@pytest.fixture
def restore_logging():
    """``serve`` configures logging for the process; undo it for the tests that follow."""
    logger = logging.getLogger("verifier_service")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.usefixtures("restore_logging")
def test_serve_refuses_an_unknown_checker_before_binding():
    result = runner.invoke(app, ["serve", "--checkers", "math,coq", "--port", "1"])
    assert result.exit_code == 2
    assert "unknown checker 'coq'" in result.output
