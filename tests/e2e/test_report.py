"""The report from real records: every figure and table there, self-contained, offline in Chromium.

The covid_ct record comes from the session's one CPU smoke nightly (the ``nightly``
fixture of tests/conftest.py); the colabfold_spike record is made here by hand in the shape
the report reads (see usecases/reporting/runs.py), with PDB files whose B-factors hold the pLDDT.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import math
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO, require
from usecases.records.record import validate
from usecases.reporting import write_report
from usecases.reporting.render import main as report_main

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
COVID_FIGURES = ("fig-dice-threshold", "fig-training", "fig-ct-slices-0", "fig-timings")
FOLD_FIGURES = ("fig-plddt-0", "fig-structure-0")
TABLES = (
    "tab-runs",
    "tab-references-0",
    "tab-references-1",
    "tab-metrics-0",
    "tab-models-0",
    "tab-timings",
    "tab-environment",
    "tab-notes",
    "tab-citations",
)


# --- inputs -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def covid_record(nightly) -> Path:
    """record.json of a real covid_ct smoke run (phantom, CPU), made once per session."""
    run = nightly
    records = [p for p in run.records() if p.parent.name == "nightly-covid_ct"]
    assert records, run.output[-4000:]
    return records[0]


def colabfold_record(
    folder: Path,
    *,
    residues: int = 30,
    pdb: bool = True,
    plddt_list: bool = True,
) -> Path:
    """A colabfold_spike record in the shape usecases/colabfold_spike writes (two models, best
    model_2)."""
    (folder / "colabfold").mkdir(parents=True, exist_ok=True)
    per_model, artifacts = {}, {"colabfold_dir": "colabfold"}
    for k, shift in ((1, 0.0), (2, 8.0)):
        plddt = [
            round(max(20.0, min(98.0, 60 + 30 * math.sin(i / 5) + shift - 20 * (i > 24))), 2)
            for i in range(residues)
        ]
        name = f"model_{k}"
        per_model[name] = {
            "mean_plddt": sum(plddt) / residues,
            "ptm": 0.3 + 0.05 * k,
            "rank": 3 - k,
            "time_s": 20.0 - k,
        }
        if plddt_list:
            per_model[name]["plddt_per_residue"] = plddt
        if pdb:
            file = f"colabfold/spike_30_unrelaxed_rank_00{3 - k}_alphafold2_ptm_{name}_seed_000.pdb"
            (folder / file).write_text(_pdb(plddt))
            artifacts[f"{name}_pdb"] = file
    metrics: dict = {"weights": "random", "best_model": "model_2", "num_models_run": 2}
    metrics.update(per_model)
    metrics["rank_1"] = {"model": "model_2", "mean_plddt": per_model["model_2"]["mean_plddt"]}
    metrics["mean_plddt_best"] = per_model["model_2"]["mean_plddt"]
    data = {
        "schema_version": "1.0",
        "run_id": folder.name,
        "usecase": "colabfold_spike",
        "status": "ok",
        "started_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:01:00+00:00",
        "config": {"usecase": {"name": "colabfold_spike"}, "scale": {"name": "smoke"}, "seed": 0},
        "environment": {"python": "3.11.7", "cpu": {"model": "test", "usable_cpus": 2}},
        "device": {"requested": "cpu", "used": "cpu", "backend": "jax"},
        "dataset": {"name": "galaxy_spike_302", "checksum": "sha256:" + "0" * 64},
        "metrics": metrics,
        "timings": {
            "first_model_s": 20.0,
            "model_times_s": {"model_1": 20.0, "model_2": 19.0},
            "forwards_per_model": 1,
            "steady_model": {"n": 1, "median_s": 19.0, "min_s": 19.0, "max_s": 19.0},
            "method": "wall time of RunModel.predict per model",
        },
        "references": [
            {
                "reference_id": "galaxy_colabfold_best_mean_plddt",
                "metric": "mean_plddt_best",
                "at": None,
                "published": 83.8,
                "measured": metrics["mean_plddt_best"],
                "difference": None,
                "tolerance": 3.0,
                "verdict": "not comparable",
                "reason": "random weights (weights=random): pLDDT and pTM mean nothing",
                "citation": "Mirdita M et al. ColabFold. Nature Methods 19:679-682 (2022)",
            }
        ],
        "checks": [{"name": "model_1: mean pLDDT = mean PDB CA B-factor", "passed": True}],
        "artifacts": artifacts,
        "notes": ["random weights: timings are real, pLDDT/pTM are meaningless"],
        "error": None,
    }
    validate(data)
    path = folder / "record.json"
    path.write_text(json.dumps(data))
    return path


def _pdb(plddt: list[float]) -> str:
    lines = []
    for i, b in enumerate(plddt):
        x, y, z = 2.3 * math.cos(i * 1.75), 2.3 * math.sin(i * 1.75), 1.5 * i
        lines.append(
            f"ATOM  {i + 1:5d}  CA  ALA A{i + 1:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00{b:6.2f}"
            "           C"
        )
    return "\n".join([*lines, "END"]) + "\n"


@pytest.fixture(scope="module")
def report(covid_record, tmp_path_factory) -> dict[str, Path]:
    """The report of the real covid_ct record plus the hand-made colabfold record."""
    base = tmp_path_factory.mktemp("report")
    fold = colabfold_record(base / "colabfold_spike" / "cf-test")
    return write_report([covid_record, fold], out_dir=base / "out")


class _Page(HTMLParser):
    """Collects ids, skipped blocks, every src/href/srcset value, img data, style text (style
    attributes and <style>) and the text of each inline <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images: dict[str, str] = {}
        self.styles: list[str] = []
        self.skipped: set[str] = set()
        self.scripts: list[str] = []
        self._figure: str | None = None
        self._tag: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._tag = tag
        if tag == "script":
            self.scripts.append("")
        if a.get("id"):
            self.ids.add(a["id"])
            if a.get("data-skipped"):
                self.skipped.add(a["id"])
        if tag == "figure":
            self._figure = a.get("id")
        for key in ("src", "href", "srcset", "poster", "data", "action", "formaction"):
            if a.get(key):
                self.links.append(a[key])
        if a.get("style"):
            self.styles.append(a["style"])
        if tag == "img" and self._figure:
            self.images[self._figure] = a.get("src", "")

    def handle_endtag(self, tag):
        self._tag = None

    def handle_data(self, data):
        if self._tag == "script":
            self.scripts[-1] += data
        else:
            self.styles.append(data)  # CSS url(...) would show here too


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


