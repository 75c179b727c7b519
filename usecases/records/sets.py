"""Sets of records: the one place that finds record files and names what makes runs comparable.

Every consumer (report, gate, studies) finds its records here, never in another consumer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from usecases.records.record import ResultRecord

STUDY_NAME = "study.json"


def find_records(paths: Sequence[Path]) -> list[Path]:
    """Expand folders into the ``record.json`` files below them; files are kept as given,
    except study records (``study.json``, see ``find_studies``)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.rglob("record.json")))
        elif path.name != STUDY_NAME:
            found.append(path)
    return found


def find_studies(paths: Sequence[Path]) -> list[Path]:
    """The study records (``study.json``) among ``paths`` and in the folders below them."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.rglob(STUDY_NAME)))
        elif path.name == STUDY_NAME:
            found.append(path)
    return found


def run_key(record: ResultRecord) -> str:
    """usecase/dataset/scale/device used/backend: what makes two runs comparable."""
    scale = (record.config.get("scale") or {}).get("name", "-")
    backend = record.device.get("backend") or (record.config.get("backend") or {}).get("name")
    parts = (record.usecase, record.dataset.get("name"), scale, record.device.get("used"), backend)
    return "/".join(str(p if p is not None else "-") for p in parts)
