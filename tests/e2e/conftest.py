"""Fixtures of the report tests: the real covid_ct record and the report made from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report_pages import colabfold_record
from usecases.reporting import write_report


@pytest.fixture(scope="session")
def covid_record(nightly) -> Path:
    """record.json of a real covid_ct smoke run (phantom, CPU), made once per session."""
    run = nightly
    records = [p for p in run.records() if p.parent.name == "nightly-covid_ct"]
    assert records, run.output[-4000:]
    return records[0]


@pytest.fixture(scope="module")
def report(covid_record, tmp_path_factory) -> dict[str, Path]:
    """The report of the real covid_ct record plus the hand-made colabfold record."""
    base = tmp_path_factory.mktemp("report")
    fold = colabfold_record(base / "colabfold_spike" / "cf-test")
    return write_report([covid_record, fold], out_dir=base / "out")
