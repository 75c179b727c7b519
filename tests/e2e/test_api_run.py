"""The Python API runs a use case as run.py does: the same run folder, record and errors."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from usecases.records.record import load_record

CODE = """
import sys, usecases
r = usecases.run("covid_ct", "dataset=phantom", "scale=smoke", "device=cpu", "scale.epochs=2",
                 "usecase.export.int8=false", "results_dir=" + sys.argv[1], "run_id=api1")
print(r["status"] if isinstance(r, dict) else r.status)
"""


def test_usecases_run_prints_ok_and_leaves_the_run_folder_of_run_py(tmp_path, prepared_cache):
    env_cache = f"cache_dir={prepared_cache}"
    code = CODE.replace('"run_id=api1")', f'"run_id=api1", "{env_cache}")')
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "ok"
    run_dir = tmp_path / "covid_ct" / "api1"
    names = {p.name for p in run_dir.iterdir()}
    assert {"record.json", "config.yaml", "run.log", "report", "model.onnx"} <= names
    record = load_record(run_dir / "record.json")
    assert record.status == "ok" and record.metrics["epochs_run"] == 2
    assert record.config["dataset"]["name"] == "phantom" and record.config["run_id"] == "api1"
