"""Under CI=true a test that needs a missing thing fails; on a developer's machine it skips."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, require

BROWSER_TEST = "::".join(
    (
        "tests/e2e/test_report_browser.py",
        "test_install_browser_script_does_nothing_when_chromium_is_present",
    )
)


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_require_fails_in_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="the real data are absent"):
        require(False, "the real data are absent")
    require(True, "never said")  # present: nothing happens


@pytest.mark.parametrize(("ci", "code", "said"), [("true", 1, "CI=true"), ("", 0, "1 skipped")])
def test_the_browser_test_without_chromium_fails_in_ci_and_skips_elsewhere(ci, code, said):
    env = {**os.environ, "CI": ci, "PATH": str(REPO / "no-such-bin")}  # no chromium on PATH
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "0", BROWSER_TEST],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == code, proc.stdout[-2000:]
    assert said in proc.stdout
