"""One run of one use case: validate, make the run folder, run, write the record.

Data flow: config -> use case -> one ResultRecord -> record.json (+ config.yaml, run.log).
Every failure a user can cause ends as one line on stderr and a non-zero exit code; a
failure after the run folder exists also leaves a complete record with status "failed".
"""

from __future__ import annotations

import importlib
import logging
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from usecases.errors import ConfigError, UserError
from usecases.measure.environment import capture_environment
from usecases.records.record import ResultRecord, write_record
from usecases.runner.devices import configure_process, resolve_device
from usecases.runner.quiet import native_startup_filtered, quiet_loggers
from usecases.runner.resume import (
    end_segment,
    is_resumable_folder,
    read_segments,
    start_segment,
    submitit_run_id,
)
from usecases.runner.summary import summary_lines
from usecases.runner.termination import Terminated, TerminationGuard

USECASES = ("covid_ct", "colabfold_spike")
_TERMINATED = "terminated (SIGTERM, e.g. a scheduler's time limit)"
_REQUEUED = "stopped by submitit (the job was preempted or timed out, and is requeued to resume)"
log = logging.getLogger("usecases")


@dataclass(frozen=True)
class Outcome:
    """What one run left: the exit code, the record (None when stopped before the run folder
    existed), the run folder, and the one error line a user was shown (None when ok)."""

    code: int
    record: ResultRecord | None
    run_dir: Path | None
    error: str | None
    user_error: bool  # the error is one the user can fix (UserError), not an internal failure


def run_usecase(cfg: DictConfig) -> int:
    """Run the configured use case; return the process exit code (0 ok, 1 failed, 2 usage)."""
    return execute(cfg).code


def execute(cfg: DictConfig, *, resume_dir: Path | None = None) -> Outcome:
    """Run the configured use case; the Outcome (see ``run_usecase`` for the exit codes).

    ``resume_dir``: continue the run in that folder (``cfg`` from ``resume.resume_config``).
    """
    try:
        _resolve(cfg)  # a broken ${...} is named before anything reads it
        module, device = _prepare(cfg)
        resolved = _resolve(cfg)  # as validated (validate may settle a value)
        if resume_dir is None:
            resume_dir = _requeued_run(cfg)
        if resume_dir is not None:
            if not hasattr(module, "check_resume"):
                raise ConfigError(f"usecase={cfg.usecase.name} cannot resume; run it again.")
            module.check_resume(cfg, resume_dir)
        run_dir = resume_dir or _make_run_dir(cfg)
    except UserError as err:
        _say(f"error: {err}")
        return Outcome(err.exit_code, None, None, str(err), True)

    try:
        earlier = start_segment(run_dir)
    except UserError as err:
        _say(f"error: {err}")
        return Outcome(err.exit_code, None, run_dir, str(err), True)
    handler = _start_logging(run_dir)
    if resume_dir is not None:
        log.info("resuming %s (segment %d)", run_dir, len(earlier) + 1)
    record = ResultRecord(
        run_id=run_dir.name,
        usecase=cfg.usecase.name,
        status="failed",
        started_at=earlier[0]["started_at"] if earlier else _now(),
        config=resolved,
        environment={},
        device=device,
    )
    code, user_error, stop = 1, False, None
    guard = TerminationGuard().__enter__()
    try:
        if resume_dir is None:
            (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved))
        record.environment = capture_environment()
        result = module.run(cfg, run_dir=run_dir, device=device)
        for key, value in result.items():  # "device", "environment" add to what app.py has
            if key in ("device", "environment"):
                value = {**getattr(record, key), **value}
            setattr(record, key, value)
        record.status, code = "ok", 0
    except Terminated:
        guard.handled()
        record.status, record.error, code = "terminated", _TERMINATED, 143
        _say("error: terminated by SIGTERM; the record says so.")
    except SystemExit as err:  # submitit requeues a preempted or timed-out job, then exits
        guard.handled()
        record.status, record.error, stop = "terminated", _REQUEUED, err
        _say(f"error: {_REQUEUED}")
    except (UserError, KeyboardInterrupt, Exception) as err:
        guard.handled()  # first: a repeated SIGTERM must not land inside this handler
        if guard.received:  # a library turned the SIGTERM into its own error
            log.info("SIGTERM surfaced as %s: %s", type(err).__name__, err)
            record.status, record.error, code = "terminated", _TERMINATED, 143
            _say("error: terminated by SIGTERM; the record says so.")
        elif isinstance(err, UserError):
            record.error, code, user_error = str(err), err.exit_code, True
            log.error("%s", err)
            _say(f"error: {err}")
        elif isinstance(err, KeyboardInterrupt):
            record.error, code = "interrupted by the user", 130
            _say("error: interrupted; the record says so.")
        else:  # an internal failure: keep the traceback in run.log only
            log.exception("run failed")
            record.error = f"{type(err).__name__}: {err}"
            where = run_dir / "run.log"
            _say(f"error: internal failure ({type(err).__name__}: {err}); see {where}")
    finally:
        guard.__exit__()
        unwritten = _finish(record, module, run_dir=run_dir, report=cfg.get("report", True))
        logging.getLogger().removeHandler(handler)
        handler.close()
    if stop is not None:
        raise stop
    if unwritten is not None:  # e.g. a full disk: said in one line; no record to point to
        return Outcome(code or 1, record, run_dir, record.error or unwritten, user_error)
    print("\n".join(summary_lines(record.to_dict(), run_dir=run_dir)))
    print(f"{record.status}: {run_dir / 'record.json'}")
    if record.resumable:
        print(f"resume it with: python run.py resume={run_dir}")
    return Outcome(code, record, run_dir, record.error, user_error)


