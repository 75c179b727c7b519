"""The gate's rules: which record values are compared how (``conf/gate/default.yaml``).

A rule names a dotted path into a record (``*`` matches any key), a kind (metric: a
difference with absolute/relative tolerances; timing: a ratio with a per-device noise
allowance) and the better direction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from usecases import paths
from usecases.errors import DataError
from usecases.numbers import finite

DEFAULT_RULES = paths.gate_rules()
KINDS = ("metric", "timing")
DIRECTIONS = ("higher", "lower", "equal")


class GateInputError(DataError):
    """The gate's inputs are unusable (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.exit_code = 2


@dataclass(frozen=True)
class Rule:
    """One check: the value(s) at ``path`` compared by ``kind`` and ``direction``."""

    path: str
    kind: str
    direction: str
    abs_tol: float = 0.0
    rel_tol: float = 0.0
    max_slowdown: float | None = None
    optional: bool = False  # may match nothing in a baseline (else that is an input error)


@dataclass(frozen=True)
class Rules:
    """Per-use-case rules and the allowed timing slowdown per device used."""

    by_usecase: Mapping[str, tuple[Rule, ...]]
    timing_noise: Mapping[str, float]
    source: str


def load_rules(*, path: Path | None = None) -> Rules:
    """Read gate rules from YAML (default ``conf/gate/default.yaml``); GateInputError if bad."""
    path = DEFAULT_RULES if path is None else Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise GateInputError(f"cannot read gate rules {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise GateInputError(f"gate rules {path} are not valid YAML ({err})") from err
    if not isinstance(data, Mapping) or not isinstance(data.get("usecases"), Mapping):
        raise GateInputError(f"gate rules {path} need a top-level 'usecases' mapping")
    noise = data.get("timing_noise") or {}
    if not isinstance(noise, Mapping) or not all(_positive(v) for v in noise.values()):
        raise GateInputError(f"gate rules {path}: timing_noise must map a device to a factor > 0")
    by_usecase = {
        str(name): tuple(_rule(entry, where=f"{path} ({name})") for entry in entries or [])
        for name, entries in data["usecases"].items()
    }
    return Rules(
        by_usecase=by_usecase,
        timing_noise={str(k): float(v) for k, v in noise.items()},
        source=str(path),
    )


def _rule(entry: Any, *, where: str) -> Rule:
    if not isinstance(entry, Mapping) or "path" not in entry:
        raise GateInputError(f"{where}: each rule must be a mapping with a 'path'")
    kind, direction = entry.get("kind", "metric"), entry.get("direction")
    if kind not in KINDS or direction not in DIRECTIONS:
        raise GateInputError(
            f"{where}: rule {entry['path']} needs kind in {KINDS} and direction in {DIRECTIONS}"
        )
    if kind == "timing" and direction == "equal":
        raise GateInputError(f"{where}: timing rule {entry['path']} must be higher or lower")
    numbers = {k: entry.get(k) for k in ("abs_tol", "rel_tol", "max_slowdown")}
    for key, value in numbers.items():
        if value is not None and (finite(value) is None or value < 0):
            raise GateInputError(f"{where}: {key} of {entry['path']} must be a number >= 0")
    return Rule(
        path=str(entry["path"]),
        kind=kind,
        direction=direction,
        abs_tol=float(numbers["abs_tol"] or 0.0),
        rel_tol=float(numbers["rel_tol"] or 0.0),
        max_slowdown=None if numbers["max_slowdown"] is None else float(numbers["max_slowdown"]),
        optional=_flag(entry.get("optional", False), where=f"{where}: optional of {entry['path']}"),
    )


def _flag(value: Any, *, where: str) -> bool:
    if not isinstance(value, bool):
        raise GateInputError(f"{where} must be true or false, got {value!r}")
    return value


def _positive(value: Any) -> bool:
    number = finite(value)
    return number is not None and number > 0
