"""Regression gate: compare current result records with a baseline set, rule by rule.

Records are matched by (use case, dataset, scale, device used, backend). Metrics are compared
as differences with absolute/relative tolerances, timings as ratios with a per-device noise
allowance; the rules live in ``conf/gate/default.yaml`` (documented there). Every check of
the record itself (``checks``: ONNX parity, int8 Dice ...) that passed in the baseline must
pass again. Exit codes of
``main``: 0 all rules hold, 1 a regression, 2 unusable inputs (missing or corrupt records,
schema mismatch, runs that cannot be compared).

    python -m usecases.core.gate --baseline results/baselines/cpu-smoke --current OUT/runs
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from usecases.core.errors import DataError
from usecases.core.record import ResultRecord, load_record

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "conf" / "gate" / "default.yaml"
KINDS = ("metric", "timing")
DIRECTIONS = ("higher", "lower", "equal")
REGRESSION, OK, MISSING, NEW = "REGRESSION", "ok", "missing", "new"
# Config parts that must agree for two runs to be compared (besides the matching key).
_COMPARABLE = ("scale", "dataset", "seed")
_IGNORED_DATASET_KEYS = ("root",)


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


@dataclass(frozen=True)
class Rules:
    """Per-use-case rules and the allowed timing slowdown per device used."""

    by_usecase: Mapping[str, tuple[Rule, ...]]
    timing_noise: Mapping[str, float]
    source: str


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
        if value is not None and (_number(value) is None or value < 0):
            raise GateInputError(f"{where}: {key} of {entry['path']} must be a number >= 0")
    return Rule(
        path=str(entry["path"]),
        kind=kind,
        direction=direction,
        abs_tol=float(numbers["abs_tol"] or 0.0),
        rel_tol=float(numbers["rel_tol"] or 0.0),
        max_slowdown=None if numbers["max_slowdown"] is None else float(numbers["max_slowdown"]),
    )


def find_records(paths: Sequence[Path]) -> list[Path]:
    """Expand folders into the ``record.json`` files below them; files are kept as given."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.rglob("record.json")))
        else:
            found.append(path)
    return found


def run_key(record: ResultRecord) -> str:
    """usecase/dataset/scale/device used/backend: what makes two runs comparable."""
    scale = (record.config.get("scale") or {}).get("name", "-")
    backend = record.device.get("backend") or (record.config.get("backend") or {}).get("name")
    parts = (record.usecase, record.dataset.get("name"), scale, record.device.get("used"), backend)
    return "/".join(str(p if p is not None else "-") for p in parts)


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
            if not matched:
                notes.append(f"{key}: rule {rule.path} matches no value in the baseline")
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
        value = _number(obj)
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
    return _number(obj)


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
        bad, allowed = abs(delta) > allowance + 1e-12, f"= {_fmt(base)} ± {allowance:.4g}"
    return Check(
        run, path, rule.kind, base, cur, f"{delta:+.4g}", allowed, REGRESSION if bad else OK
    )


