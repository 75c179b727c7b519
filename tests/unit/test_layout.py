"""The package's import directions, as the README's Layout section states them.

config -> run -> use case -> one record -> consumers (report, gate, studies). Every import
in usecases/ (module level or inside a function) is read with ``ast`` and checked against
the rules below; a new arrow the design does not allow fails here with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "usecases"
SHARED = {"errors", "paths", "numbers"}  # leaves anyone may import
USECASES = {"covid_ct", "colabfold_spike"}
CONSUMERS = {"reporting", "gate", "studies"}
# what each top-level part may import besides itself and the shared leaves
ALLOWED = {
    "errors": set(),
    "paths": set(),
    "numbers": set(),
    "data": set(),
    "records": {"data.checksums"},  # identity.py: the one sha256 helper
    "measure": set(),
    "runner": {"data", "measure", "records", *USECASES, "reporting", "studies"},
    "covid_ct": {"data", "measure", "records"},
    "colabfold_spike": {"data", "measure", "records"},
    "reporting": {"records", "covid_ct.data", "covid_ct.evaluate", "colabfold_spike.pdb"},
    "gate": {"records"},
    "studies": {"records", "covid_ct.evaluate"},
    "bench": {"data", "measure", "records", "runner.devices", *USECASES},
    "api": {"records", "runner", "gate", "reporting"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module below usecases) of every ``usecases.*`` import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "usecases":
                names = [f"usecases.{a.name}" for a in node.names]
            else:
                names = [node.module]
        else:
            continue
        found += [
            (node.lineno, n.removeprefix("usecases.")) for n in names if n.startswith("usecases.")
        ]
    return found


def _part(module: str) -> str:
    return module.split(".")[0]


def _allowed(importer: str, target: str) -> bool:
    if _part(target) in SHARED or _part(target) == _part(importer):
        return True
    return any(target == a or target.startswith(a + ".") for a in ALLOWED[_part(importer)])


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return ".".join(p for p in rel.parts if p != "__init__") or "__init__"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_import_follows_the_data_flow(path):
    importer = _module(path)
    if importer == "__init__":
        return
    bad = [f"{path.name}:{line} imports usecases.{t}" for line, t in _imports(path)
           if not _allowed(importer, t)]  # fmt: skip
    assert not bad, f"{importer} may import only {sorted(ALLOWED[_part(importer)])}: {bad}"


def test_only_the_run_machinery_calls_the_report():
    callers = {
        _module(p)
        for p in MODULES
        if _part(_module(p)) != "reporting" and any(_part(t) == "reporting" for _, t in _imports(p))
    }
    assert callers == {"runner.app", "runner.study", "api"}


def test_no_consumer_reads_another_consumers_internals():
    for path in MODULES:
        importer = _part(_module(path))
        if importer in CONSUMERS:
            others = {_part(t) for _, t in _imports(path)} & (CONSUMERS - {importer})
            assert not others, f"{path} imports {others}"


def test_the_checker_sees_a_forbidden_arrow(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from usecases.gate import compare_sets\n")
    ((line, target),) = _imports(planted)
    assert (line, target) == (2, "gate") and not _allowed("covid_ct.usecase", target)


def test_no_module_is_over_350_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in MODULES
        if (n := len(p.read_text().splitlines())) > 350
    }
    assert not long