def _finish(record: ResultRecord, module, *, run_dir: Path, report: bool) -> str | None:
    """End the segment, then write the record (and the report) whatever happened; the one
    error line when the record could not be written (None when it was)."""
    record.finished_at = _now()
    record.artifacts = {**record.artifacts, "log": "run.log", "config": "config.yaml"}
    resumable = getattr(module, "resumable", None)
    record.resumable = record.status != "ok" and bool(resumable and resumable(run_dir))
    try:
        end_segment(run_dir, status=record.status, why=record.error)
    except UserError as err:  # the record below still says how the run ended
        log.warning("%s", err)
    segments = read_segments(run_dir)
    for work in record.timings.get("segments") or []:  # each to the process that did it
        ran = [s for s in segments if s["started_at"] <= (work.get("started_at") or "")]
        if ran:  # covid_ct's entries are its training; colabfold_spike's say "stage": folding
            ran[-1][str(work.get("stage", "training"))] = work
    record.segments = segments
    try:
        write_record(record, run_dir / "record.json")
    except UserError as err:
        log.error("%s", err)
        _say(f"error: {err}")
        return str(err)
    if report:
        _write_report(run_dir)
    return None


def _requeued_run(cfg: DictConfig) -> Path | None:
    """Under submitit: the job's run folder (run_id, else named by the job id, which a requeue
    keeps) when a requeued job finds it unfinished; None otherwise."""
    job = submitit_run_id()
    if job is None:
        return None
    if not cfg.get("run_id"):
        cfg.run_id = job
    folder = Path(cfg.results_dir) / cfg.usecase.name / str(cfg.run_id)
    return folder if folder.is_dir() and is_resumable_folder(folder) else None


def _write_report(run_dir: Path) -> None:
    """The run's report (report/report.html + report.md); a failure is logged, never fatal."""
    try:
        from usecases.reporting import write_report

        paths = write_report([run_dir / "record.json"], out_dir=run_dir / "report")
        log.info("report: %s", paths["html"])
    except Exception:  # the record is what counts; the report only shows it
        log.exception("report not written")


def _resolve(cfg: DictConfig) -> dict:
    """The config with every ${...} resolved; ConfigError naming the one that does not."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        first = str(err).splitlines()[0]
        raise ConfigError(f"the config does not resolve: {first}; fix that override.") from err


def _prepare(cfg: DictConfig):
    """Checks that need no run folder: use case known, options valid, device usable."""
    name = cfg.usecase.name
    if name not in USECASES:
        raise ConfigError(f"usecase={name} is not one of {', '.join(USECASES)}.")
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed={seed} is not a whole number from 0 to 2**32-1; e.g. seed=42.")
    configure_process(device=cfg.device.name, backend=cfg.backend.name)
    try:
        module = importlib.import_module(f"usecases.{name}.usecase")
    except ModuleNotFoundError as err:
        raise ConfigError(f"usecase={name} is not installed here ({err.name} missing).") from err
    module.validate(cfg)
    with native_startup_filtered():  # the framework is imported here, with its C++ start-up
        device = resolve_device(requested=cfg.device.name, backend=cfg.backend.name)
    return module, device


def _make_run_dir(cfg: DictConfig) -> Path:
    run_id = cfg.run_id or f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    run_dir = Path(cfg.results_dir) / cfg.usecase.name / str(run_id)
    try:
        run_dir.mkdir(parents=True)  # atomic: of two runs with one run_id, one gets it
    except FileExistsError as err:
        raise ConfigError(f"run folder {run_dir} already exists; choose another run_id.") from err
    except OSError as err:
        raise ConfigError(
            f"cannot create the run folder {run_dir} ({err.strerror}); "
            "choose results_dir=DIR where you can write."
        ) from err
    return run_dir


class ConsoleFormatter(logging.Formatter):
    """One line per message: tracebacks go to run.log only, never to the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _start_logging(run_dir: Path) -> logging.Handler:
    """Log to run.log in the run folder and to stderr."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    quiet_loggers()
    if not any(getattr(h, "_usecases_console", False) for h in root.handlers):
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(ConsoleFormatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        console._usecases_console = True  # type: ignore[attr-defined]
        root.addHandler(console)
    handler = logging.FileHandler(run_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.addHandler(handler)
    return handler


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _say(line: str) -> None:
    print(line, file=sys.stderr)
