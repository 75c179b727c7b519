"""The report from real records: every figure and table there, self-contained, no network.

The covid_ct record comes from the session's one CPU smoke nightly (the ``nightly``
fixture of tests/conftest.py, via tests/e2e/conftest.py); the colabfold_spike record is made
by hand (tests/report_pages.py). The same report in headless Chromium: test_report_browser.py.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys

from PIL import Image

from tests.conftest import REPO
from tests.report_pages import (
    COVID_FIGURES,
    FOLD_FIGURES,
    TABLES,
    colabfold_record,
    parse_page,
)
from usecases.reporting import write_report
from usecases.reporting.render import main as report_main


def test_report_has_every_figure_and_table(report):
    page = parse_page(report["html"].read_text())
    for fid in COVID_FIGURES + FOLD_FIGURES:
        assert fid in page.ids, fid
        png = base64.b64decode(page.images[fid].removeprefix("data:image/png;base64,"))
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 150, fid
    for tid in TABLES:
        assert tid in page.ids, tid
    assert page.skipped == {"tab-cpu-gpu"}  # only what these records cannot give: no GPU run


def test_html_needs_no_network(report):
    text = report["html"].read_text()
    page = parse_page(text)
    remote = [u for u in page.links if not u.startswith(("#", "data:"))]
    assert remote == []
    assert not re.search(
        r"url\(|@import|https?://|//[a-z0-9.-]+\.[a-z]{2,}/", " ".join(page.styles)
    )
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    # the only scripts are inline (3Dmol.js and its draw call), each allowed by its hash alone
    (csp,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text)
    allowed = re.search(r"script-src ([^;]+)", csp).group(1).split()
    assert len(page.scripts) == 2 and "'unsafe-inline'" not in allowed
    for code in page.scripts:
        digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed
    assert "connect-src" not in csp  # fetch, XHR and websockets stay under default-src 'none'


def test_markdown_links_the_same_figures_and_tables(report):
    md = report["markdown"].read_text()
    for fid in COVID_FIGURES + FOLD_FIGURES:
        assert f"](figures/{fid}.png)" in md, fid
        assert (report["figures"] / f"{fid}.png").is_file(), fid
    assert "### Published vs measured (one run): phantom/smoke/cpu (nightly-covid_ct)" in md
    assert "A reproduction verdict needs a study over seeds" in md
    assert "| tv_unet_dice_pooled_0.3 | dice_pooled | 0.3 | 0.773 |" in md


def test_published_vs_measured_table_shows_values_verdicts_and_citations(report, covid_record):
    record = json.loads(covid_record.read_text())
    ref = next(c for c in record["references"] if c["reference_id"] == "tv_unet_dice_pooled_0.3")
    md = report["markdown"].read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| tv_unet_dice_pooled_0.3 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "0.773" and cells[4] == f"{ref['measured']:.3f}"
    assert cells[7] == "not comparable" and cells[8] == "synthetic data" and cells[9] == "[1]"
    assert "| [1] | Saeedizadeh N" in md and "Mirdita M" in md


def test_ct_slices_are_skipped_with_a_reason_when_the_data_are_not_here(covid_record, tmp_path):
    record = json.loads(covid_record.read_text())
    record["config"]["dataset"] = {"name": "covid_semiseg", "root": str(tmp_path / "absent")}
    run = tmp_path / "covid_ct" / "real"
    run.mkdir(parents=True)
    shutil.copy(covid_record.parent / "test_probabilities.npz", run)
    (run / "record.json").write_text(json.dumps(record))
    paths = write_report([run / "record.json"], out_dir=tmp_path / "out")
    page = parse_page(paths["html"].read_text())
    assert "fig-ct-slices-0" in page.ids and "fig-ct-slices-0" not in page.images
    assert f"dataset.root {tmp_path / 'absent'} is absent" in paths["html"].read_text()
    assert "fig-dice-threshold" in page.images  # the rest still renders


def test_models_table_marks_the_best_model_and_skips_rank_aliases(report):
    md = report["markdown"].read_text()
    after = md.split("### ColabFold models")[1].split("\n\n")[1]  # the table after the title
    rows = after.splitlines()
    names = [r.split("|")[1].strip() for r in rows[2:]]  # after the header and the rule
    assert names == ["model_1", "model_2 (best)"]
    assert "spike_30_unrelaxed_rank_001_alphafold2_ptm_model_2_seed_000.pdb" in rows[3]


def test_plddt_comes_from_pdb_b_factors_when_the_record_lists_none(tmp_path):
    fold = colabfold_record(tmp_path / "colabfold_spike" / "cf", plddt_list=False)
    page = parse_page(write_report([fold], out_dir=tmp_path / "out")["html"].read_text())
    assert {"fig-plddt-0", "fig-structure-0"} <= set(page.images)


def test_a_colabfold_record_without_pdb_or_per_residue_values_still_renders(tmp_path):
    fold = colabfold_record(tmp_path / "colabfold_spike" / "cf", pdb=False, plddt_list=False)
    paths = write_report([fold], out_dir=tmp_path / "out")
    page = parse_page(paths["html"].read_text())
    assert "tab-models-0" in page.ids and not {"fig-plddt-0", "fig-structure-0"} & set(page.images)
    text = paths["html"].read_text()
    assert "skipped, no per-residue pLDDT" in text and "skipped, no PDB file found" in text


def test_a_failed_run_renders_with_its_error(covid_record, tmp_path):
    record = json.loads(covid_record.read_text())
    record.update(status="failed", error="DataError: test slices missing", metrics={}, timings={})
    record["references"], record["artifacts"] = [], {}
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "record.json").write_text(json.dumps(record))
    md = write_report([tmp_path / "f" / "record.json"], out_dir=tmp_path / "o")["markdown"]
    assert "failed: DataError: test slices missing" in md.read_text()


def test_cpu_gpu_ratio_and_efficiency_appear_when_records_have_them(covid_record, tmp_path):
    cpu = json.loads(covid_record.read_text())
    gpu = copy.deepcopy(cpu)
    gpu["run_id"], gpu["device"]["used"] = "gpu-run", "gpu"
    gpu["timings"]["train_step"]["median_s"] = cpu["timings"]["train_step"]["median_s"] / 8
    gpu["timings"]["train_step"]["efficiency_vs_gemm"] = 0.25
    for name, data in (("cpu", cpu), ("gpu", gpu)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "record.json").write_text(json.dumps(data))
    md = write_report([tmp_path / "cpu", tmp_path / "gpu"], out_dir=tmp_path / "o")["markdown"]
    text = md.read_text()
    ratio = next(ln for ln in text.splitlines() if ln.startswith("| train_step | nightly-covid_ct"))
    assert ratio.rstrip().endswith("| 8.0x |")
    assert "| 25.0% |" in text


def test_cli_writes_both_pages_or_stops_with_one_error_line(covid_record, tmp_path, capsys):
    assert report_main([str(covid_record.parent), "--out", str(tmp_path / "ok")]) == 0
    assert "report.html" in capsys.readouterr().out
    bad = tmp_path / "bad" / "record.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    assert report_main([str(bad), "--out", str(tmp_path / "no")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: record ") and "not readable JSON" in err[0]


def test_report_module_runs_as_a_command(covid_record, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "usecases.reporting.render", str(covid_record), "-o", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "report.html").is_file() and (tmp_path / "figures").is_dir()
