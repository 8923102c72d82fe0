"""The project's own paperwork stays in one piece: the licence pyproject names is there, the
version is written once, the changelog has an entry for it, and both packages ship their types."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import trainer_client
import verifier_service

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("verifier_service", "trainer_client")
#: What mypy checks, in CI and before each commit: the packages and the code that uses them.
TYPE_CHECKED = (*PACKAGES, "examples", "benchmarks")


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))


def test_the_licence_pyproject_names_is_the_full_apache_text(pyproject):
    assert pyproject["project"]["license"] == {"text": "Apache-2.0"}
    text = (REPO_ROOT / "LICENSE").read_text("utf-8")
    assert text.lstrip().startswith("Apache License\n                           Version 2.0")
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text) > 11_000  # the whole licence, not a pointer to it


def test_the_version_is_written_once(pyproject):
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "verifier_service.__version__"}
    assert trainer_client.__version__ is verifier_service.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", verifier_service.__version__)
    written = [
        str(path.relative_to(REPO_ROOT))
        for package in PACKAGES
        for path in (REPO_ROOT / package).rglob("*.py")
        if re.search(r"^__version__\s*=", path.read_text("utf-8"), re.MULTILINE)
    ]
    assert written == ["verifier_service/__init__.py"]


def test_the_changelog_has_an_unreleased_section_and_the_current_version():
    text = (REPO_ROOT / "CHANGELOG.md").read_text("utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert verifier_service.__version__ in headings
    for heading in headings:  # each has its link at the foot, as Keep a Changelog writes them
        assert re.search(rf"^\[{re.escape(heading)}\]: \S+", text, re.MULTILINE), heading


def test_both_packages_ship_py_typed(pyproject):
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    for package in PACKAGES:
        assert (REPO_ROOT / package / "py.typed").is_file(), package
        assert package_data[package] == ["py.typed"]


def test_project_urls_name_the_source_issues_and_changelog(pyproject):
    urls = pyproject["project"]["urls"]
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())


def test_pre_commit_runs_ruff_the_formatter_and_mypy_from_the_environment():
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text("utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff", "ruff-format", "mypy"}
    assert hooks["ruff"]["entry"].startswith("ruff check")
    assert hooks["ruff-format"]["entry"].startswith("ruff format")
    assert hooks["mypy"]["entry"].split()[0] == "mypy"
    assert set(hooks["mypy"]["entry"].split()[1:]) == set(TYPE_CHECKED)
    # local hooks with the environment's tools: nothing to fetch, the same versions as CI
    assert all(repo["repo"] == "local" for repo in config["repos"])
    assert {hook["language"] for hook in hooks.values()} == {"system"}


def test_ci_type_checks_the_hook_targets_before_the_tests(pyproject):
    lines = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text("utf-8").splitlines()]
    mypy = next(i for i, line in enumerate(lines) if line.startswith("python -m mypy "))
    assert set(lines[mypy].split()[3:]) == set(TYPE_CHECKED)
    assert mypy < lines.index("python -m pytest -q")
    assert any(line.startswith("python -m pip install -q -e '.[dev]'") for line in lines[:mypy])
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    assert any(re.match(r"mypy\b", requirement) for requirement in dev)
