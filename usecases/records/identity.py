"""What makes a run the same run: the code that runs it and the settings that decide its result.

A checkpoint stores this identity and a resume must match it. ``RESUME_MAY_CHANGE`` lists the
top-level config keys that do not change a result (where it runs, where its files go, whether
a report is drawn) and so may differ between the segments of one run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from usecases import paths
from usecases.data.checksums import sha256_tree
from usecases.errors import ConfigError

RESUME_MAY_CHANGE = ("device", "report", "results_dir", "cache_dir", "note", "run_id")


def code_sha256() -> str:
    """sha256 of the ``usecases`` package's Python files (paths and bytes)."""
    return sha256_tree(paths.source_root() / "usecases")


def config_sha256(resolved: Mapping) -> str:
    """sha256 of the resolved config without the keys in ``RESUME_MAY_CHANGE``."""
    kept = {k: v for k, v in resolved.items() if k not in RESUME_MAY_CHANGE}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def run_identity(resolved: Mapping) -> dict:
    """``{"code_sha256", "config_sha256"}`` of a run with this resolved config."""
    return {"code_sha256": code_sha256(), "config_sha256": config_sha256(resolved)}


def check_same_run(stored: Mapping, identity: Mapping, *, source: object) -> None:
    """ConfigError unless ``stored`` (what ``source``, a checkpoint, recorded) has the code and
    config digests of ``identity`` (this process's ``run_identity``)."""
    for key, what in (("code_sha256", "code"), ("config_sha256", "config")):
        if stored.get(key) != identity[key]:
            raise ConfigError(
                f"checkpoint {source} was written by other {what} ({key} "
                f"{str(stored.get(key))[:12]}, here {identity[key][:12]}); resume it with "
                "the commit and config that started it, or start a new run."
            )
