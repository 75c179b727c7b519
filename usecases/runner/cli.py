"""Command line of run.py: check the overrides, then hand them to Hydra.

Hydra reports a bad override over several lines with a hint about HYDRA_FULL_ERROR; here the
overrides are composed once beforehand so that a mistake ends in one line and exit code 2.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from usecases import paths
from usecases.errors import UserError
from usecases.runner.app import run_usecase

CONF_DIR = str(paths.conf_dir())
MULTIRUN_FLAGS = ("-m", "--multirun")
EXIT_DIR_ENV = "USECASE_BENCH_EXIT_DIR"


def _show_config(args: list[str]) -> int | None:
    """Hand ``--cfg job|hydra|all`` (and ``--resolve``) to Hydra, which prints the composed
    config and runs nothing; None when the flag is absent. A bad override there is one line."""
    if not any(a in ("--cfg", "-c") for a in args):
        return None

    @hydra.main(config_path=CONF_DIR, config_name="config", version_base=None)
    def _noop(cfg: DictConfig) -> None:  # Hydra prints and returns before calling it
        return None

    saved = sys.argv
    sys.argv = [saved[0], *args]
    try:
        _noop()
    except SystemExit as stop:  # Hydra exits 1 on a config it cannot compose
        if stop.code:
            print("error: bad option: the config does not compose (see conf/)", file=sys.stderr)
            return 2
    finally:
        sys.argv = saved
    return 0


def _exit_folder(args: list[str]) -> Path | None:
    """A fresh folder under the sweep's results_dir for the jobs' exit codes (None when it
    cannot be made: then each run reports the unwritable results_dir itself)."""
    plain = [a for a in args if a not in MULTIRUN_FLAGS and not a.lstrip("+~").startswith("hydra")]
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        first = _combinations(plain, multirun=True)[0]
        folder = Path(compose(config_name="config", overrides=first).results_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".exit-codes-", dir=folder))
    except OSError:
        return None


def check_overrides(overrides: list[str]) -> str | None:
    """Compose the config with ``overrides``; return a one-line error, or None if it composes.

    With ``-m``/``--multirun``, sweeps (``seed=1,2,3``, ``range(3)``) are checked value by
    value, each with the other sweeps at their first value.
    """
    plain = [
        o for o in overrides if not o.startswith("-") and not o.lstrip("+~").startswith("hydra")
    ]
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            for combination in _combinations(plain, multirun=_is_multirun(overrides)):
                compose(config_name="config", overrides=combination)
    except Exception as err:  # Hydra raises several exception types for bad overrides
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        return " ".join(lines[:3]) or type(err).__name__
    return None


def _is_multirun(args: list[str]) -> bool:
    return any(a in MULTIRUN_FLAGS for a in args)


def _combinations(overrides: list[str], *, multirun: bool) -> list[list[str]]:
    """The override lists to compose: the given one, or one per value of each sweep."""
    if not multirun:
        return [overrides]
    choices = [_choices(o) for o in OverridesParser.create().parse_overrides(overrides)]
    choices = [c for c in choices if c]  # glob() and interval(): left to the sweeper
    first = [c[0] for c in choices]
    return [first] + [
        [*first[:i], value, *first[i + 1 :]] for i, c in enumerate(choices) for value in c[1:]
    ]


def _choices(override) -> list[str]:
    """Each value of a sweep as ``key=value``; a plain override as given; [] if not listable."""
    if not override.is_sweep_override():
        return [override.input_line]
    try:
        values = list(override.sweep_string_iterator())
    except Exception:  # glob() needs the config loader, interval() has no list of values
        return []
    if not values:
        raise ValueError(f"{override.input_line} sweeps over no values")
    return [f"{override.get_key_element()}={v}" for v in values]


def _resume(args: list[str]) -> int:
    """``resume=RUN_DIR`` (+ device=, report=): continue that run; one line on a refusal."""
    from usecases.runner.app import execute
    from usecases.runner.resume import resume_config

    folder = next(a for a in args if a.startswith("resume=")).split("=", 1)[1]
    rest = [a for a in args if not a.startswith("resume=")]
    try:
        if _is_multirun(args):
            raise UserError("resume= continues one run; not with -m.", exit_code=2)
        cfg = resume_config(Path(folder), rest)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:  # Hydra's own error for a bad device=/report= value
        print(f"error: bad option: {' '.join(str(err).split())[:300]}", file=sys.stderr)
        return 2
    code = execute(cfg, resume_dir=Path(folder)).code
    if code in (130, 143):  # as in main: skip the framework teardown after an interruption
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of run.py; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        paths.require(paths.conf_dir(), what="the Hydra config groups (conf/)")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    if any(a.startswith("resume=") for a in args):
        return _resume(args)
    shown = _show_config(args)
    if shown is not None:  # --cfg job|hydra|all [--resolve]: Hydra prints the config, runs nothing
        return shown
    problem = check_overrides(args)
    if problem is not None:
        print(f"error: bad option: {problem} (see conf/ for the options)", file=sys.stderr)
        return 2
    codes: list[int] = []
    # A launcher that runs the jobs in other processes (submitit: local or SLURM) cannot fill
    # ``codes``: each job also writes its exit code into this folder (under results_dir, so it
    # is on the cluster's shared file system), and the sweep's status is read from there.
    exits = _exit_folder(args) if _is_multirun(args) else None
    if exits is not None:
        os.environ[EXIT_DIR_ENV] = str(exits)

    @hydra.main(config_path=CONF_DIR, config_name="config", version_base=None)
    def _app(cfg: DictConfig) -> None:
        if any(c in (130, 143) for c in codes):  # a sweep stops once a run was interrupted
            return
        code = run_usecase(cfg)
        codes.append(code)
        folder = os.environ.get(EXIT_DIR_ENV)
        if folder and Path(folder).is_dir():
            (Path(folder) / f"{os.getpid()}-{len(codes)}").write_text(str(code))

    # Hydra's argparse takes -m only before the overrides; accept it anywhere
    flags = [a for a in args if a in MULTIRUN_FLAGS]
    saved = sys.argv  # hydra.main reads sys.argv; put it back for in-process callers
    sys.argv = [saved[0], *flags, *(a for a in args if a not in MULTIRUN_FLAGS)]
    try:
        _app()
    finally:
        sys.argv = saved
        os.environ.pop(EXIT_DIR_ENV, None)
        written = []
        if exits is not None:
            written = [int(f.read_text()) for f in exits.iterdir() if f.read_text().isdigit()]
            shutil.rmtree(exits, ignore_errors=True)
    code = max([*codes, *written], default=0)
    if code in (130, 143):  # interrupted mid-run: the record is written; skip framework teardown,
        sys.stdout.flush()  # which can crash with training threads stopped half-way
        sys.stderr.flush()
        os._exit(code)
    return code
