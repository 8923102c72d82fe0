"""The math checker as another revision had it, for side-by-side figures.

``load("main")`` imports that revision's ``verifier_service/checkers/math.py`` (read with
``git show``) as a module of its own, beside this tree's. It runs on this tree's other modules
(``math_shortcuts``, ``base``), which is what "the old checker" means in the figures: the old
reading and comparison, on the same math-verify and SymPy.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
MODULE = "verifier_service/checkers/math.py"


def load(rev: str = "main") -> ModuleType:
    """Revision ``rev``'s math checker module; raises ``RuntimeError`` when git cannot show it."""
    try:
        source = subprocess.run(
            ["git", "show", f"{rev}:{MODULE}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"cannot read {MODULE} at {rev!r} with git: {exc}") from exc
    name = f"sieve_math_at_{rev.replace('/', '_').replace('-', '_')}"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(tempfile.mkdtemp(prefix="sieve-baseline-")) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
