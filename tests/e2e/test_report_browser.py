"""The report in headless Chromium: every figure and table shown, nothing fetched.

Needs Chromium (``bash scripts/install_browser.sh``): skipped without it on a developer's
machine, failed under CI=true (tests/conftest.py: require).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import REPO, require
from tests.report_pages import (
    COVID_FIGURES,
    FOLD_FIGURES,
    TABLES,
    chromium_path,
    open_in_chromium,
    parse_page,
)
from usecases.reporting import write_report


@pytest.fixture
def chromium() -> str:
    """Chromium's path; skips where it is absent, fails under CI=true (.ci/run installs it)."""
    path = chromium_path()
    require(path is not None, "chromium not installed (scripts/install_browser.sh)")
    return str(path)


@pytest.mark.usefixtures("chromium")
def test_headless_chromium_shows_every_figure_and_table_and_fetches_nothing(report, tmp_path):
    # Control: the detector sees a page that does fetch (loopback, nothing listens there).
    canary = tmp_path / "canary.html"
    canary.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/canary.png"><p>x</p>')
    _, fetched = open_in_chromium(canary, tmp_path / "canary")
    assert fetched == ["http://127.0.0.1:9/canary.png"]

    dom, fetched = open_in_chromium(report["html"], tmp_path / "report")
    assert fetched == []
    # Without its Content-Security-Policy guard the page still asks for nothing.
    bare = tmp_path / "no-csp.html"
    html = report["html"].read_text()
    bare.write_text(re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", html))
    assert "Content-Security-Policy" not in bare.read_text()
    assert open_in_chromium(bare, tmp_path / "no-csp")[1] == []
    # the interactive 3-D view ran under the page's CSP (its scripts allowed by hash) and drew
    drawn = re.search(r'id="viewer-structure-0"[^>]*data-drawn-pixels="(\d+)"', dom)
    assert drawn and int(drawn.group(1)) > 1000, "the 3-D view drew nothing"
    # control: a page whose CSP no longer lists the library's hash runs none of it
    blocked = tmp_path / "blocked.html"
    blocked.write_text(re.sub(r"script-src 'sha256-[^']+'", "script-src", html, count=1))
    dom_blocked, _ = open_in_chromium(blocked, tmp_path / "blocked")
    assert 'id="viewer-structure-0"' in dom_blocked
    assert not re.search(r'id="viewer-structure-0"[^>]*data-drawn-pixels=', dom_blocked)
    page = parse_page(dom)
    for fid in COVID_FIGURES + FOLD_FIGURES:
        assert page.images.get(fid, "").startswith("data:image/png;base64,"), fid
    for tid in TABLES:
        assert tid in page.ids, tid
    assert "Published vs measured" in dom and "Environment" in dom


@pytest.mark.usefixtures("chromium")
def test_install_browser_script_does_nothing_when_chromium_is_present():
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "install_browser.sh")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("chromium present")


STUDY = REPO / "results" / "cpu" / "covid_ct-ci-study"
STUDY_FIGURES = ("fig-study-band-0", "fig-study-curves-0")
STUDY_TABLES = ("tab-study-verdicts-0", "tab-study-intervals-0", "tab-study-ttq-0")


@pytest.mark.usefixtures("chromium")
def test_the_committed_ci_study_report_opens_offline_in_chromium(tmp_path):
    pages = write_report([STUDY], out_dir=tmp_path / "report")
    dom, fetched = open_in_chromium(pages["html"], tmp_path / "browser")
    assert fetched == []
    page = parse_page(dom)
    for fid in STUDY_FIGURES:
        assert page.images.get(fid, "").startswith("data:image/png;base64,"), fid
    for tid in (*STUDY_TABLES, "tab-references-3"):  # the study, then its four seeds' runs
        assert tid in page.ids, tid
    assert "Reproduction verdicts over 4 seeds" in dom
