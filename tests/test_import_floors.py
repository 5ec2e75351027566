"""Import floors of the package: models -> weights (and torch_twin) -> convert -> train / data -> api -> commands.

A module may import its own floor and the floors below it, never one above, not even inside a function. Parsed
with `ast` (nothing is imported), so a violation names the file, line and imported module. Command-line parsing
(argparse) lives only on the top floor: `mat_jax/cli.py` and `mat_jax/commands/`.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "mat_jax"

# Longest matching prefix wins.
FLOORS = {
    "mat_jax": 0,  # the package root (version only) and the dependency-free helpers below
    "mat_jax.runtime": 0,
    "mat_jax.viz": 0,
    "mat_jax.kernels": 0,  # convolution algorithms for XLA:CPU (nothing of MAT); models call them
    "mat_jax.models": 0,  # Flax networks; models.config / models.constants are numpy-only
    "mat_jax.weights": 1,  # the layout table, its validator and CheckpointError (numpy-only)
    "mat_jax.torch_twin": 1,  # the PyTorch twin: builds from models.config / models.constants
    "mat_jax.convert": 2,  # checkpoint files and formats
    "mat_jax.train": 3,
    "mat_jax.data": 3,
    "mat_jax.config": 3,  # configs/*.py loading (training / commands configuration)
    "mat_jax.inference": 3,
    "mat_jax.fit": 3,  # any-size images through the fixed-grid model (pad, batched variants, paste back)
    "mat_jax.eval": 3,  # offline metrics (numpy / scipy / sklearn) and the Inception FID network
    "mat_jax.api": 4,
    "mat_jax.serve": 4,  # the web page's API and HTTP server (stdlib http.server), no argparse
    "mat_jax.study": 4,  # ablation sweeps and their comparison (the sample strip loads generators via api)
    "mat_jax.commands": 5,
    "mat_jax.cli": 5,
    "mat_jax.__main__": 5,  # entry points (`python -m mat_jax`, `python -m mat_jax.train`) sit with the CLI
    "mat_jax.train.__main__": 5,
}


def floor_of(module: str) -> int:
    best = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len, default=None)
    if best is None:
        raise AssertionError(f"{module} is on no floor: add its package to FLOORS in {__file__}")
    return FLOORS[best]


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    """`from pkg import sub` imports the submodule pkg.sub when there is one."""
    where = PACKAGE.parent / name.replace(".", "/")
    return where.is_dir() or where.with_suffix(".py").is_file()


def _imports(path: pathlib.Path):
    """(line, imported module, inside a function) for every mat_jax import of the file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def in_function(node):
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return True
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from . import x` is the package, each further dot one level up
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names]
        else:
            continue
        for name in names:
            if name == "mat_jax" or name.startswith("mat_jax."):
                yield node.lineno, name, in_function(node)


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_upward_import(path):
    mine = floor_of(_module_name(path))
    bad = [
        f"{path.name}:{line} imports {name} (floor {floor_of(name)} > {mine})"
        for line, name, _ in _imports(path)
        if floor_of(name) > mine
    ]
    assert bad == []


def test_argparse_only_in_the_cli_and_commands():
    def imports_argparse(path):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names):
                return True
            if isinstance(node, ast.ImportFrom) and node.module == "argparse":
                return True
        return False

    cli_floor = {PACKAGE / "cli.py", *(PACKAGE / "commands").glob("*.py")}
    assert sorted(str(p.relative_to(PACKAGE)) for p in FILES if imports_argparse(p) and p not in cli_floor) == []
    assert imports_argparse(PACKAGE / "cli.py")


def test_layout_table_and_formats_import_without_jax_or_flax():
    """The layout table, the validator and the file formats are numpy-only at import (a fresh interpreter)."""
    code = (
        "import sys, mat_jax.weights.layout, mat_jax.convert.formats, mat_jax.convert.nets, mat_jax.models.config\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'flax', 'orbax'))\n"
        "assert not bad, bad\n"
        "from mat_jax.weights.layout import build_table\n"
        "from mat_jax.models.config import MATConfig\n"
        "assert len(build_table(MATConfig(resolution=256), 'G')) == 442\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
