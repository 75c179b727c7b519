"""The Python API, for notebooks and other programs: one run, a record, the gate, the report.

    import usecases
    record = usecases.run("covid_ct", "dataset=phantom", "scale=smoke", "device=cpu")
    record = usecases.resume("results/covid_ct/RUN_ID")   # a killed or terminated run
    record.metrics["0.3"]["dice_pooled"]
    result = usecases.compare("results/baselines/cpu-smoke", "results/covid_ct")
    usecases.report(["results/covid_ct"], out="results/report")

``run`` composes the same Hydra config as run.py (``conf/``, the same overrides, validated the
same way), makes the same run folder and writes the same record, then returns that record.
Every error a user can cause raises ``UserError`` with the one line run.py would print (a run
that failed on such an error after its folder existed keeps its record: ``err.record``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from usecases import paths
from usecases.errors import ConfigError, UserError
from usecases.gate import GateResult
from usecases.records.record import ResultRecord
from usecases.records.record import load_record as _load_record

__all__ = ["UserError", "compare", "load_record", "report", "resume", "run"]


def run(usecase: str, *overrides: str) -> ResultRecord:
    """Run ``usecase`` ("covid_ct" or "colabfold_spike") with Hydra ``overrides`` as run.py does.

    Returns the run's ResultRecord (``status`` "ok", "failed" after an internal failure,
    whose traceback is in the run folder's run.log, or "terminated" after SIGTERM). Raises
    UserError for a bad option, input or environment (message: run.py's one line;
    ``exit_code`` as run.py's).
    """
    from hydra import compose, initialize_config_dir

    from usecases.runner.app import execute
    from usecases.runner.cli import MULTIRUN_FLAGS, check_overrides

    args = [f"usecase={usecase}", *overrides]
    if any(a in MULTIRUN_FLAGS for a in args):
        raise ConfigError("usecases.run runs one job; sweep seeds with usecase-bench-study")
    conf = paths.require(paths.conf_dir(), what="the Hydra config groups (conf/)")
    problem = check_overrides(args)
    if problem is not None:
        raise ConfigError(f"bad option: {problem} (see conf/ for the options)")
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose(config_name="config", overrides=args)
    return _record(execute(cfg))


def resume(run_dir: str | Path, *overrides: str) -> ResultRecord:
    """Continue the unfinished run in ``run_dir`` from its last checkpoint, as
    ``run.py resume=RUN_DIR`` does (``overrides``: only ``device=`` and ``report=``).

    Returns its final ResultRecord; raises UserError with run.py's one line when the folder
    cannot be resumed (finished, no checkpoint, other code or config, corrupt), unchanged.
    """
    from usecases.runner.app import execute
    from usecases.runner.resume import resume_config

    cfg = resume_config(Path(run_dir), list(overrides))
    return _record(execute(cfg, resume_dir=Path(run_dir)))


def _record(outcome) -> ResultRecord:
    """The Outcome's record; UserError (with ``err.record``) for an error the user can fix."""
    if outcome.user_error or outcome.record is None:
        err = UserError(outcome.error or "the run failed", exit_code=outcome.code)
        err.record = outcome.record  # type: ignore[attr-defined]
        raise err
    return outcome.record


def load_record(path: str | Path) -> ResultRecord:
    """Read and validate one ``record.json``; UserError (one line) if missing or off-schema."""
    return _load_record(Path(path))


def compare(
    baseline: str | Path | Sequence[str | Path],
    current: str | Path | Sequence[str | Path],
    *,
    rules: str | Path | None = None,
) -> GateResult:
    """The regression gate: ``current`` records against ``baseline`` records (files or folders).

    Returns the GateResult (``checks``, ``notes``, ``regressions``, ``exit_code``: 0 pass,
    1 regression). Unusable inputs raise UserError (the gate's exit 2).
    """
    from usecases.gate import compare_sets, load_rules, load_set

    return compare_sets(
        load_set(_paths(baseline), what="baseline"),
        load_set(_paths(current), what="current"),
        rules=load_rules(path=None if rules is None else Path(rules)),
    )


def report(records: str | Path | Sequence[str | Path], *, out: str | Path) -> dict[str, Path]:
    """Render records and study records (files or folders) into ``out``: report.html (opens
    offline), report.md and figures/. Returns their paths; UserError for unreadable records."""
    from usecases.reporting import write_report

    return write_report(_paths(records), out_dir=Path(out))


def _paths(value: str | Path | Sequence[str | Path]) -> list[Path]:
    return [Path(value)] if isinstance(value, str | Path) else [Path(v) for v in value]
