"""The repository stands on its own: what the tests, configs and README use is vendored, each file
with its source and licence in ``NOTICE``, and nothing reaches for a folder beside the checkout."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from verifier_service import vendored
from verifier_service.testing import repl_double

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTICE = (REPO_ROOT / "NOTICE").read_text("utf-8")
DATA_SETS = sorted(p.name for p in vendored.DATA.iterdir() if p.suffix in {".jsonl", ".parquet"})
#: Text files of the repository's own (the vendored folders are checked by the other tests).
OWN_TEXT = (".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sh", ".txt", "Dockerfile")
OWN_FOLDERS = ("verifier_service", "trainer_client", "tests", "benchmarks", "configs", "deploy")


def test_the_helper_points_into_this_checkout():
    assert vendored.REPO_ROOT == REPO_ROOT
    assert vendored.DATA == REPO_ROOT / "data"
    assert vendored.TRANSCRIPTS.is_dir()
    assert sorted(p.name for p in vendored.TRANSCRIPTS.iterdir()) == ["core", "mathlib"]


def test_the_five_data_sets_are_vendored():
    assert DATA_SETS == [
        "mff-lwb-10k-seen.parquet",
        "mff-lwb-unseen-200.parquet",
        "minif2f.jsonl",
        "proofnet.jsonl",
        "prover_proofs.jsonl",
    ]
    assert vendored.data_file("minif2f.jsonl") == REPO_ROOT / "data" / "minif2f.jsonl"


@pytest.mark.parametrize("name", DATA_SETS)
def test_notice_and_the_data_readme_name_each_data_set(name):
    assert f"data/{name}" in NOTICE
    assert f"`{name}`" in (vendored.DATA / "README.md").read_text("utf-8")


def test_every_licence_notice_names_is_there():
    licences = set(re.findall(r"Licence: [\w.-]+, (\S+)", NOTICE))
    assert licences == {
        "tests/fixtures/lean-repl/LICENSE",
        "data/LICENSE-MIT-DeepSeek-Prover-V1.5",
        "data/LICENSE-Apache-2.0",
    }
    for path in licences:
        assert (REPO_ROOT / path).is_file(), path
    for folder in ("core", "mathlib"):
        assert f"tests/fixtures/lean-repl/transcripts/{folder}/" in NOTICE


def test_the_do_not_train_note_heads_the_data_readme_and_notice():
    readme = (vendored.DATA / "README.md").read_text("utf-8")
    assert "**Do not train on `prover_proofs.jsonl`.**" in readme.split("\n## ")[0][:400]
    assert "DO NOT TRAIN ON IT" in NOTICE


def test_the_double_replays_the_vendored_transcripts_by_default():
    assert repl_double.default_transcripts() == vendored.TRANSCRIPTS


def test_a_lone_copy_of_the_double_has_no_default_transcripts(tmp_path):
    """The sandbox tests run the double as one copied file: it must not find another checkout."""
    copy = tmp_path / "repl_double.py"
    copy.write_text(Path(repl_double.__file__).read_text("utf-8"), "utf-8")
    script = f"import runpy; print(runpy.run_path({str(copy)!r})['default_transcripts']())"
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def _own_text_files() -> list[Path]:
    names = ("README.md", "mkdocs.yml", "pyproject.toml", "docker-compose.yml")
    files = [REPO_ROOT / name for name in names] + sorted((REPO_ROOT / "docs").rglob("*.md"))
    for folder in (*OWN_FOLDERS, "docker", ".ci"):
        for path in (REPO_ROOT / folder).rglob("*"):
            if "fixtures" in path.parts or "__pycache__" in path.parts or not path.is_file():
                continue
            if path.name.endswith(OWN_TEXT) or path.parent.name == ".ci":
                files.append(path)
    return files


def test_nothing_refers_to_a_folder_beside_the_checkout():
    # Spelled in pieces so that this file does not match itself.
    word = "shared"
    quoted = rf"[\"']{word}[\"']"
    beside = re.compile(rf"\.\./{word}|{word}/(data|lean-repl)|{quoted}\s*/|/\s*{quoted}")
    files = _own_text_files()
    assert len(files) > 100
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text("utf-8", "replace").splitlines(), 1)
        if beside.search(line)
    ]
    assert found == []
