"""The notebooks under notebooks/, executed by a real kernel (papermill on nbclient) at smoke scale.

Each must run without an error, write its record through the Python API and show its figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, needs_module
from usecases.records.record import load_record
from usecases.reporting.viewer import library_js

NOTEBOOKS = REPO / "notebooks"


def _execute(name: str, tmp_path: Path, **parameters) -> dict:
    papermill = needs_module("papermill", "papermill is not installed (the notebooks extra)")
    out = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(out),
        parameters=parameters,
        cwd=str(REPO),
        kernel_name="python3",
        progress_bar=False,
    )  # fmt: skip  (papermill raises PapermillExecutionError when a cell raises)
    return json.loads(out.read_text())


def _outputs(book: dict, kind: str) -> list:
    return [o for c in book["cells"] for o in c.get("outputs", []) if kind in o.get("data", {})]


def test_the_covid_ct_notebook_trains_and_shows_dice_and_parity(tmp_path, prepared_cache):
    extra = ["scale.epochs=2", "usecase.export.int8=false", f"cache_dir={prepared_cache}"]
    book = _execute("covid_ct", tmp_path, results_dir=str(tmp_path), extra=extra)
    (run_dir,) = (tmp_path / "covid_ct").iterdir()
    record = load_record(run_dir / "record.json")
    assert record.status == "ok" and record.metrics["epochs_run"] == 2
    assert len(_outputs(book, "image/png")) == 1  # Dice vs threshold, with the published curve
    text = json.dumps(book)
    assert "onnx_parity: passed" in text and "images/s" in text


def test_the_colabfold_notebook_folds_and_shows_plddt_and_structure(tmp_path):
    needs_module("colabfold", "ColabFold is not installed (install the colabfold extra)")
    book = _execute("colabfold_spike", tmp_path, results_dir=str(tmp_path), max_length=24)
    (run_dir,) = (tmp_path / "colabfold_spike").iterdir()
    record = load_record(run_dir / "record.json")
    assert record.status == "ok" and len(record.metrics["plddt_per_residue_best"]) == 24
    assert len(_outputs(book, "image/png")) == 2  # pLDDT per residue, the 3-D CA trace
    (view,) = _outputs(book, "text/html")  # the interactive view, its library inlined
    page = "".join(view["data"]["text/html"])
    assert "$3Dmol.createViewer" in page and library_js() in page and "ATOM" in page


def test_the_compare_notebook_shows_the_gate_table_and_the_report(tmp_path):
    book = _execute("compare_runs", tmp_path, out=str(tmp_path / "report"))
    text = json.dumps(book)
    assert "gate: PASS" in text and "metrics/0.3/dice_pooled" in text
    assert _outputs(book, "text/html") and (tmp_path / "report" / "report.html").is_file()


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_carry_no_outputs(path):
    book = json.loads(path.read_text())
    assert all(not c.get("outputs") and not c.get("execution_count") for c in book["cells"]
               if c["cell_type"] == "code")  # fmt: skip
