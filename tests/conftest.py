"""Shared fixtures: where ../shared/data is, a runner for ``python run.py`` in a subprocess, and
folders that every pytest-xdist worker of one session shares (one expensive run, built once).

``require(condition, reason)`` is how a test says it needs something this machine may lack
(the real data, Chromium, ColabFold): it skips with the reason on a developer's machine, and
fails under ``CI=true``, where CI promises the thing is there and a skip would hide a check.

Tests under ``tests/e2e/`` and ``tests/benchmarks/`` are marked ``slow`` here:
``pytest -m "not slow"`` is the quick loop (``tests/unit/``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
COVID_ROOT = SHARED_DATA / "covid_semiseg"
NO_SHARED = f"real data not found at {SHARED_DATA} (../shared/data beside the checkout)"
# the paper's TV_UNET.py at commit 12031fa (implementation=original)
ORIGINAL_CODE = REPO.parent / "shared" / "reference" / "tv_unet_12031fa"
NO_ORIGINAL = f"the paper's code not found at {ORIGINAL_CODE} (../shared/reference)"


def in_ci() -> bool:
    """True where the environment says this is CI (``CI=true``, as GitHub and .ci/run set)."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless ``condition``; under CI=true fail instead of skipping."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: CI installs this, so the test may not skip)")
    pytest.skip(reason)


def needs_module(name: str, reason: str):
    """``name`` imported; ``require`` when it is not installed. Installed but broken is never
    skipped: its ImportError fails the test."""
    import importlib
    import importlib.util

    require(importlib.util.find_spec(name) is not None, reason)
    return importlib.import_module(name)


