"""Seed study: does one setting (default: the training precision) move the Dice beyond seed noise?

Reads the ok covid_ct records of runs that differ only in their seed and in the grouping
setting, e.g. the four-by-two multirun

    python run.py -m scale=ci seed=1,2,3,4 usecase.precision=float32,mixed_bfloat16 ...
    usecase-bench-seed-study results/covid_ct --reference float32 --margin 0.01

For each group it gives the seeds, mean and sample standard deviation of the pooled Dice at
one threshold (default 0.3) and the median training images/s. For each other group it gives
the difference of mean Dice to the reference group with a 95 % confidence interval (Student t:
paired over the seeds when both groups ran the same seeds, Welch otherwise) and a verdict
against ``margin``: "within" when the whole interval lies inside [-margin, +margin],
"beyond" when it lies wholly outside, else "not established" (more seeds would narrow it).
Judging "within" on the 95 % interval is stricter than the usual two one-sided tests (90 %).
Failed runs are left out of the numbers and listed by name: a precision that makes training
diverge must not pass because only its good seeds were counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from usecases.covid_ct.evaluate import threshold_key
from usecases.errors import DataError, UserError
from usecases.records.record import ResultRecord, load_record
from usecases.records.sets import find_records, run_key
from usecases.studies.stats import paired_interval, welch_interval

# config keys that may differ between the runs of one study (besides the grouping setting);
# the data must be the same by checksum wherever it lies
FREE_KEYS = ("seed", "run_id", "note", "results_dir", "cache_dir", "report", "dataset.root")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Group:
    """The runs of one value of the grouping setting."""

    name: str
    seeds: tuple[int, ...]
    dice: tuple[float, ...]  # per seed, in the order of ``seeds``
    train_images_per_s: float | None  # median over the runs

    @property
    def mean(self) -> float:
        """Mean pooled Dice of the group's runs (0-1)."""
        return statistics.fmean(self.dice)

    @property
    def sd(self) -> float | None:
        """Sample standard deviation of the pooled Dice; None for a single run."""
        return statistics.stdev(self.dice) if len(self.dice) > 1 else None


@dataclass(frozen=True)
class Study:
    """The common setting, the groups, and the runs left out because they failed."""

    setting: str
    groups: list[Group]
    failed: list[str]  # "<group> seed <n> (<run id>): <error>"
    by: str = "device.precision.policy"  # the record field that names the groups


@dataclass(frozen=True)
class Difference:
    """Mean Dice of ``group`` minus that of the reference, with its confidence interval."""

    group: str
    reference: str
    diff: float
    low: float | None
    high: float | None
    method: str  # "paired t" | "Welch t" | "a group with one run: no interval"
    verdict: str  # "within" | "beyond" | "not established"
    speedup: float | None  # training images/s ratio to the reference


def load_groups(
    paths: Sequence[Path], *, by: str = "device.precision.policy", threshold: float = 0.3
) -> Study:
    """Read the records under ``paths`` and group their Dice at ``threshold`` by ``by``.

    ``by`` is a dotted path into the record. The study's setting is the common
    usecase/dataset/scale/device/backend (and "synthetic data" where so). Raises DataError
    (one line) when there are no ok covid_ct records, when two runs differ in a setting other
    than the seed and the grouping one (machine, GPU and data checksum included), or when a
    group holds one seed twice.
    """
    records, failed = _records(paths, by=by)
    for record in records:  # an unknown --by field is named before any settings differ
        _get(record.to_dict(), by)
    _same_settings(records, by=by)
    key = threshold_key(threshold)
    grouped: dict[str, list[ResultRecord]] = {}
    for record in records:
        grouped.setdefault(str(_get(record.to_dict(), by)), []).append(record)
    groups = []
    for name, runs in grouped.items():
        runs.sort(key=_seed)
        seeds = tuple(_seed(r) for r in runs)
        if len(set(seeds)) < len(seeds):
            raise DataError(f"{by}={name} has seed {_repeated(seeds)} twice: keep one run per seed")
        dice = tuple(_dice(r, key) for r in runs)
        speeds = [
            s
            for r in runs
            if (s := (r.timings.get("train_step") or {}).get("images_per_s")) is not None
        ]
        groups.append(Group(name, seeds, dice, statistics.median(speeds) if speeds else None))
    setting = run_key(records[0]) + (
        " (synthetic data)" if records[0].dataset.get("synthetic") else ""
    )
    return Study(setting, groups, failed, by)


