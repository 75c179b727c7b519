"""Third-party start-up noise kept off the console unless the user asked for it.

TensorFlow's C++ runtime prints its start-up lines (oneDNN, cpu_feature_guard, cudart_stub,
absl's "before InitializeLog" warning) straight to file descriptor 2 while it is imported,
whatever ``TF_CPP_MIN_LOG_LEVEL`` says; tf2onnx logs every optimiser pass at INFO. Where the
user set ``TF_CPP_MIN_LOG_LEVEL`` (any value) nothing is filtered; a logger the user gave a
level keeps it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

NOISE = re.compile(
    r"All log messages before absl::InitializeLog|port\.cc:\d+\] oneDNN custom operations"
    r"|cpu_feature_guard|cudart_stub|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered|TF-TRT Warning|cuda_(dnn|fft|blas)\.cc"
)
QUIET_LOGGERS = ("tf2onnx", "absl")
USER_SET_LEVEL = "TF_CPP_MIN_LOG_LEVEL" in os.environ  # read before anything sets a default


def wanted() -> bool:
    """True unless the user set TF_CPP_MIN_LOG_LEVEL themselves (then they see everything)."""
    return not USER_SET_LEVEL


@contextlib.contextmanager
def native_startup_filtered() -> Iterator[None]:
    """Within the block, drop TensorFlow's C++ start-up lines from stderr; keep every other line.

    Everything written to file descriptor 2 in the block (C++ and Python alike) is held in a
    temporary file and replayed afterwards, in order, without the lines ``NOISE`` matches.
    """
    if not wanted():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [ln for ln in held.read().decode(errors="replace").splitlines(True)
                    if not NOISE.search(ln)]  # fmt: skip
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def quiet_loggers() -> None:
    """tf2onnx and absl log at WARNING and above, unless the user gave them a level."""
    if not wanted():
        return
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
