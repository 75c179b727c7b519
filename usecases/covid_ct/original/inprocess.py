"""The paper's TV_UNET.py in a process that also runs Keras 3, for side-by-side benchmarks.

Training runs of ``implementation=original`` use a child process (``original.train``), where
``tensorflow.keras`` is tf-keras through ``TF_USE_LEGACY_KERAS=1``. A benchmark wants the
paper's model beside the port in one process, so here the file's own imports
(``from tensorflow.keras.layers import ...``, ``from keras import backend as K``) are bound to
tf-keras (Keras 2) through ``sys.modules`` while it loads, and restored at once; the model it
builds is a tf-keras model that TensorFlow runs beside Keras 3 models.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

_IMPORTS = re.compile(r"^\s*(?:from|import)\s+(tensorflow\.keras[\w.]*)", re.MULTILINE)


def load_with_tf_keras(code: dict):
    """``(tf_keras, module)``: the verified TV_UNET.py (``code`` from ``locate_code``) loaded
    with its ``tensorflow.keras`` and ``keras`` imports bound to tf-keras.

    ImportError when tf-keras is not installed.
    """
    import tf_keras

    from usecases.covid_ct.original.child import load_code

    text = Path(code["file"]).read_text()
    names = {"keras": "tf_keras", "tensorflow.keras": "tf_keras"}
    for name in _IMPORTS.findall(text):
        names[name] = "tf_keras" + name.removeprefix("tensorflow.keras")
    saved = {name: sys.modules.get(name) for name in names}
    try:
        for name, target in names.items():
            sys.modules[name] = importlib.import_module(target)
        module = load_code(code)
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return tf_keras, module


def model(code: dict, *, n_filters: int, size: int = 128, dropout: float = 0.2, seed: int = 0):
    """The paper's ``get_unet`` (BatchNorm on) under tf-keras, built from ``seed``."""
    return _build(*load_with_tf_keras(code), n_filters=n_filters, size=size, seed=seed,
                  dropout=dropout)  # fmt: skip


def train_step(
    code: dict, *, n_filters: int, x: np.ndarray, y: np.ndarray, seed: int = 0
) -> tuple[Callable[[], float], object]:
    """``(step, model)``: one float32 training step of the paper's model under tf-keras on the
    batch (x, y), with its ``Adam(1e-3)`` and ``TV_bin_loss`` (main_TV_Unet_inf.py), as its
    ``model.fit`` runs it; ``step()`` returns the loss. x: (B, 128, 128, 1), y: (B, 128, 128, 2).
    """
    tf_keras, original = load_with_tf_keras(code)
    net = _build(tf_keras, original, n_filters=n_filters, size=x.shape[1], seed=seed, dropout=0.2)
    net.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=1e-3), loss=original.TV_bin_loss)
    return (lambda: float(net.train_on_batch(x, y))), net


def _build(tf_keras, original, *, n_filters: int, size: int, seed: int, dropout: float):
    from usecases.covid_ct.original.child import papers_model

    tf_keras.utils.set_random_seed(seed)
    return papers_model(original, tf_keras, n_filters=n_filters, size=size, dropout=dropout)
