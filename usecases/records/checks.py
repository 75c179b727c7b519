"""One constructor for the check results a record lists under ``checks``.

A check is ``{"name", "passed", "detail", ...}``: ``detail`` is one line a person reads;
``skipped`` marks a check that did not run (``passed`` is then False, and the gate does not
demand it); further fields are the numbers that decided it.
"""

from __future__ import annotations

from typing import Any


def check_result(name: str, *, passed: bool, detail: str, **numbers: Any) -> dict:
    """A check that ran: its name, whether it held, one line why, and the deciding numbers."""
    return {"name": name, "passed": bool(passed), "detail": detail, **numbers}


def skipped_check(name: str, *, reason: str) -> dict:
    """A check that did not run (``passed`` False, ``skipped`` True), with the reason."""
    return {"name": name, "passed": False, "skipped": True, "detail": reason}
