"""usecase-bench-study: seeds parsed, reserved overrides refused, a study analysed and reported."""

from __future__ import annotations

import json

import pytest

from tests.unit.studies.test_reproduction import _real_record, _write
from usecases.errors import ConfigError
from usecases.runner import study as cli


@pytest.mark.parametrize(
    ("text", "seeds"), [("1-4", [1, 2, 3, 4]), ("3,1,2", [1, 2, 3]), ("1-2,5", [1, 2, 5])]
)
def test_seeds_are_parsed(text, seeds):
    assert cli.parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "4-1", "-1", "1,,2"])
def test_bad_seeds_are_refused(text):
    with pytest.raises(ConfigError, match="give seeds as"):
        cli.parse_seeds(text)


def test_an_override_the_study_sets_itself_is_one_error_line(tmp_path, capsys):
    assert cli.main([str(tmp_path), "seed=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the study sets seed" in err[0]
    assert not any(tmp_path.iterdir())


def test_analyse_without_runs_says_what_to_do(tmp_path, capsys):
    assert cli.main([str(tmp_path / "none"), "--analyse"]) == 2
    assert "run the study first" in capsys.readouterr().err


def test_analyse_writes_the_study_and_a_report_that_shows_it(tmp_path, capsys):
    records = [_real_record(s, d) for s, d in {1: 0.60, 2: 0.75, 3: 0.68}.items()]
    _write(tmp_path, records)
    assert cli.main([str(tmp_path), "--analyse"]) == 0
    study = json.loads((tmp_path / "study.json").read_text())
    assert study["seeds"] == [1, 2, 3] and study["kind"] == "reproduction_study"
    assert "reproduction study of covid_ct/" in (tmp_path / "study.txt").read_text()
    html = (tmp_path / "report.html").read_text()
    for anchor in ("tab-study-verdicts-0", "fig-study-band-0", "tab-study-intervals-0"):
        assert f'id="{anchor}"' in html
    assert 'class="verdict-consistent"' in html  # the 0.3 Dice of these three seeds
    assert "Published vs measured (one run)" in html  # the seeds' own records follow
    assert "report:" in capsys.readouterr().out


def test_seeds_with_an_ok_record_are_kept_not_rerun(tmp_path, monkeypatch):
    _write(tmp_path, [_real_record(1, 0.7), _real_record(2, 0.7)])
    asked = []
    monkeypatch.setattr(cli, "run_seeds", lambda seeds, **_: asked.append(seeds) or 0)
    cli.main([str(tmp_path), "--seeds", "1-3"])
    assert asked == [[3]]


def test_a_seed_without_an_ok_run_is_moved_aside_and_run_again(tmp_path, monkeypatch, capsys):
    failed = _real_record(3, 0.1) | {"status": "failed", "error": "terminated (SIGTERM)"}
    (tmp_path / "runs" / "covid_ct" / "seed3").mkdir(parents=True)
    (tmp_path / "runs" / "covid_ct" / "seed3" / "record.json").write_text(json.dumps(failed))
    _write(tmp_path, [_real_record(1, 0.7), _real_record(2, 0.7)])
    asked = []
    monkeypatch.setattr(cli, "run_seeds", lambda seeds, **_: asked.append(seeds) or 0)
    cli.main([str(tmp_path), "--seeds", "1-3"])
    assert asked == [[3]]
    assert not (tmp_path / "runs" / "covid_ct" / "seed3").exists()
    (moved,) = (tmp_path / "attempts").iterdir()
    assert moved.name.startswith("seed3-") and (moved / "record.json").is_file()
    assert "moved to" in capsys.readouterr().out


@pytest.mark.parametrize("override", ["scale=ci,galaxy", "usecase.precision=float32,auto"])
def test_a_sweep_in_the_overrides_is_refused_before_any_run(tmp_path, capsys, override):
    assert cli.main([str(tmp_path), override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sweeps several values" in err[0]
    assert not any(tmp_path.iterdir())


def test_an_interrupted_or_refused_sweep_is_not_analysed(tmp_path, monkeypatch):
    for code in (2, 130, 143):
        monkeypatch.setattr(cli, "run_seeds", lambda seeds, code=code, **_: code)
        assert cli.main([str(tmp_path / str(code)), "--seeds", "1"]) == code
        assert not (tmp_path / str(code) / "study.json").exists()


def test_an_out_folder_that_cannot_be_written_is_one_error_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cli.main([str(blocker / "study"), "--seeds", "1", "scale=ci"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot write")
    assert "choose another OUT" in err[0]
