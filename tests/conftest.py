"""Shared fixtures: where ../shared/data is, and a runner for ``python run.py`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
COVID_ROOT = SHARED_DATA / "covid_semiseg"
NO_SHARED = f"real data not found at {SHARED_DATA} (../shared/data beside the checkout)"


def pytest_addoption(parser):
    parser.addoption(
        "--widths",
        default="smoke",
        help="comma-separated TV-UNet widths to benchmark: smoke (n=4), paper (n=64)",
    )
    parser.addoption(
        "--weights",
        default=None,
        help="WIDTH=PATH: trained weights (model.weights.h5 of a covid_ct run) for that width, "
        "e.g. paper=results/covid_ct/RUN/model.weights.h5; its inference paths then also "
        "report their test-set Dice against float32 Keras",
    )
    parser.addoption(
        "--bench-cache",
        default=None,
        help="folder for the prepared real arrays (default: a temporary one per session)",
    )
    parser.addoption(
        "--bench-seconds",
        type=float,
        default=20.0,
        help="timed seconds per benchmark (rounds = this / one call, 3 to 50)",
    )


@pytest.fixture(scope="session")
def covid_root() -> Path:
    """The real COVID-SemiSeg copy in ../shared/data, or skip with the reason."""
    if not (COVID_ROOT / "Dataset").is_dir():
        pytest.skip(NO_SHARED)
    return COVID_ROOT


@pytest.fixture(scope="session")
def prepared_cache(tmp_path_factory) -> Path:
    """One cache folder for the whole test session (prepared arrays are reused)."""
    return tmp_path_factory.mktemp("cache")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    results: Path

    def records(self) -> list[dict]:
        """Every record.json written under the results folder."""
        return [json.loads(p.read_text()) for p in sorted(self.results.rglob("record.json"))]

    def error_lines(self) -> list[str]:
        """stderr lines that start with 'error:'."""
        return [ln for ln in self.stderr.splitlines() if ln.startswith("error:")]


def _run_cli(args: tuple[str, ...], *, results: Path, cache: Path, timeout: int) -> CliResult:
    """Run ``python run.py ARGS`` writing under ``results``; return a CliResult."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        str(REPO / "run.py"),
        f"results_dir={results}",
        f"cache_dir={cache}",
        *args,
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr, results)


@pytest.fixture
def run_cli(tmp_path, prepared_cache):
    """Run ``python run.py ARGS`` with results in a temporary folder; return a CliResult."""

    def _run(*args: str, timeout: int = 1200) -> CliResult:
        return _run_cli(args, results=tmp_path / "results", cache=prepared_cache, timeout=timeout)

    return _run


@pytest.fixture(scope="module")
def run_cli_module(tmp_path_factory, prepared_cache):
    """Like ``run_cli`` but shared by one test module: one expensive run, many assertions.

    Each call gets its own results folder; returns a CliResult.
    """

    def _run(*args: str, timeout: int = 1800) -> CliResult:
        results = tmp_path_factory.mktemp("results")
        return _run_cli(args, results=results, cache=prepared_cache, timeout=timeout)

    return _run
