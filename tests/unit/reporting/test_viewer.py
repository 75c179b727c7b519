"""The interactive 3-D view: the pinned 3Dmol.js, the best model's PDB, and a page whose CSP
allows exactly its inline scripts (tests/e2e/test_report_browser.py draws it in Chromium)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from tests.report_pages import colabfold_record
from usecases.errors import DataError
from usecases.reporting import viewer
from usecases.reporting.blocks import Viewer3D
from usecases.reporting.render import write_report
from usecases.reporting.runs import load_runs


def test_the_vendored_library_is_the_pinned_release_with_its_license():
    code = viewer.library_js()
    assert hashlib.sha256(code.encode()).hexdigest() == viewer.LIBRARY_SHA256
    assert f"3dmol v{viewer.VERSION}" in (viewer.LIBRARY.parent / "README.md").read_text()
    license_text = (viewer.LIBRARY.parent / "3Dmol-LICENSE.txt").read_text()
    assert "BSD-3-Clause" in license_text and "University of Pittsburgh" in license_text


def test_a_changed_library_is_refused(monkeypatch, tmp_path):
    changed = tmp_path / "3Dmol-min.js"
    changed.write_bytes(viewer.LIBRARY.read_bytes() + b"\n")
    monkeypatch.setattr(viewer, "LIBRARY", changed)
    with pytest.raises(DataError, match=r"vendor_3dmol\.sh"):
        viewer.library_js()


def test_the_view_shows_the_best_models_pdb_and_escapes_it(tmp_path):
    record = colabfold_record(tmp_path / "colabfold_spike" / "cf")
    (run,) = load_runs([record])
    view = viewer.structure_viewer(run)
    assert isinstance(view, Viewer3D) and view.plddt_scale == 1.0
    assert "model_2" in view.caption and view.pdb.startswith("ATOM")
    script = viewer.draw_script(Viewer3D("v", "t", "c", "REMARK </script>\nEND\n"))
    assert "</script>" not in script and "<\\/script>" in script


def test_pdb_plddt_stored_as_fractions_is_scaled(tmp_path):
    record = colabfold_record(tmp_path / "colabfold_spike" / "cf")
    for pdb in (record.parent / "colabfold").glob("*.pdb"):
        lines = [
            ln[:60] + f"{float(ln[60:66]) / 100:6.2f}" + ln[66:] if ln.startswith("ATOM") else ln
            for ln in pdb.read_text().splitlines()
        ]
        pdb.write_text("\n".join(lines) + "\n")
    (run,) = load_runs([record])
    assert viewer.structure_viewer(run).plddt_scale == 100.0


def test_the_page_allows_exactly_its_inline_scripts_and_markdown_keeps_the_figure(tmp_path):
    record = colabfold_record(tmp_path / "colabfold_spike" / "cf")
    paths = write_report([record], out_dir=tmp_path / "out")
    page = paths["html"].read_text()
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 2 and scripts[0] == viewer.library_js()
    (csp,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    allowed = re.search(r"script-src ([^;]+)", csp).group(1).split()
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    ]
    assert allowed == hashes and "default-src 'none'" in csp
    assert 'id="viewer-structure-0"' in page
    markdown = paths["markdown"].read_text()
    assert "interactive in report.html" in markdown and "<script" not in markdown
    assert "](figures/fig-structure-0.png)" in markdown


def test_a_report_without_a_structure_carries_no_script(tmp_path):
    record = colabfold_record(tmp_path / "colabfold_spike" / "cf", pdb=False)
    page = write_report([record], out_dir=tmp_path / "out")["html"].read_text()
    assert "<script" not in page and "script-src" not in page
    assert "3-D view of cf: skipped, no PDB file found." in page


def test_a_pdb_without_readable_atoms_gives_a_note_not_a_crash(tmp_path):
    record = colabfold_record(tmp_path / "colabfold_spike" / "cf")
    for pdb in (record.parent / "colabfold").glob("*.pdb"):
        pdb.write_text("ATOM      1  CA  ALA A   1    not numbers here        1.00 xx.xx\nEND\n")
    (run,) = load_runs([record])
    view = viewer.structure_viewer(run)
    assert not isinstance(view, Viewer3D) and "has no CA atom" in view.text
