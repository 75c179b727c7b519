"""Published values (published.yaml) and the verdicts that compare a run's metrics with them.

A ``target`` reference gets ``pass``/``fail`` when the run's settings match its ``requires``
and the data are real; a ``context`` reference is shown beside the measurement, never judged.
Look-up of the measured value by ``(metric, at)``: ``at`` null -> ``metrics[metric]``;
``at`` "best" -> the highest ``metrics[key][metric]`` over per-threshold rows;
otherwise ``metrics[at][metric]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from usecases.errors import DataError
from usecases.numbers import finite

ROLES = ("target", "context")
VERDICTS = ("pass", "fail", "not comparable")
BEST = "best"
ONE_RUN = "one run: a reproduction verdict needs a study over seeds (usecase-bench-study)"

_FIELDS = (
    "id",
    "usecase",
    "metric",
    "definition",
    "at",
    "value",
    "tolerance",
    "dataset",
    "requires",
    "role",
    "citation",
    "source",
)


@dataclass(frozen=True)
class Reference:
    """One published value: ``value`` of ``metric`` at ``at``, with an absolute ``tolerance``.

    ``requires`` maps a run setting (e.g. ``dataset``) to the values it may take for a verdict.
    """

    id: str
    usecase: str
    metric: str
    definition: str
    at: str | None
    value: float
    tolerance: float | None
    dataset: str
    requires: Mapping[str, tuple[str, ...]] = field(hash=False)
    role: str
    citation: str
    source: str
    note: str = ""


def _at_key(at: Any) -> str | None:
    """YAML ``at`` -> None, "best" or a threshold key such as "0.3"."""
    if at is None:
        return None
    if isinstance(at, float | int) and not isinstance(at, bool):
        return f"{round(float(at), 6):g}"
    return str(at)


def _reference(entry: Any, *, where: str) -> Reference:
    """Validate one YAML entry and build its ``Reference``."""
    if not isinstance(entry, Mapping):
        raise DataError(f"{where}: each reference must be a mapping, got {type(entry).__name__}")
    missing = [name for name in _FIELDS if name not in entry]
    if missing:
        raise DataError(f"{where} ({entry.get('id', '?')}): missing fields {', '.join(missing)}")
    ref_id = str(entry["id"])
    if entry["role"] not in ROLES:
        raise DataError(f"{where} ({ref_id}): role must be one of {ROLES}, got {entry['role']!r}")
    tolerance = entry["tolerance"]
    if entry["role"] == "target" and (tolerance is None or float(tolerance) < 0):
        raise DataError(f"{where} ({ref_id}): a target reference needs a tolerance >= 0")
    requires = entry["requires"] or {}
    if not isinstance(requires, Mapping):
        raise DataError(f"{where} ({ref_id}): requires must map a setting to allowed values")
    allowed = {
        str(key): tuple(str(v) for v in (vals if isinstance(vals, list | tuple) else [vals]))
        for key, vals in requires.items()
    }
    return Reference(
        id=ref_id,
        usecase=str(entry["usecase"]),
        metric=str(entry["metric"]),
        definition=" ".join(str(entry["definition"]).split()),
        at=_at_key(entry["at"]),
        value=float(entry["value"]),
        tolerance=None if tolerance is None else float(tolerance),
        dataset=str(entry["dataset"]),
        requires=allowed,
        role=str(entry["role"]),
        citation=" ".join(str(entry["citation"]).split()),
        source=str(entry["source"]),
        note=str(entry.get("note") or ""),
    )


def load_references(*, path: str | Path | None = None) -> list[Reference]:
    """Read the ``references`` list of ``path`` (default: the packaged published.yaml).

    Other top-level keys of the file (YAML anchors of shared fields) are ignored.
    """
    if path is None:
        text = resources.files("usecases.records").joinpath("published.yaml").read_text("utf-8")
        where = "usecases/records/published.yaml"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise DataError(f"cannot read references file {path}: {err.strerror}") from err
        where = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise DataError(f"{where} is not valid YAML: {err}") from err
    if not isinstance(data, Mapping) or not isinstance(data.get("references"), list):
        raise DataError(f"{where} must have a top-level 'references' list")
    refs = [_reference(entry, where=where) for entry in data["references"]]
    ids = [ref.id for ref in refs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DataError(f"{where}: duplicate reference ids {', '.join(duplicates)}")
    return refs


def measured_value(ref: Reference, metrics: Mapping) -> tuple[float | None, str | None]:
    """The run's value for ``ref`` and the ``at`` key it was read at (None if absent)."""
    if ref.at is None:
        return finite(metrics.get(ref.metric)), None
    if ref.at == BEST:
        rows = [
            (key, finite(row.get(ref.metric)))
            for key, row in metrics.items()
            if isinstance(row, Mapping)
        ]
        rows = [(key, value) for key, value in rows if value is not None]
        if not rows:
            return None, None
        key, value = max(rows, key=lambda kv: kv[1])  # first of equal maxima
        return value, str(key)
    row = metrics.get(ref.at)
    if not isinstance(row, Mapping):
        return None, ref.at
    return finite(row.get(ref.metric)), ref.at


