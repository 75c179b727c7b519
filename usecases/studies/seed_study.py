"""Seed study: does one setting (default: the training precision) move the Dice beyond seed noise?

Reads the ok covid_ct records of runs that differ only in their seed and in the grouping
setting, e.g. the four-by-two multirun

    python run.py -m scale=ci seed=1,2,3,4 usecase.precision=float32,mixed_bfloat16 ...
    usecase-bench-seed-study results/covid_ct --reference float32 --margin 0.01

For each group it gives the seeds, mean and sample standard deviation of the pooled Dice at
one threshold (default 0.3) and the median training images/s. For each other group it gives
the difference of mean Dice to the reference group with a 95 % confidence interval (Student t:
paired over the seeds when both groups ran the same seeds from the same initial weights, by
their recorded ``environment.implementation.initial_weights_sha256`` where records carry it;
Welch otherwise) and a verdict
against ``margin``: "within" when the whole interval lies inside [-margin, +margin],
"beyond" when it lies wholly outside, else "not established" (more seeds would narrow it).
Judging "within" on the 95 % interval is stricter than the usual two one-sided tests (90 %).
Failed runs are left out of the numbers and listed by name: a precision that makes training
diverge must not pass because only its good seeds were counted.

``--paired`` requires every group to be paired with the reference (same seeds, same initial
weights) and adds the per-seed differences and the difference at every threshold (the whole
Dice curve), e.g. the port against the paper's own code given the port's initial weights:

    python run.py -m scale=ci seed=1,2,3,4,5,6,7,8 usecase.implementation=port,original ...
    usecase-bench-seed-study results/covid_ct --by environment.implementation.label \
        --reference port --paired
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from usecases.covid_ct.evaluate import threshold_key
from usecases.errors import DataError, UserError
from usecases.records.record import ResultRecord
from usecases.records.sets import run_key
from usecases.studies.paired import format_details, is_paired, paired_details
from usecases.studies.runs import (
    check_same_settings,
    covid_records,
    record_field,
    repeated_seed,
    seed_of,
)
from usecases.studies.stats import paired_interval, welch_interval

CONFIDENCE = 0.95
# the config keys a grouping field follows from: free to differ between the groups
_IMPLEMENTATION_KEYS = ("usecase.implementation", "usecase.original.initial_weights")
_FREED_WITH = {
    "device.precision.policy": ("usecase.precision",),
    "environment.implementation.name": _IMPLEMENTATION_KEYS,
    "environment.implementation.label": _IMPLEMENTATION_KEYS,
}


@dataclass(frozen=True)
class Group:
    """The runs of one value of the grouping setting."""

    name: str
    seeds: tuple[int, ...]
    dice: tuple[float, ...]  # per seed, in the order of ``seeds``
    train_images_per_s: float | None  # median over the runs
    # per seed: the digest of the initial weights (None: not recorded), and the pooled Dice
    # at each threshold the runs evaluated ("0.1" ... "0.9")
    initial_weights: tuple[str | None, ...] = ()
    curve: dict[str, tuple[float, ...]] = field(default_factory=dict)

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
    records, failed_runs = covid_records(paths)
    failed = [
        f"{_group_of_failed(r, by)} seed {r.config.get('seed')} ({r.run_id}): {r.error}"
        for r in failed_runs
    ]
    for record in records:  # an unknown --by field is named before any settings differ
        record_field(record.to_dict(), by)
    free = {by, by.removeprefix("config."), *_FREED_WITH.get(by, ())}
    check_same_settings(
        records,
        free=free,
        what="a seed study compares runs that differ only in the seed and the grouping setting",
    )
    key = threshold_key(threshold)
    grouped: dict[str, list[ResultRecord]] = {}
    for record in records:
        grouped.setdefault(str(record_field(record.to_dict(), by)), []).append(record)
    groups = []
    for name, runs in grouped.items():
        runs.sort(key=seed_of)
        seeds = tuple(seed_of(r) for r in runs)
        if (twice := repeated_seed(seeds)) is not None:
            raise DataError(f"{by}={name} has seed {twice} twice: keep one run per seed")
        dice = tuple(_dice(r, key) for r in runs)
        speeds = [
            s
            for r in runs
            if (s := (r.timings.get("train_step") or {}).get("images_per_s")) is not None
        ]
        groups.append(
            Group(
                name,
                seeds,
                dice,
                statistics.median(speeds) if speeds else None,
                initial_weights=tuple(_initial_weights(r) for r in runs),
                curve=_curve(runs),
            )
        )
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
    if is_paired(group, ref):
        diff, low, high = paired_interval(group.dice, ref.dice, confidence=CONFIDENCE)
        method = "paired t"
    elif len(group.dice) > 1 and len(ref.dice) > 1:
        diff, low, high = welch_interval(group.dice, ref.dice, confidence=CONFIDENCE)
        method = "Welch t" + (" (initial weights differ)" if group.seeds == ref.seeds else "")
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


def _group_of_failed(record: ResultRecord, by: str) -> str:
    try:
        return str(record_field(record.to_dict(), by))
    except DataError:  # failed before the field was filled: the requested value
        return str((record.config.get("usecase") or {}).get("precision", "?"))


def _initial_weights(record: ResultRecord) -> str | None:
    implementation = record.environment.get("implementation") or {}
    return implementation.get("initial_weights_sha256")


def _curve(runs: Sequence[ResultRecord]) -> dict[str, tuple[float, ...]]:
    """Pooled Dice per threshold that every run evaluated, per run."""
    keys = [k for k in runs[0].metrics if _is_threshold(k)]
    shared = [k for k in keys if all(k in r.metrics for r in runs)]
    return {k: tuple(_dice(r, k) for r in runs) for k in sorted(shared, key=float)}


def _is_threshold(key: str) -> bool:
    try:
        return 0 < float(key) < 1
    except ValueError:
        return False


def _dice(record: ResultRecord, key: str) -> float:
    value = (record.metrics.get(key) or {}).get("dice_pooled")
    if not isinstance(value, int | float):
        raise DataError(f"run {record.run_id} has no pooled Dice at threshold {key}")
    return float(value)


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
    parser.add_argument(
        "--paired",
        action="store_true",
        help="require pairing by seed and initial weights; add per-seed and per-threshold lines",
    )
    parser.add_argument("--json", type=Path, help="also write the study to this JSON file")
    args = parser.parse_args(argv)
    if args.margin < 0:
        print(f"error: --margin {args.margin:g} must be >= 0 (a Dice difference)", file=sys.stderr)
        return 2
    try:
        study = load_groups(args.records, by=args.by, threshold=args.threshold)
        differences = compare(study.groups, reference=args.reference, margin=args.margin)
        details = (
            paired_details(
                study.groups,
                reference=args.reference,
                threshold=threshold_key(args.threshold),
                confidence=CONFIDENCE,
            )
            if args.paired
            else []
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(format_table(study, differences, threshold=args.threshold, margin=args.margin))
    if details:
        print(format_details(details, confidence=CONFIDENCE))
    if args.json:
        payload = {
            "setting": study.setting,
            "by": args.by,
            "threshold": args.threshold,
            "margin": args.margin,
            "confidence": CONFIDENCE,
            "groups": [{**asdict(g), "mean": g.mean, "sd": g.sd} for g in study.groups],
            "differences": [asdict(d) for d in differences],
            "paired": [asdict(d) for d in details],
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
