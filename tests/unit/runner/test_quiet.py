"""TensorFlow's C++ start-up lines are dropped from stderr; every other line is kept."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

CHILD = """
import os, sys
from usecases.runner.quiet import native_startup_filtered
with native_startup_filtered():
    os.write(2, b"I0000 00:00:1.2 12 port.cc:153] oneDNN custom operations are on.\\n")
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written\\n")
    os.write(2, b"kept: a real warning\\n")
    print("also kept", file=sys.stderr)
"""


def _run(env: dict) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return proc.stderr


def test_start_up_lines_are_dropped_and_the_rest_kept_in_order():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    assert _run(env) == "kept: a real warning\nalso kept\n"


def test_a_user_who_set_the_log_level_sees_everything():
    err = _run({**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert "oneDNN custom operations" in err and "kept: a real warning" in err