def _mismatch(requires: Mapping[str, tuple[str, ...]], settings: Mapping) -> str | None:
    """Reason naming the first setting outside ``requires``, or None when all match."""
    for key, allowed in requires.items():
        need = " or ".join(allowed)
        if key not in settings or settings[key] is None:
            return f"setting {key} not given; this reference needs {key} {need}"
        if str(settings[key]) not in allowed:
            return f"{key} is {settings[key]}; this reference needs {key} {need}"
    return None


def compare(
    *,
    usecase: str,
    metrics: Mapping,
    settings: Mapping,
    synthetic: bool,
    references: Sequence[Reference] | None = None,
) -> list[dict]:
    """One comparison per reference of ``usecase``, in file order.

    Args:
        usecase: e.g. ``"covid_ct"``.
        metrics: the run's metrics (for covid_ct, ``segmentation_metrics`` output).
        settings: run settings checked against each reference's ``requires``.
        synthetic: True for generated data; then no verdict is given.
        references: defaults to ``load_references()``.

    Returns:
        dicts with keys ``reference_id, metric, at, measured_at, published, measured,
        difference, tolerance, verdict, reason, basis, citation`` (``basis``: ``ONE_RUN``);
        ``verdict`` is "pass", "fail" or "not comparable"; ``difference`` = measured -
        published (None when settings differ, data are synthetic or nothing was measured).
    """
    refs = load_references() if references is None else references
    out: list[dict] = []
    for ref in refs:
        if ref.usecase != usecase:
            continue
        measured, measured_at = measured_value(ref, metrics)
        mismatch = _mismatch(ref.requires, settings)
        difference = None
        if measured is not None and mismatch is None and not synthetic:
            difference = round(measured - ref.value, 6)
        if synthetic:
            verdict, reason = "not comparable", "synthetic data"
        elif mismatch is not None:
            verdict, reason = "not comparable", mismatch
        elif ref.role == "context":
            verdict, reason = "not comparable", f"context only: {ref.note or 'never judged'}"
        elif measured is None or difference is None or ref.tolerance is None:
            at = "" if ref.at is None else f" at {ref.at}"
            verdict, reason = "not comparable", f"no measured {ref.metric}{at}"
        else:
            ok = abs(difference) <= ref.tolerance + 1e-9
            verdict = "pass" if ok else "fail"
            sign = "<=" if ok else ">"
            reason = f"|difference| {abs(difference):.3f} {sign} tolerance {ref.tolerance:g}"
        out.append(
            {
                "reference_id": ref.id,
                "metric": ref.metric,
                "at": ref.at,
                "measured_at": measured_at,
                "published": ref.value,
                "measured": measured,
                "difference": difference,
                "tolerance": ref.tolerance,
                "verdict": verdict,
                "reason": reason,
                "basis": ONE_RUN,
                "citation": ref.citation,
            }
        )
    return out
