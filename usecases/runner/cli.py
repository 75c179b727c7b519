"""Command line of run.py: check the overrides, then hand them to Hydra.

Hydra reports a bad override over several lines with a hint about HYDRA_FULL_ERROR; here the
overrides are composed once beforehand so that a mistake ends in one line and exit code 2.
"""

from __future__ import annotations

import os
import sys

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from usecases import paths
from usecases.errors import UserError
from usecases.runner.app import run_usecase

CONF_DIR = str(paths.conf_dir())
MULTIRUN_FLAGS = ("-m", "--multirun")


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


def main(argv: list[str] | None = None) -> int:
    """Entry point of run.py; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        paths.require(paths.conf_dir(), what="the Hydra config groups (conf/)")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    problem = check_overrides(args)
    if problem is not None:
        print(f"error: bad option: {problem} (see conf/ for the options)", file=sys.stderr)
        return 2
    codes: list[int] = []

    @hydra.main(config_path=CONF_DIR, config_name="config", version_base=None)
    def _app(cfg: DictConfig) -> None:
        if any(c in (130, 143) for c in codes):  # a sweep stops once a run was interrupted
            return
        codes.append(run_usecase(cfg))

    # Hydra's argparse takes -m only before the overrides; accept it anywhere
    flags = [a for a in args if a in MULTIRUN_FLAGS]
    saved = sys.argv  # hydra.main reads sys.argv; put it back for in-process callers
    sys.argv = [saved[0], *flags, *(a for a in args if a not in MULTIRUN_FLAGS)]
    try:
        _app()
    finally:
        sys.argv = saved
    code = max(codes, default=0)
    if code in (130, 143):  # interrupted mid-run: the record is written; skip framework teardown,
        sys.stdout.flush()  # which can crash with training threads stopped half-way
        sys.stderr.flush()
        os._exit(code)
    return code