def pytest_addoption(parser):
    parser.addoption(
        "--widths",
        default="smoke",
        help="comma-separated TV-UNet widths to benchmark: smoke (n=4), ci (n=8), paper (n=64)",
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


SLOW_FOLDERS = ("e2e", "benchmarks")


# the session's longest fixtures: files that use them go first, so that with two xdist workers
# (--dist loadfile) each starts its long run at once instead of after a queue of other files
FIRST = (("ci_study", "ci_scale_run"), ("nightly", "covid_record"))


def pytest_collection_modifyitems(config, items):
    """Mark every test under tests/e2e/ and tests/benchmarks/ as slow (whole runs and tools);
    put the files that need the longest shared fixtures first (``FIRST``)."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if parts and parts[0] in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)

    def group(item) -> int:
        names = set(getattr(item, "fixturenames", ()))
        return next((i for i, g in enumerate(FIRST) if names & set(g)), len(FIRST))

    # xdist hands out files in turn (gw0 the first, gw1 the second): the first file of each
    # group leads, so gw0 starts the ci-scale study and gw1 the nightly; inside a file the
    # tests that need the fixture go first
    rank: dict[str, int] = {}
    for item in items:
        g, file = group(item), str(item.fspath)
        if g < len(FIRST) and g not in rank.values():
            rank.setdefault(file, g)
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(
        key=lambda it: (
            (rank.get(str(it.fspath), len(FIRST)), group(it), order[id(it)])
            if str(it.fspath) in rank
            else (len(FIRST), 0, order[id(it)])
        )
    )


@contextlib.contextmanager
def shared_folder(tmp_path_factory, name: str) -> Iterator[Path]:
    """``<session temp>/<name>``, shared by all xdist workers, held under an exclusive lock.

    The first worker to enter builds what the folder should hold; the others wait for the
    lock and find it built (pytest-xdist's documented pattern for session-wide fixtures).
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    with (base / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield base / name
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def covid_root() -> Path:
    """The real COVID-SemiSeg copy in ../shared/data, or skip with the reason."""
    require((COVID_ROOT / "Dataset").is_dir(), NO_SHARED)
    return COVID_ROOT


@pytest.fixture(scope="session")
def prepared_cache(tmp_path_factory) -> Path:
    """One cache folder for the whole test session, shared by the workers (arrays are reused).

    Prepared arrays are written atomically (temporary file, then rename), so two workers
    preparing the same slices at once both end with a complete cache file.
    """
    with shared_folder(tmp_path_factory, "cache") as folder:
        folder.mkdir(exist_ok=True)
    return folder


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
    # run.py keeps TensorFlow's start-up lines off the console itself, unless this is set
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONUNBUFFERED"] = "1"
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


@dataclass(frozen=True)
class StudyRun:
    code: int
    output: str
    out: Path  # the script's OUT: OUT/ci/{runs,study.json,study.txt,report.html}


CI_STUDY_SEEDS = (42, 1)


@pytest.fixture(scope="session")
def ci_study(tmp_path_factory, covid_root, prepared_cache) -> StudyRun:
    """scripts/reproduction_gpu.sh run on CPU at ci scale (n=8, 12 epochs, real slices) with
    seeds 42 and 1, once for the whole session: the GPU script's CPU test and, through its
    seed-42 run, the suite's one real ci-scale run (ONNX export on: TensorFlow is here).

    Shared by every xdist worker: the first to ask trains (minutes), the others reuse it.
    """
    with shared_folder(tmp_path_factory, "ci-study") as base:
        out, done = base / "out", base / "done.json"
        if not done.is_file():
            base.mkdir(parents=True, exist_ok=True)
            env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
            env |= {
                "PYTHON": sys.executable,
                "REPRO_STUDIES": "ci:" + ",".join(map(str, CI_STUDY_SEEDS)),
            }
            cmd = [
                "bash", str(REPO / "scripts" / "reproduction_gpu.sh"), str(out),
                "device=cpu", "backend=tensorflow", "usecase.export.onnx=true",
                f"cache_dir={prepared_cache}", f"dataset.root={covid_root}",
            ]  # fmt: skip
            code, output = _run_once(cmd, cwd=REPO, env=env, timeout=3000)
            done.write_text(json.dumps({"code": code, "output": output}))
        saved = json.loads(done.read_text())
    return StudyRun(saved["code"], saved["output"], out)


@pytest.fixture(scope="session")
def ci_scale_run(ci_study) -> CliResult:
    """The seed-42 run of ``ci_study``: one real ci-scale covid_ct run, as a CliResult."""
    run_dir = ci_study.out / "ci" / "runs" / "covid_ct" / "seed42"
    return CliResult(ci_study.code, ci_study.output, ci_study.output, run_dir)


@dataclass(frozen=True)
class NightlyRun:
    code: int
    output: str
    out: Path

    def records(self) -> list[Path]:
        """record.json of every run the nightly made."""
        return sorted((self.out / "runs").rglob("record.json"))


def _run_once(cmd: list[str], *, cwd: Path, env: dict, timeout: int) -> tuple[int, str]:
    """(exit code, stdout + stderr) of a shared fixture's one expensive command; a timeout is
    code 124 with what it printed, so that waiting workers read it instead of running again."""
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        said = [b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
                for b in (err.stdout, err.stderr)]  # fmt: skip
        return 124, "".join(said) + f"\n(timed out after {timeout} s)"
    return proc.returncode, proc.stdout + proc.stderr


def fresh_checkout(dest: Path) -> Path:
    """Copy this checkout's files (tracked, and untracked ones git does not ignore) to ``dest``:
    a checkout as a runner's clone has it, without .venv or any build output."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def nightly_smoke(base: Path) -> NightlyRun:
    """Run ``nightly.sh --device cpu --scale smoke`` into ``base`` once, as the workflow does:
    in a fresh checkout without .venv (the script bootstraps it) and without PYTHON set."""
    out, done, log = base / "out", base / "exit_code", base / "output.txt"
    if not done.is_file():
        base.mkdir(parents=True, exist_ok=True)
        checkout = fresh_checkout(base / "checkout")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "VIRTUAL_ENV")}
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        cmd = ["bash", "scripts/nightly.sh", "--device", "cpu", "--scale", "smoke"]
        code, output = _run_once([*cmd, "--out", str(out)], cwd=checkout, env=env, timeout=1500)
        log.write_text(output)
        done.write_text(str(code))
    return NightlyRun(code=int(done.read_text()), output=log.read_text(), out=out)


@pytest.fixture(scope="session")
def nightly(tmp_path_factory) -> NightlyRun:
    """The session's one CPU smoke nightly, shared by every xdist worker."""
    with shared_folder(tmp_path_factory, "nightly-cpu-smoke") as base:
        return nightly_smoke(base)
