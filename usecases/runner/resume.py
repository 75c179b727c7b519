"""Resuming a run in its own folder, and the log of the segments (processes) that worked on it.

``python run.py resume=RUN_DIR [device=...] [report=...]`` takes the run's own config.yaml;
any other override is refused, since it could change the result. A refused resume (a finished
run, no config, no checkpoint, a checkpoint of other code or config, a corrupt checkpoint)
ends in one line and leaves the folder as it was: every check runs before anything is written.

``segments.jsonl`` in the run folder gets one line when a segment starts and one when it ends;
a start without an end is a process that was killed (SIGKILL, out of memory, a lost node).
Under submitit (SLURM or local), a job's run folder is named after its job id, so a requeued
job finds its own folder and resumes it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from usecases import paths
from usecases.errors import ConfigError, DataError
from usecases.records.record import read_json_object

MAY_OVERRIDE = ("device", "report")
SEGMENTS = "segments.jsonl"
_KILLED = "no end was recorded: killed (SIGKILL, out of memory, or the node went down)"


def resume_config(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The config of the run in ``run_dir`` with the allowed ``overrides`` applied.

    ConfigError (one line) when ``run_dir`` is not a run folder, its run finished, or an
    override is not one of ``MAY_OVERRIDE``.
    """
    run_dir = Path(run_dir)
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise ConfigError(
            f"resume={run_dir}: no config.yaml there; give a run folder that run.py made "
            "(results/<usecase>/<run id>)."
        )
    if (run_dir / "record.json").exists():
        status = read_json_object(run_dir / "record.json", what="record").get("status")
        if status == "ok":
            raise ConfigError(f"resume={run_dir}: that run finished (status ok); nothing to do.")
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    bad = [o for o, k in zip(overrides, keys, strict=True) if k not in MAY_OVERRIDE]
    if bad:
        raise ConfigError(
            f"resume= takes only {' and '.join(k + '=' for k in MAY_OVERRIDE)} beside it, not "
            f"{bad[0]} (it could change the result); the run's settings are in {saved}."
        )
    try:
        cfg = OmegaConf.load(saved)
    except Exception as err:  # YAML or OmegaConf errors: the file was damaged or edited
        first = " ".join(str(err).split())[:200]
        raise DataError(f"resume={run_dir}: {saved} is not a readable config ({first}).") from err
    if not isinstance(cfg, DictConfig) or "usecase" not in cfg:
        raise DataError(f"resume={run_dir}: {saved} is not a run's config (no usecase).")
    with initialize_config_dir(config_dir=str(paths.conf_dir()), version_base=None):
        given = compose(config_name="config", overrides=list(overrides))
    for key in keys:
        cfg[key] = given[key]
    return cfg


def is_resumable_folder(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that did not finish (its record, if any, is not ok)."""
    record = run_dir / "record.json"
    if not (run_dir / "config.yaml").is_file():
        return False
    if not record.exists():
        return True
    try:
        return read_json_object(record, what="record").get("status") != "ok"
    except Exception:  # an unreadable record: let the resume checks say so
        return True


def submitit_run_id() -> str | None:
    """A run id that survives a requeue (``job-<submitit job id>``), or None outside submitit."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    try:
        import submitit

        return f"job-{submitit.JobEnvironment().job_id}"
    except Exception:  # not inside a submitit job after all
        return None


def start_segment(run_dir: Path) -> list[dict]:
    """Log a new segment's start; return the earlier segments (a start without an end is
    marked killed)."""
    earlier = read_segments(run_dir)
    _append(run_dir, {"event": "start", "at": _now()})
    return earlier


def end_segment(run_dir: Path, *, status: str, why: str | None) -> None:
    """Log the end of the current segment (``status``: ok, failed or terminated)."""
    _append(run_dir, {"event": "end", "at": _now(), "status": status, "why": why})


def read_segments(run_dir: Path) -> list[dict]:
    """The segments in ``segments.jsonl``: started_at, stopped_at, status, why."""
    path = Path(run_dir) / SEGMENTS
    out: list[dict] = []
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill mid-write
            continue
        if event.get("event") == "start":
            out.append({"started_at": event["at"], "stopped_at": None, "status": "killed"})
            out[-1]["why"] = _KILLED
        elif event.get("event") == "end" and out and out[-1]["stopped_at"] is None:
            out[-1].update(stopped_at=event["at"], status=event["status"], why=event["why"])
    return out


def _append(run_dir: Path, event: dict) -> None:
    path = Path(run_dir) / SEGMENTS
    try:
        with path.open("a") as handle:
            handle.write(json.dumps(event) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise DataError(f"{path} not written ({err.strerror or err}); free space there.") from err


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