# --- the report ---------------------------------------------------------------------------


def test_report_has_every_figure_and_table(report):
    page = _parse(report["html"].read_text())
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
    page = _parse(text)
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
    page = _parse(paths["html"].read_text())
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
    page = _parse(write_report([fold], out_dir=tmp_path / "out")["html"].read_text())
    assert {"fig-plddt-0", "fig-structure-0"} <= set(page.images)


def test_a_colabfold_record_without_pdb_or_per_residue_values_still_renders(tmp_path):
    fold = colabfold_record(tmp_path / "colabfold_spike" / "cf", pdb=False, plddt_list=False)
    paths = write_report([fold], out_dir=tmp_path / "out")
    page = _parse(paths["html"].read_text())
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


# --- headless Chromium ----------------------------------------------------------------------


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def chromium() -> str:
    """Chromium's path; skips where it is absent, fails under CI=true (.ci/run installs it)."""
    path = _chromium()
    require(path is not None, "chromium not installed (scripts/install_browser.sh)")
    return str(path)


def open_in_chromium(page: Path, work: Path) -> tuple[str, list[str]]:
    """Load ``page`` in a fresh headless Chromium; return its DOM and what the page fetched.

    The fetch list holds the URLs of network requests the page itself started (initiator or
    network isolation key from the file:// page), read from Chromium's net log; the browser's
    own background requests (initiator "not an origin") are not the page's and are left out.
    """
    work.mkdir(parents=True, exist_ok=True)
    netlog = work / "netlog.json"
    cmd = [
        _chromium() or "chromium",
        *CHROMIUM_FLAGS,
        f"--user-data-dir={work / 'profile'}",
        f"--log-net-log={netlog}",
        "--virtual-time-budget=10000",  # let the page's scripts finish (the 3-D view) first
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, page_requests(netlog)


def page_requests(netlog: Path) -> list[str]:
    """URLs of requests started by a file:// page, from a Chromium net log."""
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # cut short at exit: close the event list
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls = []
    for event in log.get("events", []):
        params = event.get("params") or {}
        if types.get(event.get("type")) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        from_page = params.get("initiator") != "not an origin" or "file://" in str(
            params.get("network_isolation_key", "")
        )
        if from_page:
            urls.append(params["url"])
    return urls


@pytest.mark.usefixtures("chromium")
def test_headless_chromium_shows_every_figure_and_table_and_fetches_nothing(report, tmp_path):
    # Control: the detector sees a page that does fetch (loopback, nothing listens there).
    canary = tmp_path / "canary.html"
    canary.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/canary.png"><p>x</p>')
    _, fetched = open_in_chromium(canary, tmp_path / "canary")
    assert fetched == ["http://127.0.0.1:9/canary.png"]

    dom, fetched = open_in_chromium(report["html"], tmp_path / "report")
    assert fetched == []
    # Without its Content-Security-Policy guard the page still asks for nothing.
    bare = tmp_path / "no-csp.html"
    html = report["html"].read_text()
    bare.write_text(re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", html))
    assert "Content-Security-Policy" not in bare.read_text()
    assert open_in_chromium(bare, tmp_path / "no-csp")[1] == []
    # the interactive 3-D view ran under the page's CSP (its scripts allowed by hash) and drew
    drawn = re.search(r'id="viewer-structure-0"[^>]*data-drawn-pixels="(\d+)"', dom)
    assert drawn and int(drawn.group(1)) > 1000, "the 3-D view drew nothing"
    # control: a page whose CSP no longer lists the library's hash runs none of it
    blocked = tmp_path / "blocked.html"
    blocked.write_text(re.sub(r"script-src 'sha256-[^']+'", "script-src", html, count=1))
    dom_blocked, _ = open_in_chromium(blocked, tmp_path / "blocked")
    assert 'id="viewer-structure-0"' in dom_blocked
    assert not re.search(r'id="viewer-structure-0"[^>]*data-drawn-pixels=', dom_blocked)
    page = _parse(dom)
    for fid in COVID_FIGURES + FOLD_FIGURES:
        assert page.images.get(fid, "").startswith("data:image/png;base64,"), fid
    for tid in TABLES:
        assert tid in page.ids, tid
    assert "Published vs measured" in dom and "Environment" in dom


@pytest.mark.usefixtures("chromium")
def test_install_browser_script_does_nothing_when_chromium_is_present():
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "install_browser.sh")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("chromium present")


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


STUDY = REPO / "results" / "cpu" / "covid_ct-ci-study"
STUDY_FIGURES = ("fig-study-band-0", "fig-study-curves-0")
STUDY_TABLES = ("tab-study-verdicts-0", "tab-study-intervals-0", "tab-study-ttq-0")


@pytest.mark.usefixtures("chromium")
def test_the_committed_ci_study_report_opens_offline_in_chromium(tmp_path):
    pages = write_report([STUDY], out_dir=tmp_path / "report")
    dom, fetched = open_in_chromium(pages["html"], tmp_path / "browser")
    assert fetched == []
    page = _parse(dom)
    for fid in STUDY_FIGURES:
        assert page.images.get(fid, "").startswith("data:image/png;base64,"), fid
    for tid in (*STUDY_TABLES, "tab-references-3"):  # the study, then its four seeds' runs
        assert tid in page.ids, tid
    assert "Reproduction verdicts over 4 seeds" in dom
