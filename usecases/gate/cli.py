"""``usecase-bench-gate`` / ``python -m usecases.gate``: exit 0 pass, 1 regression, 2 unusable.

python -m usecases.gate --baseline results/baselines/cpu-smoke --current OUT/runs
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from usecases.errors import DataError
from usecases.gate.compare import GateResult, compare_sets, load_set
from usecases.gate.rules import DEFAULT_RULES, GateInputError, Rules, load_rules
from usecases.gate.tables import format_markdown, format_table, verdict_line


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
