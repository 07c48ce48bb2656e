"""Architecture rules: data flows one way (docs/design.md), so the generators never import the distiller."""
import ast
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATOR_FILES = sorted(glob.glob(os.path.join(ROOT, "generators", "**", "*.py"), recursive=True))
FORBIDDEN = "dfkd.distill"


PACKAGE = "dfkd.generators"  # what generators/ is installed as (setup.cfg package_dir)


def _imported_modules(tree: ast.AST, package: str = PACKAGE):
    """``(line, module)`` of every import anywhere in ``tree`` (module level, inside functions and classes, under
    ``if TYPE_CHECKING``): ``import a.b`` gives ``a.b``, ``from a.b import c`` gives ``a.b`` and ``a.b.c`` (``c``
    may be a submodule); relative imports are resolved against ``package`` (``from ..distill import x`` in
    ``dfkd.generators`` is ``dfkd.distill``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            yield node.lineno, str(node.args[0].value)


def _violations(source: str, path: str = "<string>"):
    return [f"{path}:{line}: imports {module}" for line, module in _imported_modules(ast.parse(source, path))
            if module == FORBIDDEN or module.startswith(FORBIDDEN + ".")]


def test_the_generator_files_are_found():
    names = {os.path.basename(p) for p in GENERATOR_FILES}
    assert {"__init__.py", "base.py", "prior.py", "adversarial.py", "conditional.py"} <= names


@pytest.mark.parametrize("path", GENERATOR_FILES, ids=lambda p: os.path.relpath(p, ROOT))
def test_generators_never_import_the_distiller(path):
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    assert not _violations(source, os.path.relpath(path, ROOT))


def test_the_rule_catches_every_form_of_import():
    caught = [
        "import dfkd.distill",
        "import dfkd.distill.distributed as d",
        "from dfkd.distill import distributed",
        "from dfkd.distill.distributed import shard_bounds",
        "from dfkd import distill",
        "def f():\n    from dfkd.distill.distributed import all_reduce_sum\n",
        "class A:\n    def f(self):\n        import dfkd.distill.api\n",
        "import importlib\nimportlib.import_module('dfkd.distill.distributed')",
        "from ..distill import distributed",
        "from .. import distill",
    ]
    for source in caught:
        assert _violations(source), source
    for source in ("from dfkd.parallel import shard_bounds", "import dfkd.distillery", "from dfkd import nn",
                   "from . import base", "# from dfkd.distill import x"):
        assert not _violations(source), source


@pytest.mark.parametrize("module", ["dfkd", "dfkd.generators", "dfkd.parallel"])
def test_imports_in_a_fresh_interpreter(module):
    """No import cycle: each entry point imports first in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
