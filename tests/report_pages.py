"""What the report tests share: a hand-made colabfold record, an HTML parser, headless Chromium.

The colabfold_spike record has the shape usecases/colabfold_spike writes (see
usecases/reporting/runs.py), with PDB files whose B-factors hold the pLDDT; ``open_in_chromium``
loads a page in a fresh headless Chromium and returns its DOM and the requests it started.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from usecases.records.record import validate

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


class Page(HTMLParser):
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


def parse_page(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def open_in_chromium(page: Path, work: Path) -> tuple[str, list[str]]:
    """Load ``page`` in a fresh headless Chromium; return its DOM and what the page fetched.

    The fetch list holds the URLs of network requests the page itself started (initiator or
    network isolation key from the file:// page), read from Chromium's net log; the browser's
    own background requests (initiator "not an origin") are not the page's and are left out.
    """
    work.mkdir(parents=True, exist_ok=True)
    netlog = work / "netlog.json"
    cmd = [
        chromium_path() or "chromium",
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
