"""Checks of whole and finite numbers, shared by config validation, records and their readers.

``finite`` reads a value a record holds (JSON: bool is not a number, NaN and inf are no
value); ``check_whole`` validates an option before a run starts.
"""

from __future__ import annotations

import math
from typing import Any

from usecases.errors import ConfigError


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite int or float (not bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def is_whole(value: Any, *, least: int | None = None) -> bool:
    """True when ``value`` is an int (not bool) and, if given, at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return least is None or value >= least


def check_whole(name: str, value: Any, *, least: int) -> None:
    """ConfigError naming the option unless ``value`` is a whole number >= ``least``."""
    if not is_whole(value, least=least):
        raise ConfigError(f"{name}={value} must be a whole number >= {least}.")
