"""The Python API: the same errors as run.py, and the records, gate and report it reads."""

from __future__ import annotations

import pytest

import usecases
from tests.conftest import REPO

BASELINE = REPO / "results" / "baselines" / "cpu-smoke"


def test_the_public_names_are_listed_and_import_lazily():
    assert set(usecases.__all__) >= {"run", "load_record", "compare", "report", "UserError"}
    assert usecases.load_record is usecases.api.load_record
    with pytest.raises(AttributeError, match="no attribute 'frobnicate'"):
        usecases.frobnicate  # noqa: B018


def test_a_bad_option_raises_the_one_line_run_py_prints(tmp_path):
    with pytest.raises(usecases.UserError) as err:
        usecases.run("covid_ct", "scale=huge", f"results_dir={tmp_path}")
    assert str(err.value).startswith("bad option: ") and "huge" in str(err.value)
    assert "\n" not in str(err.value) and err.value.exit_code == 2
    assert not any(tmp_path.iterdir())


def test_resume_of_a_finished_run_is_the_one_line_and_changes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    record = BASELINE / "covid_ct" / "record.json"
    (run_dir / "record.json").write_bytes(record.read_bytes())
    (run_dir / "config.yaml").write_text("seed: 42\n")
    with pytest.raises(usecases.UserError, match="that run finished") as err:
        usecases.resume(run_dir)
    assert err.value.exit_code == 2
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "record.json"]
    with pytest.raises(usecases.UserError, match=r"no config\.yaml"):
        usecases.resume(tmp_path)
    (run_dir / "record.json").unlink()
    (run_dir / "config.yaml").write_text("usecase: [unclosed\n")
    with pytest.raises(usecases.UserError, match="is not a readable config") as err:
        usecases.resume(run_dir)
    assert err.value.exit_code == 1 and "\n" not in str(err.value)
    assert [p.name for p in run_dir.iterdir()] == ["config.yaml"]


def test_a_sweep_is_refused():
    with pytest.raises(usecases.UserError, match="runs one job"):
        usecases.run("covid_ct", "-m", "seed=1,2")


def test_records_gate_and_report_from_the_committed_baseline(tmp_path):
    record = usecases.load_record(BASELINE / "covid_ct" / "record.json")
    assert record.status == "ok" and record.usecase == "covid_ct"
    result = usecases.compare(BASELINE, BASELINE)
    assert result.exit_code == 0 and any(c.path == "metrics/0.3/dice_pooled" for c in result.checks)
    pages = usecases.report([BASELINE / "covid_ct"], out=tmp_path)
    assert pages["html"].is_file() and pages["markdown"].is_file()
    with pytest.raises(usecases.UserError, match="does not exist"):
        usecases.load_record(tmp_path / "none.json")