def format_table(result: GateResult) -> str:
    """Plain-text table of every check, worst first, then the notes and a one-line verdict."""
    rows = [("run", "check", "baseline", "current", "change", "allowed", "verdict")]
    ordered = sorted(result.checks, key=lambda c: (c.verdict == OK, c.run, c.path))
    rows += [
        (c.run, c.path, _fmt(c.baseline), _fmt(c.current), c.change, c.allowed, c.verdict)
        for c in ordered
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines += [f"note: {n}" for n in result.notes]
    lines.append(verdict_line(result))
    return "\n".join(lines)


def format_markdown(result: GateResult, *, title: str = "Regression gate") -> str:
    """The same table in GitHub Markdown (for a CI job summary or a pull request)."""
    out = [f"## {title}", "", verdict_line(result), ""]
    out += ["| run | check | baseline | current | change | allowed | verdict |", "|---" * 7 + "|"]
    for c in sorted(result.checks, key=lambda c: (c.verdict == OK, c.run, c.path)):
        verdict = f"**{c.verdict}**" if c.verdict != OK else c.verdict
        cells = (c.run, c.path, _fmt(c.baseline), _fmt(c.current), c.change, c.allowed, verdict)
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    out += [""] + [f"- note: {n}" for n in result.notes]
    return "\n".join(out).rstrip() + "\n"


def verdict_line(result: GateResult) -> str:
    """'gate: PASS (N checks)' or 'gate: FAIL, K regressions: run path, ...'."""
    bad = result.regressions
    if not bad:
        return f"gate: PASS ({len(result.checks)} checks hold)"
    named = ", ".join(f"{c.run} {c.path}" for c in bad)
    return f"gate: FAIL, {len(bad)} regression{'s' if len(bad) > 1 else ''}: {named}"


def _pace(slowdown: float) -> str:
    if slowdown > 1:
        return "slower"
    return "faster" if slowdown < 1 else "same"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value.is_integer() and abs(value) < 1e12 else f"{value:.4g}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _positive(value: Any) -> bool:
    number = _number(value)
    return number is not None and number > 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: compare --current records with --baseline records; exit 0 pass, 1 fail, 2 unusable."""
    parser = argparse.ArgumentParser(
        prog="usecase-bench-gate",
        description="Compare current result records with a baseline set (exit 0 pass, "
        "1 regression, 2 unusable inputs).",
    )
    parser.add_argument(
        "--baseline", type=Path, nargs="+", required=True, help="records or folders"
    )
    parser.add_argument("--current", type=Path, nargs="+", required=True, help="records or folders")
    parser.add_argument(
        "--rules", type=Path, default=None, help=f"rules YAML (default {DEFAULT_RULES})"
    )
    parser.add_argument(
        "--ignore-usecase",
        action="append",
        default=[],
        metavar="NAME",
        help="leave this use case out of both sets (e.g. one the nightly skipped)",
    )
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the table as Markdown"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the checks as JSON")
    args = parser.parse_args(argv)
    try:
        for option, out in (("--markdown", args.markdown), ("--json", args.json)):
            if out is not None and out.is_dir():
                raise GateInputError(f"{option} {out} is a folder; give a file name")
        rules = load_rules(path=args.rules)
        baseline = load_set(args.baseline, what="baseline")
        current = load_set(args.current, what="current")
        result = _compare_without(baseline, current, ignored=set(args.ignore_usecase), rules=rules)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(result))
    payload = {
        "exit_code": result.exit_code,
        "verdict": verdict_line(result),
        "checks": [asdict(c) for c in result.checks],
        "notes": list(result.notes),
    }
    try:
        for out, text in (
            (args.markdown, format_markdown(result)),
            (args.json, json.dumps(payload, indent=2) + "\n"),
        ):
            if out is not None:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(text)
    except OSError as err:
        print(f"error: cannot write {err.filename} ({err.strerror})", file=sys.stderr)
        return 2
    return result.exit_code


def _compare_without(baseline: dict, current: dict, *, ignored: set[str], rules: Rules):
    """compare_sets without the ``ignored`` use cases; GateInputError if one is unknown or
    nothing is left to compare."""
    present = {rec.usecase for _, rec in (*baseline.values(), *current.values())}
    unknown = sorted(ignored - present - set(rules.by_usecase))  # a typo, not a skipped one
    if unknown:
        raise GateInputError(
            f"--ignore-usecase {', '.join(unknown)}: no such use case "
            f"(known: {', '.join(sorted(present | set(rules.by_usecase)))})"
        )
    baseline = {k: v for k, v in baseline.items() if v[1].usecase not in ignored}
    current = {k: v for k, v in current.items() if v[1].usecase not in ignored}
    if not baseline or not current:
        raise GateInputError("nothing left to compare after --ignore-usecase")
    result = compare_sets(baseline, current, rules=rules)
    if ignored:
        left_out = f"left out on request: {', '.join(sorted(ignored))}"
        result = GateResult(result.checks, (*result.notes, left_out))
    return result


if __name__ == "__main__":
    sys.exit(main())
