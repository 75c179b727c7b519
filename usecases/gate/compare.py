"""The gate's comparison: current records against a baseline set, rule by rule.

Records are matched by ``records.sets.run_key`` (use case, dataset, scale, device used,
backend). Every check of the record itself (``checks``: ONNX parity, int8 Dice ...) that passed
in the baseline must pass again. A rule that matches no value in the baseline is an input
error (exit 2, naming the rule: the baseline is stale or the rule is wrong), unless the rule
says ``optional: true``, then it is a note; a value the baseline has but the current run lacks
is ``missing`` (a regression).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usecases.errors import DataError
from usecases.gate.rules import GateInputError, Rule, Rules
from usecases.numbers import finite
from usecases.records.record import ResultRecord, load_record
from usecases.records.sets import find_records, run_key

REGRESSION, OK, MISSING, NEW = "REGRESSION", "ok", "missing", "new"
# Config parts that must agree for two runs to be compared (besides the matching key).
_COMPARABLE = ("scale", "dataset", "seed")
_IGNORED_DATASET_KEYS = ("root",)


@dataclass(frozen=True)
class Check:
    """One compared value: what, the two numbers, the allowance, the verdict."""

    run: str
    path: str
    kind: str
    baseline: float | None
    current: float | None
    change: str
    allowed: str
    verdict: str


@dataclass(frozen=True)
class GateResult:
    """All checks, the notes (config differences, rules matching nothing) and the verdict."""

    checks: tuple[Check, ...]
    notes: tuple[str, ...]

    @property
    def regressions(self) -> tuple[Check, ...]:
        """Checks that failed (a worse value, a missing value or a failed run)."""
        return tuple(c for c in self.checks if c.verdict in (REGRESSION, MISSING))

    @property
    def exit_code(self) -> int:
        """0 when every rule holds, 1 on a regression."""
        return 1 if self.regressions else 0


def load_set(paths: Sequence[Path], *, what: str) -> dict[str, tuple[Path, ResultRecord]]:
    """Load and validate every record under ``paths``, keyed by ``run_key``; GateInputError."""
    absent = [str(p) for p in paths if not Path(p).exists()]
    if absent:
        raise GateInputError(f"{what} {', '.join(absent)} does not exist")
    files = find_records(paths)
    if not files:
        shown = ", ".join(str(p) for p in paths)
        raise GateInputError(f"no {what} records found in {shown}")
    records: dict[str, tuple[Path, ResultRecord]] = {}
    for file in files:
        try:
            record = load_record(file)
        except DataError as err:
            raise GateInputError(f"{what}: {err}") from err
        key = run_key(record)
        if key in records:
            raise GateInputError(
                f"{what} has two records for {key} ({records[key][0]} and {file}); keep one"
            )
        records[key] = (file, record)
    return records


def compare_sets(
    baseline: Mapping[str, tuple[Path, ResultRecord]],
    current: Mapping[str, tuple[Path, ResultRecord]],
    *,
    rules: Rules,
) -> GateResult:
    """Apply ``rules`` to each matched pair; GateInputError when the sets cannot be compared."""
    unmatched = sorted(set(current) ^ set(baseline))
    if unmatched:
        where = [f"{k} ({'no baseline' if k in current else 'not in current'})" for k in unmatched]
        raise GateInputError(
            f"runs not comparable: {'; '.join(where)}; baseline keys: {', '.join(sorted(baseline))}"
        )
    checks: list[Check] = []
    notes: list[str] = []
    for key in sorted(current):
        (base_path, base), (_, cur) = baseline[key], current[key]
        if base.status != "ok":
            raise GateInputError(f"baseline {base_path} has status {base.status}; choose another")
        mismatch = _config_mismatch(base.config, cur.config)
        if mismatch:
            raise GateInputError(f"runs not comparable for {key}: {mismatch}")
        other = _diff("usecase", base.config.get("usecase"), cur.config.get("usecase"))
        if other:
            more = f" (+{len(other) - 3} more)" if len(other) > 3 else ""
            notes.append(f"{key}: config differs: {'; '.join(other[:3])}{more}")
        policies = [(r.device.get("precision") or {}).get("policy") for r in (base, cur)]
        if policies[0] != policies[1]:
            notes.append(f"{key}: precision {policies[0]} in baseline vs {policies[1]}")
        caches = [(r.timings.get("compilation_cache") or {}).get("state") for r in (base, cur)]
        if caches[0] != caches[1]:  # a warm first model loads its program: not like for like
            notes.append(f"{key}: JAX compilation cache {caches[0]} in baseline vs {caches[1]}")
        variables = _variables_differ(base, cur)
        if variables:
            notes.append(f"{key}: environment differs: {variables}")
        if cur.status != "ok":
            why = f"{cur.status}: {cur.error or 'no reason given'}"
            checks.append(Check(key, "status", "status", None, None, why, "ok", REGRESSION))
            continue
        checks.extend(_record_checks(key, base, cur))
        device = str(cur.device.get("used"))
        for rule in rules.by_usecase.get(cur.usecase, ()):
            matched = list(_values(base.to_dict(), rule.path.split("/")))
            if not matched and not rule.optional:
                raise GateInputError(
                    f"rule {rule.path} ({rules.source}) matches no value in the baseline "
                    f"{base_path}: remake the baseline (scripts/nightly.sh --write-baseline) or "
                    "mark the rule optional: true"
                )
            if not matched:
                notes.append(f"{key}: optional rule {rule.path} matches no value in the baseline")
            cur_dict = cur.to_dict()
            for path, base_value in matched:
                cur_value = _lookup(cur_dict, path)
                checks.append(
                    _check(key, "/".join(path), rule, base_value, cur_value, device, rules)
                )
    return GateResult(checks=tuple(checks), notes=tuple(notes))


def _record_checks(key: str, base: ResultRecord, cur: ResultRecord) -> list[Check]:
    """The record's own checks (ONNX parity, int8 Dice ...) that passed in the baseline.

    Each must pass again: failed or skipped now is a regression, gone is a missing value.
    """
    now = {c.get("name"): c for c in cur.checks if isinstance(c, Mapping)}
    out = []
    for check in base.checks:
        if not isinstance(check, Mapping) or not check.get("passed") or check.get("skipped"):
            continue
        name = str(check.get("name"))
        mine = now.get(name)
        if mine is None:
            change, verdict = "absent", MISSING
        elif mine.get("skipped"):
            change, verdict = _said("skipped", mine), REGRESSION
        elif mine.get("passed"):
            change, verdict = "passed", OK
        else:
            change, verdict = _said("failed", mine), REGRESSION
        out.append(Check(key, f"checks/{name}", "check", None, None, change, "passed", verdict))
    return out


def _said(what: str, check: Mapping) -> str:
    return f"{what}: {check['detail']}" if check.get("detail") else what


def _variables_differ(base: ResultRecord, cur: ResultRecord) -> str:
    """The kernel/thread/device variables that differ ("" also when a record lacks them)."""
    b, c = (r.environment.get("variables") for r in (base, cur))
    if not (isinstance(b, Mapping) and isinstance(c, Mapping)):
        return ""
    names = sorted(n for n in b.keys() | c.keys() if b.get(n) != c.get(n))
    return "; ".join(
        f"{n} {b.get(n, 'unset')!r} in baseline vs {c.get(n, 'unset')!r}" for n in names
    )


def _config_mismatch(base: Mapping, cur: Mapping) -> str:
    """'scale.n_filters 4 vs 8; ...' for the config parts that must agree, '' when they do."""
    diffs: list[str] = []
    for part in _COMPARABLE:
        b, c = base.get(part), cur.get(part)
        if part == "dataset" and isinstance(b, Mapping) and isinstance(c, Mapping):
            b = {k: v for k, v in b.items() if k not in _IGNORED_DATASET_KEYS}
            c = {k: v for k, v in c.items() if k not in _IGNORED_DATASET_KEYS}
        diffs.extend(_diff(part, b, c))
    return "; ".join(diffs[:3]) + (f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else "")


def _diff(prefix: str, b: Any, c: Any) -> list[str]:
    if isinstance(b, Mapping) and isinstance(c, Mapping):
        return [
            d for k in sorted(set(b) | set(c)) for d in _diff(f"{prefix}.{k}", b.get(k), c.get(k))
        ]
    return [] if b == c else [f"{prefix} {b!r} in baseline vs {c!r}"]


def _values(obj: Any, pattern: list[str], prefix: tuple[str, ...] = ()) -> Iterator:
    """(path, number) for every number in ``obj`` whose path matches the glob ``pattern``."""
    if not pattern:
        value = finite(obj)
        if value is not None:
            yield prefix, value
        return
    if not isinstance(obj, Mapping):
        return
    head, rest = pattern[0], pattern[1:]
    for key in sorted(obj, key=str):
        if fnmatch.fnmatchcase(str(key), head):
            yield from _values(obj[key], rest, (*prefix, str(key)))


def _lookup(obj: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(obj, Mapping) or key not in obj:
            return None
        obj = obj[key]
    return finite(obj)


def _check(
    run: str, path: str, rule: Rule, base: float, cur: float | None, device: str, rules: Rules
) -> Check:
    """Compare one value: differences for metrics, ratios for timings."""
    if cur is None:
        return Check(run, path, rule.kind, base, None, "absent", "present", MISSING)
    if rule.kind == "timing":
        limit = rule.max_slowdown or rules.timing_noise.get(
            device, max(rules.timing_noise.values(), default=2.0)
        )
        if base <= 0:
            raise GateInputError(
                f"baseline {run}: {path} is {base:g}, not a timing; write the baseline again"
            )
        if cur <= 0:  # a timer that reads 0 or less is broken, not fast
            return Check(run, path, rule.kind, base, cur, "not positive", "> 0", REGRESSION)
        slowdown = cur / base if rule.direction == "lower" else base / cur
        verdict = REGRESSION if slowdown > limit else OK
        return Check(
            run,
            path,
            rule.kind,
            base,
            cur,
            f"x{slowdown:.2f} ({_pace(slowdown)})",
            f"<= x{limit:g}",
            verdict,
        )
    allowance = max(rule.abs_tol, rule.rel_tol * abs(base))
    delta = cur - base
    if rule.direction == "higher":
        bad, allowed = delta < -allowance - 1e-12, f">= {base - allowance:.4g}"
    elif rule.direction == "lower":
        bad, allowed = delta > allowance + 1e-12, f"<= {base + allowance:.4g}"
    else:
        bad, allowed = abs(delta) > allowance + 1e-12, f"= {fmt_value(base)} ± {allowance:.4g}"
    return Check(
        run, path, rule.kind, base, cur, f"{delta:+.4g}", allowed, REGRESSION if bad else OK
    )


def _pace(slowdown: float) -> str:
    if slowdown > 1:
        return "slower"
    return "faster" if slowdown < 1 else "same"


def fmt_value(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value.is_integer() and abs(value) < 1e12 else f"{value:.4g}"
