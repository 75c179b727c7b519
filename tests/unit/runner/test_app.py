"""One run in-process: settings refused before training, the console formatter, termination."""

from __future__ import annotations

import logging
import re
import sys

import pytest

from usecases.records.record import load_record
from usecases.runner.app import ConsoleFormatter


def test_the_console_formatter_drops_the_traceback_that_run_log_keeps():
    try:
        raise TypeError("planted")
    except TypeError:
        record = logging.LogRecord(
            "usecases", logging.ERROR, __file__, 1, "run failed", None, sys.exc_info()
        )
    console = ConsoleFormatter("%(levelname)s %(message)s").format(record)
    in_the_log = logging.Formatter("%(message)s").format(record)
    assert console == "ERROR run failed"
    assert "Traceback" in in_the_log and "planted" in in_the_log


def _composed(*overrides: str):
    from hydra import compose, initialize_config_dir

    from usecases.runner.cli import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose(config_name="config", overrides=["dataset=phantom", *overrides])


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("usecase.train.batch_size=abc", "usecase.train.batch_size=abc must be a whole number"),
        ("usecase.evaluate.batch_size=0", "usecase.evaluate.batch_size=0 must be a whole"),
        ("usecase.timing.repeats=0", "usecase.timing.repeats=0 must be a whole number >= 1"),
        ("usecase.timing.warmup=-1", "usecase.timing.warmup=-1 must be a whole number >= 0"),
        ("usecase.timing.inference_batch_sizes=[]", "inference_batch_sizes is empty"),
        ("usecase.timing.inference_batch_sizes=[1,2.5]", "inference_batch_sizes=2.5 must be"),
        ("usecase.evaluate.thresholds=[0.3,1.5]", "must be numbers between 0 and 1"),
        ("+scale.batch_size=0", "scale.batch_size=0 must be a whole number >= 1"),
    ],
)
def test_a_setting_that_would_fail_after_training_is_refused_before_it(override, says):
    from usecases.covid_ct.usecase import validate
    from usecases.errors import ConfigError

    validate(_composed())  # the defaults pass
    with pytest.raises(ConfigError, match=re.escape(says)):
        validate(_composed(override))


def test_a_results_dir_that_cannot_be_created_is_one_line(tmp_path):
    from usecases.errors import ConfigError
    from usecases.runner.app import _make_run_dir

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cfg = _composed(f"results_dir={blocker / 'results'}")
    with pytest.raises(ConfigError, match=r"cannot create the run folder .* results_dir=DIR"):
        _make_run_dir(cfg)


class _WrappingLibrary:
    """A use case whose library turns the SIGTERM it receives into its own error."""

    @staticmethod
    def run(cfg, *, run_dir, device):
        import os
        import signal
        import time

        from usecases.runner.termination import Terminated

        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises Terminated here
        except Terminated as err:
            raise RuntimeError("worker pool shut down") from err
        raise AssertionError("SIGTERM was not delivered")


def test_a_sigterm_a_library_wraps_in_its_own_error_is_still_recorded_as_termination(
    tmp_path, monkeypatch, capsys
):
    import usecases.runner.app as app

    cfg = _composed(f"results_dir={tmp_path}", "report=false", "run_id=wrapped")
    monkeypatch.setattr(app, "_prepare", lambda cfg: (_WrappingLibrary, {"used": "cpu"}))
    monkeypatch.setattr(app, "capture_environment", dict)
    try:
        assert app.run_usecase(cfg) == 143
    finally:
        app.logging.getLogger().handlers[:] = [
            h for h in app.logging.getLogger().handlers if not getattr(h, "_usecases_console", 0)
        ]
    record = load_record(tmp_path / "covid_ct" / "wrapped" / "record.json")
    assert record.status == "terminated" and "SIGTERM" in record.error
    assert "error: terminated by SIGTERM" in capsys.readouterr().err


def test_two_runs_started_at_once_with_one_run_id_get_one_folder_and_one_error(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from usecases.errors import ConfigError
    from usecases.runner import app

    cfg = _composed(f"results_dir={tmp_path}", "run_id=same")
    start = Barrier(8)

    def make(_):
        start.wait()  # all at once: a check-then-create would let several through
        try:
            return app._make_run_dir(cfg)
        except ConfigError as err:
            return str(err)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(make, range(8)))
    folders = [o for o in outcomes if not isinstance(o, str)]
    assert folders == [tmp_path / "covid_ct" / "same"]
    assert all("already exists; choose another run_id" in o for o in outcomes if o not in folders)


def test_segments_log_marks_a_start_without_an_end_as_killed(tmp_path):
    from usecases.runner.resume import end_segment, start_segment

    assert start_segment(tmp_path) == []
    end_segment(tmp_path, status="terminated", why="SIGTERM")
    start_segment(tmp_path)  # this one is "killed": no end follows
    with (tmp_path / "segments.jsonl").open("a") as handle:
        handle.write('{"event": "end", "at"')  # a line cut by the kill
    earlier = start_segment(tmp_path)
    assert [s["status"] for s in earlier] == ["terminated", "killed"]
    assert earlier[0]["why"] == "SIGTERM" and "SIGKILL" in earlier[1]["why"]
    assert earlier[1]["stopped_at"] is None


def test_a_record_that_cannot_be_written_keeps_the_previous_one(tmp_path, monkeypatch):
    import errno
    import json

    from usecases.errors import DataError
    from usecases.records import record as records

    path = records.write_json({"v": 1}, tmp_path / "record.json")

    def full(*_, **__):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(json, "dump", full)
    with pytest.raises(DataError, match="No space left on device"):
        records.write_json({"v": 2}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"v": 1}
