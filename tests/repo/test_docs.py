"""The manual is one site: every page is in mkdocs.yml's nav, README links to each, and it builds.

README.md is the front page and ``docs/`` the manual; a page left out of the nav or of README's
links is a page nobody finds, and a broken link or anchor fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docs import DOCS, MKDOCS, PAGES, README, REPO_ROOT, doc_pages


def _nav_pages(nav: list[Any]) -> list[str]:
    """The page paths of a nav, its sections flattened."""
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages.extend(_nav_pages(value))
        else:
            pages.append(value)
    return pages


def _pages() -> set[str]:
    return {page.relative_to(DOCS).as_posix() for page in doc_pages()}


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page():
    config = yaml.safe_load(MKDOCS.read_text("utf-8"))
    nav = _nav_pages(config["nav"])
    assert len(nav) == len(set(nav)), nav
    assert set(nav) == _pages()
    assert config.get("strict") is True
    assert config.get("docs_dir", "docs") == "docs"


def test_readme_links_to_every_page():
    linked = set(re.findall(r"\]\(docs/([^)#]+)", README.read_text("utf-8")))
    assert linked == _pages()


def test_the_tests_name_only_pages_that_exist():
    assert set(PAGES.values()) <= _pages()


def test_readme_gives_the_test_command_ci_runs():
    ci = (REPO_ROOT / ".ci" / "run").read_text("utf-8")
    readme = README.read_text("utf-8")
    commands = re.findall(r"^python -m pytest[^\n]*$", ci, re.MULTILINE)
    assert commands == ["python -m pytest -q"]
    assert "pip install torch==2.13.0 -e '.[dev]' && python -m pytest -q" in readme
    assert "python -m pip install -q 'torch==2.13.0'" in ci
    assert "python -m pip install -q -e '.[dev]'" in ci
    assert "docker compose up -d --build" in readme
    assert re.search(r"^python -m mkdocs build --strict --site-dir ", ci, re.MULTILINE)


def test_the_site_builds_strictly(tmp_path: Path):
    pytest.importorskip("mkdocs", reason="mkdocs is in the [dev] extra")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "index.html").is_file()
    for page in _pages() - {"index.md"}:
        assert (tmp_path / page.removesuffix(".md") / "index.html").is_file(), page


def _fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("page", ["README.md", "docs/api.md"])
def test_the_verify_example_is_the_api_s_own_shape(page: str):
    """The request and reply that README and the API page show parse as the API's schemas."""
    from verifier_service.api.schemas import VerifyRequest, VerifyResponse

    text = (REPO_ROOT / page).read_text("utf-8")
    (curl,) = [block for block in _fenced(text, "bash") if "localhost:8000/verify" in block]
    body = curl.split("-d '", 1)[1].rsplit("'", 1)[0]
    request = VerifyRequest.model_validate_json(body)
    assert [proof.id for proof in request.proofs] == ["p1", "m1"]
    (reply,) = [block for block in _fenced(text, "json") if '"results"' in block]
    response = VerifyResponse.model_validate_json(reply)
    assert [result.id for result in response.results] == ["p1", "m1"]
    assert {result.verdict for result in response.results} == {"valid"}
