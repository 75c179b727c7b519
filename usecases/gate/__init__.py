"""Regression gate: compare current result records with a baseline set, rule by rule.

Metrics are compared as differences with absolute/relative tolerances, timings as ratios
with a per-device noise allowance; the rules live in ``conf/gate/default.yaml`` (documented
there). Exit codes of ``main``: 0 all rules hold, 1 a regression, 2 unusable inputs (missing
or corrupt records, schema mismatch, runs that cannot be compared).

Modules: ``rules`` (read the YAML), ``compare`` (records against records), ``tables`` (text
and Markdown), ``cli``. A consumer of records: imports records, errors, numbers and paths,
never the report or the studies.

    python -m usecases.gate --baseline results/baselines/cpu-smoke --current OUT/runs
"""

from usecases.gate.cli import main
from usecases.gate.compare import (
    MISSING,
    NEW,
    OK,
    REGRESSION,
    Check,
    GateResult,
    compare_sets,
    load_set,
)
from usecases.gate.rules import DEFAULT_RULES, GateInputError, Rule, Rules, load_rules
from usecases.gate.tables import format_markdown, format_table, verdict_line

__all__ = [
    "DEFAULT_RULES",
    "MISSING",
    "NEW",
    "OK",
    "REGRESSION",
    "Check",
    "GateInputError",
    "GateResult",
    "Rule",
    "Rules",
    "compare_sets",
    "format_markdown",
    "format_table",
    "load_rules",
    "load_set",
    "main",
    "verdict_line",
]
