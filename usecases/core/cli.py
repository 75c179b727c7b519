"""Command line of run.py: check the overrides, then hand them to Hydra.

Hydra reports a bad override over several lines with a hint about HYDRA_FULL_ERROR; here the
overrides are composed once beforehand so that a mistake ends in one line and exit code 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from usecases.core.app import run_usecase

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def check_overrides(overrides: list[str]) -> str | None:
    """Compose the config with ``overrides``; return a one-line error, or None if it composes."""
    plain = [
        o for o in overrides if not o.startswith("-") and not o.lstrip("+~").startswith("hydra")
    ]
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            compose(config_name="config", overrides=plain)
    except Exception as err:  # Hydra raises several exception types for bad overrides
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        return " ".join(lines[:3]) or type(err).__name__
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of run.py; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    problem = check_overrides(args)
    if problem is not None:
        print(f"error: bad option: {problem} (see conf/ for the options)", file=sys.stderr)
        return 2
    codes: list[int] = []

    @hydra.main(config_path=CONF_DIR, config_name="config", version_base=None)
    def _app(cfg: DictConfig) -> None:
        codes.append(run_usecase(cfg))

    sys.argv = [sys.argv[0], *args]
    _app()
    code = max(codes, default=0)
    if code in (130, 143):  # interrupted mid-run: the record is written; skip framework teardown,
        sys.stdout.flush()  # which can crash with training threads stopped half-way
        sys.stderr.flush()
        os._exit(code)
    return code
