"""Every folder usecase-bench reads or writes outside a run folder, in one place.

The checkout holds ``conf/`` (Hydra groups and gate rules) and ``data_manifests/``; the
fetched data and prepared arrays go to the cache (``$USECASE_BENCH_CACHE``, else
``~/.cache/usecase-bench``; ``cache_dir=`` on the command line). ``$USECASE_BENCH_HOME`` names
another checkout. Each function returns a path; ``require`` turns a missing one into one line
that says what to set. This module imports nothing else of the project.
"""

from __future__ import annotations

import os
from pathlib import Path

from usecases.errors import ConfigError

HOME_ENV = "USECASE_BENCH_HOME"
CACHE_ENV = "USECASE_BENCH_CACHE"


def source_root() -> Path:
    """The folder that holds the ``usecases`` package (what a child process puts on its path)."""
    return Path(__file__).resolve().parents[1]


def repo() -> Path:
    """The checkout that holds conf/ and data_manifests/ ($USECASE_BENCH_HOME, else this tree)."""
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser().resolve() if home else source_root()


def conf_dir() -> Path:
    """The Hydra config groups (conf/)."""
    return repo() / "conf"


def manifest_dir() -> Path:
    """One YAML per downloadable source, with checksum lists (data_manifests/)."""
    return repo() / "data_manifests"


def gate_rules() -> Path:
    """The regression gate's default rules (conf/gate/default.yaml)."""
    return conf_dir() / "gate" / "default.yaml"


def cache_base() -> Path:
    """Where fetched data and prepared arrays go: $USECASE_BENCH_CACHE, else ~/.cache."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "usecase-bench"


def require(path: Path, *, what: str) -> Path:
    """``path`` if it exists, else ConfigError saying which variable points elsewhere."""
    if not path.exists():
        raise ConfigError(
            f"{what} not found at {path}; run from a usecase-bench checkout "
            f"(pip install -e .) or set {HOME_ENV}=DIR to one."
        )
    return path
