"""``docker/verifier.Dockerfile`` and its entrypoint, checked without a Docker engine."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import PurePosixPath
from typing import Any

import pytest

from tests.docs import doc_text

from .conftest import DOCKERIGNORE, ENTRYPOINT, REPO_ROOT, SETTINGS_VARIABLES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None


INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def test_every_line_belongs_to_an_instruction(dockerfile: Any) -> None:
    """A line that lost its ``\\`` continuation would start a bogus instruction."""
    unknown = [i for i in dockerfile.instructions if i.keyword not in INSTRUCTIONS]
    assert not unknown, unknown
    # lean, lean-double, lean-tree (the one LEAN_STAGE names), verifier
    assert [i.keyword for i in dockerfile.instructions].count("FROM") == 4


def test_sieve_variables_in_the_image_are_settings(dockerfile: Any) -> None:
    names = set(dockerfile.env())
    assert {"SIEVE_LEAN_REPL", "SIEVE_LEAN_CWD", "SIEVE_LEAN_READONLY_PATHS"} <= names
    text = "\n".join(i.arguments for i in dockerfile.instructions) + ENTRYPOINT.read_text()
    mentioned = set(re.findall(r"\bSIEVE_[A-Z0-9_]+\b", text))
    assert {"SIEVE_LEAN_TOOLCHAIN", "SIEVE_MATHLIB_REV", "SIEVE_REPL_REV"} <= mentioned
    unknown = mentioned - set(SETTINGS_VARIABLES)
    assert not unknown, f"not VerifierSettings fields: {sorted(unknown)}"


def test_lean_settings_point_into_the_image(dockerfile: Any) -> None:
    env = dockerfile.env(stage=dockerfile.final_stage)
    repl = shlex.split(env["SIEVE_LEAN_REPL"])
    assert repl[:2] == ["lake", "env"]
    assert repl[2].startswith("/opt/repl/")
    readonly = env["SIEVE_LEAN_READONLY_PATHS"].split(",")
    assert env["SIEVE_LEAN_CWD"] in readonly
    assert all(path.startswith("/opt/") for path in readonly)
    for path in readonly:
        assert any(copy.split()[-1] == path for copy in dockerfile.all("COPY")), path


def test_build_arguments(dockerfile: Any) -> None:
    args = dict(arg.partition("=")[::2] for arg in dockerfile.all("ARG"))
    assert re.fullmatch(r"v4\.\d+\.\d+", args["LEAN_VERSION"]), args["LEAN_VERSION"]
    assert {"MATHLIB_REV", "REPL_REV"} <= set(args)
    runs = " ".join(dockerfile.all("RUN"))
    assert "${MATHLIB_REV:-${LEAN_VERSION}}" in runs
    assert "${REPL_REV:-${LEAN_VERSION}}" in runs
    assert "4fc1e6d" in runs, "old REPL tags need the end-of-line flush fix"
    assert "lake exe cache get" in runs


def test_runs_as_a_non_root_user(dockerfile: Any) -> None:
    users = dockerfile.all("USER", stage=dockerfile.final_stage)
    assert users, "the final stage never drops root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_sandbox_and_init_are_installed(dockerfile: Any) -> None:
    installs = " ".join(
        run for run in dockerfile.all("RUN", stage=dockerfile.final_stage) if "apt-get" in run
    )
    assert "bubblewrap" in installs
    assert "tini" in installs
    entrypoint = shlex.split(dockerfile.all("ENTRYPOINT")[-1].replace(",", " ").strip("[]"))
    assert entrypoint[:2] == ["tini", "--"]


def test_healthcheck_probes_health(dockerfile: Any) -> None:
    (check,) = dockerfile.all("HEALTHCHECK")
    assert re.search(r"http://127\.0\.0\.1:\$\{SIEVE_PORT\}/health", check), check


def test_command_is_an_installed_console_script(dockerfile: Any) -> None:
    command = shlex.split(dockerfile.all("CMD")[-1].replace(",", " ").strip("[]"))
    assert command == ["sieve-verifier", "serve"]
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert command[0] in project["scripts"]
    assert "verifier" in project["optional-dependencies"]
    assert any('".[verifier]"' in run for run in dockerfile.all("RUN"))


def test_copied_sources_are_in_the_build_context(dockerfile: Any) -> None:
    included = [
        line[1:].strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    ]
    for copy in dockerfile.all("COPY"):
        if copy.startswith("--from="):
            continue
        *sources, _destination = shlex.split(copy)
        for source in sources:
            # a source is in the context when it, or a directory above it, is re-included
            parents = [source, *(str(p) for p in PurePosixPath(source).parents)]
            assert set(parents) & set(included), f"{source} is excluded by .dockerignore"
            if source != "README.md":  # written by the docs, required by pyproject's readme
                assert (REPO_ROOT / source).exists(), source


def test_entrypoint_exports_recorded_versions_unless_set(tmp_path: Any) -> None:
    build_env = tmp_path / "build.env"
    build_env.write_text(
        "# recorded at build time\n"
        "SIEVE_MATHLIB_REV=v4.9.0@0123456789ab\n"
        "SIEVE_REPL_REV=v4.9.0@ba9876543210+4fc1e6d\n"
        "SIEVE_LEAN_TOOLCHAIN=leanprover/lean4:v4.9.0"  # no final newline
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "BUILD_ENV_FILE": str(build_env),
        "SIEVE_MATHLIB_REV": "set-by-operator",
        "SERVICE_USER": "nobody",  # as root (CI) the entrypoint switches to this user
    }
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "env"], env=env, capture_output=True, text=True, check=True
    )
    exported = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert exported["SIEVE_MATHLIB_REV"] == "set-by-operator"
    assert exported["SIEVE_REPL_REV"] == "v4.9.0@ba9876543210+4fc1e6d"
    assert exported["SIEVE_LEAN_TOOLCHAIN"] == "leanprover/lean4:v4.9.0"


def test_entrypoint_runs_the_command_without_a_build_env(tmp_path: Any) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "BUILD_ENV_FILE": str(tmp_path / "absent"),
        "SERVICE_USER": "nobody",
    }
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "sh", "-c", "exit 7"], env=env, capture_output=True, check=False
    )
    assert result.returncode == 7


def test_run_commands_are_valid_shell(dockerfile: Any) -> None:
    """``bash -n`` on every RUN: catches a lost quote or ``fi`` without building anything."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    runs = dockerfile.all("RUN")
    assert runs
    for run in runs:
        result = subprocess.run([bash, "-n", "-c", run], capture_output=True, text=True)
        assert result.returncode == 0, f"{result.stderr}\nin: RUN {run[:200]}"
    entrypoint = subprocess.run(["sh", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert entrypoint.returncode == 0, entrypoint.stderr


# --- the sandbox in the image (issue: the sandbox must hold inside Docker) --------------------

DOCKERFILE_TEXT = (REPO_ROOT / "docker" / "verifier.Dockerfile").read_text()


def test_image_refuses_to_run_proofs_unsandboxed(dockerfile: Any) -> None:
    env = dockerfile.env(stage=dockerfile.final_stage)
    assert env["SIEVE_LEAN_SANDBOX"] == "bwrap"
    assert (env["SIEVE_LEAN_SANDBOX_UID"], env["SIEVE_LEAN_SANDBOX_GID"]) == ("10001", "10001")


def test_service_and_lean_users(dockerfile: Any) -> None:
    runs = " ".join(dockerfile.all("RUN", stage=dockerfile.final_stage))
    assert "groupadd --system --gid 10000 sieve" in runs
    assert "useradd --system --uid 10000 --gid 10000" in runs
    assert "groupadd --system --gid 10001 lean" in runs
    assert "useradd --system --uid 10001 --gid 10001" in runs
    assert dockerfile.all("USER", stage=dockerfile.final_stage)[-1] == "10000:10000"


def test_revisions_are_checked_before_anything_is_built(dockerfile: Any) -> None:
    runs = dockerfile.all("RUN")
    check = next(i for i, run in enumerate(runs) if "git ls-remote --exit-code" in run)
    elan = next(i for i, run in enumerate(runs) if "elan-init.sh" in run)
    assert check < elan, "a missing REPL_REV must fail before the toolchain is installed"
    assert "must be an existing tag, branch or commit" in runs[check]
    assert '"${REPL_REV:-${LEAN_VERSION}}"' in runs[check]
    assert '"${MATHLIB_REV:-${LEAN_VERSION}}"' in runs[check]
    assert "v4.11.0, v4.12.0, v4.13.0, v4.20.0" in runs[check]


def test_end_of_line_fix_is_decided_by_ancestry(dockerfile: Any) -> None:
    runs = " ".join(dockerfile.all("RUN"))
    assert "git merge-base --is-ancestor 4fc1e6d HEAD" in runs
    assert "sort -V" not in runs, "sort -V orders v4.9.0-rc1 and v4.10.0-rc1 wrongly"


def test_mathlib_cache_miss_fails_fast(dockerfile: Any) -> None:
    (run,) = [run for run in dockerfile.all("RUN") if "lake exe cache get" in run]
    after = run.split("lake exe cache get", 1)[1]
    assert "lake build --no-build" in after
    assert re.search(r"lake build(?! --no-build)", after) is None, "never a full build"


def test_permissions_are_set_where_each_tree_is_made(dockerfile: Any) -> None:
    runs = dockerfile.all("RUN")
    for tree, maker in [
        ("/opt/elan", "elan-init.sh"),
        ("/opt/repl", 'fetch-rev "${REPL_URL}"'),
        ("/opt/mathlib4", "lake exe cache get"),
    ]:
        (run,) = [run for run in runs if maker in run]
        assert f"chmod -R a+rX,go-w {tree}" in run, tree
    for run in runs:  # no layer that only re-chmods trees made earlier
        assert not re.fullmatch(r"\s*chmod -R [^&]*", run), run
        if "chmod -R" in run:
            trees = re.findall(r"chmod -R \S+ ([^&]+)", run)
            assert all(len(t.split()) == 1 for t in trees), run


def test_build_needs_are_stated() -> None:
    assert "30 GB of free disk" in DOCKERFILE_TEXT
    assert "7 GB of RAM" in DOCKERFILE_TEXT
    manual = doc_text("docker")
    assert "30 GB" in manual and "7 GB" in manual


def _entrypoint_status(mode: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "BUILD_ENV_FILE": "/nonexistent",
        "SERVICE_USER": "nobody",
        "SIEVE_LEAN_SANDBOX": mode,
    }
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "cat", "/proc/self/status"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(line.split(":\t", 1) for line in done.stdout.splitlines() if ":\t" in line)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is not installed")
def test_entrypoint_started_as_root_never_runs_the_service_as_root() -> None:
    status = _entrypoint_status("bwrap")
    assert status["Uid"].split()[0] == "65534"
    for field in ("CapEff", "CapPrm", "CapAmb", "CapBnd"):
        assert int(status[field], 16) == 0, field
    # uid mode keeps exactly CAP_SETUID, CAP_SETGID and CAP_KILL, for starting and killing Lean
    status = _entrypoint_status("uid")
    assert status["Uid"].split()[0] == "65534"
    wanted = (1 << 5) | (1 << 6) | (1 << 7)
    assert int(status["CapEff"], 16) == wanted and int(status["CapAmb"], 16) == wanted
    assert int(status["CapBnd"], 16) == wanted


# --- the image without Lean (LEAN_STAGE=lean-double; deploy/smoke.sh builds and runs it) --------


def _stages(dockerfile: Any) -> dict[str, int]:
    """Stage name -> index, from ``FROM IMAGE AS NAME``."""
    names = {}
    for instruction in dockerfile.instructions:
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            names[words[-1]] = instruction.stage
    return names


def test_lean_stage_is_chosen_by_a_build_argument(dockerfile: Any) -> None:
    stages = _stages(dockerfile)
    assert list(stages) == ["lean", "lean-double", "lean-tree", "verifier"]
    global_args = [
        i.arguments for i in dockerfile.instructions if i.keyword == "ARG" and i.stage < 0
    ]
    assert "LEAN_STAGE=lean" in global_args, "the real Lean stage is the default"
    froms = dockerfile.all("FROM")
    assert froms[stages["lean-tree"]] == "${LEAN_STAGE} AS lean-tree"
    assert not dockerfile.all("RUN", stage=stages["lean-tree"]), "lean-tree only names a stage"
    # the service stage takes Lean only through lean-tree, so both builds share every later layer
    copies = [c for c in dockerfile.all("COPY") if c.startswith("--from=")]
    assert copies and all(c.startswith("--from=lean-tree ") for c in copies), copies


def test_double_stage_provides_what_the_real_stage_does(dockerfile: Any) -> None:
    stages = _stages(dockerfile)
    double = stages["lean-double"]
    text = " ".join(dockerfile.all("RUN", stage=double) + dockerfile.all("COPY", stage=double))
    for copy in dockerfile.all("COPY"):
        if copy.startswith("--from=lean-tree "):
            source = copy.split()[1]
            assert source in text, f"the double stage never makes {source}"
    env = dockerfile.env(stage=dockerfile.final_stage)
    repl = shlex.split(env["SIEVE_LEAN_REPL"])
    assert f"> {repl[2]}" in text, "the double must answer at the real REPL's path"
    # lake on PATH is a link from /opt/lean/bin into a toolchain under /opt/elan, as elan makes
    assert 'ln -s "${toolchain}/bin/${tool}" "/opt/lean/bin/${tool}"' in text
    assert "toolchain=/opt/elan/toolchains/" in text
    for tree in ("/opt/elan", "/opt/repl", "/opt/mathlib4"):
        assert f"chmod -R a+rX,go-w {tree}" in text, tree
    assert "--no-transcripts" in text, "the image carries no recordings"
    # the same smoke test as the real stage: uid nobody runs the command from the Mathlib dir
    (smoke,) = [run for run in dockerfile.all("RUN", stage=double) if "sieve_smoke" in run]
    assert "cd /opt/mathlib4" in smoke and "--reuid=nobody" in smoke
    assert "lake env /opt/repl/.lake/build/bin/repl" in smoke
    # and it records itself as what it is, in the service's checker versions
    assert "SIEVE_REPL_REV=repl-double" in text


def test_double_stage_ships_the_lexer_it_answers_the_trusted_programs_with(
    dockerfile: Any,
) -> None:
    """Without the lexer beside it, the double answers the parse program with a REPL error and
    every proof in the image is ``error`` (``parse_unavailable``): smoke.sh found it so."""
    from verifier_service.testing import repl_double

    double = _stages(dockerfile)["lean-double"]
    copies = [c.split() for c in dockerfile.all("COPY", stage=double)]
    (lexer,) = [c for c in copies if any("soundness/" in part for part in c[:-1])]
    shipped = {PurePosixPath(part).name for part in lexer[:-1]}
    needed = {f"{name}.py" for name in repl_double.LEXER_MODULES}
    assert needed <= shipped, needed - shipped
    target = lexer[-1].rstrip("/")
    wrapper = " ".join(dockerfile.all("RUN", stage=double))
    assert f"--lexer {target}" in wrapper


def test_no_frontend_image_is_pulled() -> None:
    """``# syntax=`` makes BuildKit pull a frontend image from a registry on every build; the
    built-in frontend reads this file, and a build without a registry must work."""
    first = DOCKERFILE_TEXT.splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE), first


def test_pip_index_is_a_build_argument(dockerfile: Any) -> None:
    """deploy/smoke.sh (and a mirror) point pip elsewhere without editing the file."""
    final = dockerfile.final_stage
    args = dict(arg.partition("=")[::2] for arg in dockerfile.all("ARG", stage=final))
    assert args.get("PIP_INDEX_URL") == "https://pypi.org/simple"