def compare(groups: Sequence[Group], *, reference: str, margin: float) -> list[Difference]:
    """Each group other than ``reference`` against it (mean Dice difference, 95 % CI, verdict)."""
    by_name = {g.name: g for g in groups}
    if reference not in by_name:
        raise DataError(f"no runs with {reference!r}; the groups are {sorted(by_name)}")
    if len(by_name) < 2:
        raise DataError(
            f"only {reference!r} runs: nothing to compare (sweep the setting too, e.g. "
            "usecase.precision=float32,mixed_bfloat16)"
        )
    ref = by_name[reference]
    return [_difference(g, ref, margin=margin) for g in groups if g.name != reference]


def _difference(group: Group, ref: Group, *, margin: float) -> Difference:
    if group.seeds == ref.seeds and len(group.seeds) > 1:
        diff, low, high = paired_interval(group.dice, ref.dice, confidence=CONFIDENCE)
        method = "paired t"
    elif len(group.dice) > 1 and len(ref.dice) > 1:
        diff, low, high = welch_interval(group.dice, ref.dice, confidence=CONFIDENCE)
        method = "Welch t"
    else:
        diff, low, high = group.mean - ref.mean, None, None
        method = "a group with one run: no interval"
    speedup = (
        group.train_images_per_s / ref.train_images_per_s
        if group.train_images_per_s and ref.train_images_per_s
        else None
    )
    return Difference(
        group.name, ref.name, diff, low, high, method, _verdict(low, high, margin), speedup
    )


def _verdict(low: float | None, high: float | None, margin: float) -> str:
    if low is None or high is None:
        return "not established"
    if -margin <= low and high <= margin:
        return "within"
    if high < -margin or low > margin:
        return "beyond"
    return "not established"


def _records(paths: Sequence[Path], *, by: str) -> tuple[list[ResultRecord], list[str]]:
    """The ok covid_ct records, and a line for each failed one."""
    absent = [str(p) for p in paths if not Path(p).exists()]
    if absent:
        raise DataError(f"{', '.join(absent)} does not exist")
    records = [r for f in find_records(paths) if (r := load_record(f)).usecase == "covid_ct"]
    ok = [r for r in records if r.status == "ok"]
    if not ok:
        raise DataError(
            f"no ok covid_ct records under {', '.join(map(str, paths))} "
            f"({len(records)} covid_ct record(s) in all)"
        )
    failed = [
        f"{_group_of_failed(r, by)} seed {r.config.get('seed')} ({r.run_id}): {r.error}"
        for r in records
        if r.status != "ok"
    ]
    return ok, failed


def _group_of_failed(record: ResultRecord, by: str) -> str:
    try:
        return str(_get(record.to_dict(), by))
    except DataError:  # failed before the field was filled: the requested value
        return str((record.config.get("usecase") or {}).get("precision", "?"))


def _same_settings(records: list[ResultRecord], *, by: str) -> None:
    """Raise DataError naming the first setting in which two runs differ."""
    free = {*FREE_KEYS, "usecase.precision"} if by == "device.precision.policy" else {*FREE_KEYS}
    free.update((by, by.removeprefix("config.")))
    first = _settings(records[0], skip=free)
    for record in records[1:]:
        other = _settings(record, skip=free)
        names = first.keys() | other.keys()
        if not all("variables" in r.environment for r in (records[0], record)):
            # a record from before the variables were recorded: unknown, not different
            names = {n for n in names if not n.startswith("environment.variables.")}
        for name in sorted(names):
            if first.get(name) != other.get(name):
                raise DataError(
                    f"runs {records[0].run_id} and {record.run_id} differ in {name} "
                    f"({first.get(name)!r} vs {other.get(name)!r}): a seed study compares runs "
                    "that differ only in the seed and the grouping setting"
                )


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


