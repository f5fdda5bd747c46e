"""The package's shape: imports flow one way, and one owner spells the run files' names.

Read from the source with `ast`, so imports inside functions count too: a circle that
works only because its imports are deferred is still a circle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bnexp"
RUN_FILES = ("config.yaml", "metrics.csv", "summary.json", "checkpoint.npz", "eval.json", "diag_")
OWNER = "bnexp.rundir"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """Every bnexp module `path` imports, at any depth of its code, as a module name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from bnexp import rundir` imports the module bnexp.rundir; `from bnexp.x import f` imports bnexp.x.
            found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module for a in node.names)
    return {name for name in found if name in MODULES and name != "bnexp"}


GRAPH = {name: imports(path) - {name} for name, path in MODULES.items()}


def test_the_graph_sees_imports_inside_functions():
    assert "bnexp.evaluate" in GRAPH["bnexp.training.trainer"]  # only inside Trainer.__init__
    assert "bnexp.present.training" in GRAPH["bnexp.cli"]  # only inside the train command


def test_no_import_circle_among_bnexp_modules():
    done, path = set(), []

    def visit(name: str) -> None:
        if name in path:
            pytest.fail("import circle: " + " → ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        path.append(name)
        for other in sorted(GRAPH[name]):
            visit(other)
        path.pop()
        done.add(name)

    for name in MODULES:
        visit(name)


@pytest.mark.parametrize("name", [n for n in MODULES if not (n == OWNER or n.startswith(OWNER + "."))])
def test_only_the_run_directory_owner_spells_a_run_files_name(name):
    text = MODULES[name].read_text()
    assert [f for f in RUN_FILES if f in text] == []


def test_the_run_directory_owner_imports_no_tensorflow_and_nothing_above_config():
    owner = {n for n in MODULES if n == OWNER or n.startswith(OWNER + ".")}
    allowed = owner | {"bnexp.config", "bnexp.errors", "bnexp.status"}
    for name in owner:
        assert GRAPH[name] <= allowed, name
        imports = re.findall(r"^\s*(?:import|from)\s+(\w+)", MODULES[name].read_text(), re.MULTILINE)
        assert not {"tensorflow", "keras"} & set(imports), name  # it may name TensorFlow, never import it


STATUS_MODULE = "bnexp.status"
STATUS_WORDS = {"pending", "running", "completed", "interrupted", "diverged", "failed"}


def string_literals(path: Path) -> list[tuple[int, str]]:
    """Every string constant in `path` outside docstrings, with its line."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_string_literals_sees_code_and_skips_docstrings(tmp_path):
    source = tmp_path / "m.py"
    source.write_text('"""completed."""\ndef f():\n    """interrupted."""\n    return "completed"\n')
    assert string_literals(source) == [(4, "completed")]


@pytest.mark.parametrize("name", [n for n in MODULES if n != STATUS_MODULE])
def test_run_status_words_are_spelled_only_by_the_status_enum(name):
    """`completed` and `interrupted` only as bnexp.status.Status, anywhere; the other status
    words are also metric names and messages, so only these two are checked everywhere."""
    assert [(line, text) for line, text in string_literals(MODULES[name]) if text in ("completed", "interrupted")] == []


MAX_LINES = 400
SIZE_REASON = "Over 400 lines because"


@pytest.mark.parametrize("name", list(MODULES))
def test_no_module_is_over_400_lines_without_its_reason(name):
    """A module longer than MAX_LINES does more than one job, unless its docstring says why not."""
    path = MODULES[name]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES or SIZE_REASON in (ast.get_docstring(ast.parse(path.read_text())) or ""), (name, lines)
