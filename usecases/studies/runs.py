"""The runs of one study: ok covid_ct records, failed ones apart, and the same-settings check.

Shared by the seed study (one setting swept) and the reproduction study (seeds only): runs
may differ in the seed and the keys in ``FREE_KEYS`` (plus those a study frees), nothing
else, machine, GPU and data checksum included.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from usecases.errors import DataError
from usecases.records.record import ResultRecord, load_record
from usecases.records.sets import find_records, run_key

# config keys that may differ between the runs of one study; the data must be the same by
# checksum wherever it lies
FREE_KEYS = ("seed", "run_id", "note", "results_dir", "cache_dir", "report", "dataset.root")


def covid_records(paths: Sequence[Path]) -> tuple[list[ResultRecord], list[ResultRecord]]:
    """(ok, failed) covid_ct records under ``paths`` (see ``covid_record_files``)."""
    ok, failed = covid_record_files(paths)
    return [r for _, r in ok], [r for _, r in failed]


def covid_record_files(
    paths: Sequence[Path],
) -> tuple[list[tuple[Path, ResultRecord]], list[tuple[Path, ResultRecord]]]:
    """(ok, failed) (file, record) pairs of the covid_ct records under ``paths``; DataError when
    a path is missing or no run is ok."""
    absent = [str(p) for p in paths if not Path(p).exists()]
    if absent:
        raise DataError(f"{', '.join(absent)} does not exist")
    found = [(f, load_record(f)) for f in find_records(paths)]
    records = [(f, r) for f, r in found if r.usecase == "covid_ct"]
    ok = [(f, r) for f, r in records if r.status == "ok"]
    if not ok:
        raise DataError(
            f"no ok covid_ct records under {', '.join(map(str, paths))} "
            f"({len(records)} covid_ct record(s) in all)"
        )
    return ok, [(f, r) for f, r in records if r.status != "ok"]


def check_same_settings(
    records: Sequence[ResultRecord], *, free: Collection[str], what: str
) -> None:
    """Raise DataError naming the first setting (outside ``free``) in which two runs differ.

    ``what`` ends the message, e.g. "a seed study compares runs that differ only in the seed".
    """
    skip = {*FREE_KEYS, *free}
    first = _settings(records[0], skip=skip)
    for record in records[1:]:
        other = _settings(record, skip=skip)
        names = first.keys() | other.keys()
        if not all("variables" in r.environment for r in (records[0], record)):
            # a record from before the variables were recorded: unknown, not different
            names = {n for n in names if not n.startswith("environment.variables.")}
        for name in sorted(names):
            if first.get(name) != other.get(name):
                raise DataError(
                    f"runs {records[0].run_id} and {record.run_id} differ in {name} "
                    f"({first.get(name)!r} vs {other.get(name)!r}): {what}"
                )


def record_field(data: Mapping, path: str) -> Any:
    """The value at dotted ``path`` of a record dict; DataError when a part is missing."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise DataError(f"a record has no field {path!r} to group by")
        value = value[part]
    return value


def seed_of(record: ResultRecord) -> int:
    """The run's integer seed; DataError when the record has none."""
    seed = record.config.get("seed")
    if not isinstance(seed, int):
        raise DataError(f"run {record.run_id} records no integer seed (config.seed={seed!r})")
    return seed


def repeated_seed(seeds: Sequence[int]) -> int | None:
    """The first seed that occurs twice, or None."""
    return next((s for s in seeds if list(seeds).count(s) > 1), None)


def _settings(record: ResultRecord, *, skip: set[str]) -> dict:
    env = record.environment
    return {
        **_flat(record.config, skip=skip),
        # a synthetic phantom is drawn from the seed: its checksum follows the seed
        "data checksum": "synthetic"
        if record.dataset.get("synthetic")
        else record.dataset.get("checksum"),
        "run (usecase/dataset/scale/device/backend)": run_key(record),
        "GPU": [g.get("name") for g in env.get("gpus") or [] if isinstance(g, Mapping)],
        "CPU": (env.get("cpu") or {}).get("model") if isinstance(env.get("cpu"), Mapping) else None,
        **{
            f"environment.variables.{name}": value
            for name, value in (env.get("variables") or {}).items()
            if f"environment.variables.{name}" not in skip
        },
    }


def _flat(config: Mapping, *, skip: set[str], prefix: str = "") -> dict:
    out = {}
    for name, value in config.items():
        path = f"{prefix}{name}"
        if path in skip:
            continue
        if isinstance(value, Mapping):
            out.update(_flat(value, skip=skip, prefix=f"{path}."))
        else:
            out[path] = value
    return out