def _get(data: Mapping, path: str):
    value = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise DataError(f"a record has no field {path!r} to group by")
        value = value[part]
    return value


def _seed(record: ResultRecord) -> int:
    seed = record.config.get("seed")
    if not isinstance(seed, int):
        raise DataError(f"run {record.run_id} records no integer seed (config.seed={seed!r})")
    return seed


def _dice(record: ResultRecord, key: str) -> float:
    value = (record.metrics.get(key) or {}).get("dice_pooled")
    if not isinstance(value, int | float):
        raise DataError(f"run {record.run_id} has no pooled Dice at threshold {key}")
    return float(value)


def _repeated(seeds: tuple[int, ...]) -> int:
    return next(s for s in seeds if seeds.count(s) > 1)


def format_table(
    study: Study, differences: Sequence[Difference], *, threshold: float, margin: float
) -> str:
    """The study as printed text: setting, one line per group and comparison, failed runs."""
    groups = study.groups
    lines = [
        f"seed study of {study.setting}, groups by {study.by}",
        f"{'group':18s} {'n':>3s} {'seeds':18s} {f'Dice@{threshold:g} mean':>15s} "
        f"{'sd':>7s} {'train img/s':>12s}",
    ]
    for g in groups:
        sd = "-" if g.sd is None else f"{g.sd:.4f}"
        speed = "-" if g.train_images_per_s is None else f"{g.train_images_per_s:.2f}"
        seeds = ",".join(map(str, g.seeds))
        lines.append(
            f"{g.name:18s} {len(g.seeds):3d} {seeds:18s} {g.mean:15.4f} {sd:>7s} {speed:>12s}"
        )
    for d in differences:
        ci = "" if d.low is None else f", 95 % CI [{d.low:+.4f}, {d.high:+.4f}] ({d.method})"
        speed = "" if d.speedup is None else f"; training speed {d.speedup:.2f}x"
        lines.append(
            f"{d.group} - {d.reference}: Dice {d.diff:+.4f}{ci}: {d.verdict} +-{margin:g}{speed}"
        )
    lines += [f"left out, failed: {line}" for line in study.failed]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the study; exit 0, or 1/2 with one error line."""
    parser = argparse.ArgumentParser(
        prog="usecase-bench-seed-study", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("records", type=Path, nargs="+", help="record.json files or folders")
    parser.add_argument("--by", default="device.precision.policy", help="record field to group by")
    parser.add_argument(
        "--reference", default="float32", help="the group the others are compared to"
    )
    parser.add_argument("--threshold", type=float, default=0.3, help="Dice threshold (0.1 ... 0.9)")
    parser.add_argument("--margin", type=float, default=0.01, help="allowed Dice difference")
    parser.add_argument("--json", type=Path, help="also write the study to this JSON file")
    args = parser.parse_args(argv)
    if args.margin < 0:
        print(f"error: --margin {args.margin:g} must be >= 0 (a Dice difference)", file=sys.stderr)
        return 2
    try:
        study = load_groups(args.records, by=args.by, threshold=args.threshold)
        differences = compare(study.groups, reference=args.reference, margin=args.margin)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(format_table(study, differences, threshold=args.threshold, margin=args.margin))
    if args.json:
        payload = {
            "setting": study.setting,
            "by": args.by,
            "threshold": args.threshold,
            "margin": args.margin,
            "confidence": CONFIDENCE,
            "groups": [{**asdict(g), "mean": g.mean, "sd": g.sd} for g in study.groups],
            "differences": [asdict(d) for d in differences],
            "failed": study.failed,
        }
        try:
            args.json.write_text(json.dumps(payload, indent=2) + "\n")
        except OSError as err:
            print(f"error: cannot write {args.json} ({err.strerror})", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
