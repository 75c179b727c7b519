"""The patches that measure and feed ColabFold while ``colabfold.batch.run`` runs unchanged.

Each is a context manager that replaces one function for the duration of its block and puts
the original back on exit:

- ``colabfold.alphafold.models.get_model_haiku_params`` (the parameter loader ColabFold's
  ``load_models_and_params`` calls): ``random_params_loader`` returns random arrays of the
  exact AlphaFold2 shapes (``weights=random``); ``checked_params_loader`` reads real files after
  a shape check, turning any failure into one DataError; ``timed_params_loader`` times each call
  of whichever loader is installed.
- ``alphafold.model.model.RunModel.predict``: ``timed_predict`` records each model's wall time
  (all recycles, outputs synced to numpy) and each forward pass (one per recycle iteration, via
  the recycle callback) as a ``ModelTiming``.
- ``jax_compile_events`` listens to JAX's own compile-duration events (``jax.monitoring``:
  tracing, lowering, backend compile) without patching anything.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usecases.colabfold_spike.weights import (
    FETCH_COMMAND,
    RandomAlphaFoldParams,
    npz_shapes,
    param_file_name,
    shape_problem,
)
from usecases.errors import DataError

_COMPILE_EVENT_PREFIX = "/jax/core/compile/"
# load(original, data_dir, model_type, model_number, use_fuse, to_jnp) -> haiku params
Loader = Callable[[Callable, str, str, str, bool, bool], Any]


@dataclass
class ModelTiming:
    """One ``RunModel.predict`` call: wall times (s), total and per forward pass, and
    ColabFold's own scores for it (filled in by the prediction callback)."""

    total_s: float
    forwards_s: list[float]
    compile_s: float = 0.0
    tag: str | None = None
    mean_plddt: float | None = None
    ptm: float | None = None


@contextlib.contextmanager
def _replaced_loader(load: Loader) -> Iterator[None]:
    """Within the block, ColabFold's parameter loader calls ``load`` with the original first."""
    import colabfold.alphafold.models as cf_models

    original = cf_models.get_model_haiku_params

    def loader(data_dir: str, model_type: str, model_number: str, use_fuse=True, to_jnp=True):
        return load(original, data_dir, model_type, model_number, use_fuse, to_jnp)

    cf_models.get_model_haiku_params = loader
    try:
        yield
    finally:
        cf_models.get_model_haiku_params = original


@contextlib.contextmanager
def random_params_loader(params: RandomAlphaFoldParams) -> Iterator[None]:
    """Within the block, ColabFold's parameter loader returns ``params`` instead of files.

    The random flat arrays are converted with ColabFold's own
    ``alphafold.model.utils.flat_params_to_haiku``, so the rest of the run is unchanged.
    """
    from alphafold.model import utils

    def load(original, data_dir, model_type, model_number, use_fuse, to_jnp):
        flat = params.flat(model_type=model_type, model_number=int(model_number))
        return utils.flat_params_to_haiku(flat, fuse=use_fuse, to_jnp=to_jnp)

    with _replaced_loader(load):
        yield


@contextlib.contextmanager
def checked_params_loader(folder: Path, *, shapes: RandomAlphaFoldParams) -> Iterator[None]:
    """Within the block, ColabFold's own loader reads ``folder`` after a shape check.

    Each file's array names and shapes (npy headers) must cover those of the AlphaFold2
    model (``shapes``); any failure, there or in ColabFold's reading, becomes one DataError
    naming the file and the fetch command.
    """

    def load(original, data_dir, model_type, model_number, use_fuse, to_jnp):
        number = int(model_number)
        path = Path(folder) / param_file_name(model_type=model_type, model_number=number)
        hint = f"delete {folder} and fetch again with `{FETCH_COMMAND}`"
        expected = shapes.shapes(model_type=model_type, model_number=number)
        try:
            problem = shape_problem(npz_shapes(path), expected)
        except ValueError as err:
            problem = str(err)
        if problem is not None:
            raise DataError(f"{path} does not hold AlphaFold2 parameters ({problem}); {hint}")
        try:
            return original(data_dir, model_type, model_number, use_fuse=use_fuse, to_jnp=to_jnp)
        except Exception as err:
            reason = f"{type(err).__name__}: {' '.join(str(err).split())[:160]}"
            raise DataError(f"{path} could not be read ({reason}); {hint}") from err

    with _replaced_loader(load):
        yield


@contextlib.contextmanager
def timed_params_loader(seconds: list[float]) -> Iterator[None]:
    """Append the wall time (s) of each call of the installed parameter loader to ``seconds``."""

    def load(original, data_dir, model_type, model_number, use_fuse, to_jnp):
        t0 = time.perf_counter()
        try:
            return original(data_dir, model_type, model_number, use_fuse=use_fuse, to_jnp=to_jnp)
        finally:
            seconds.append(time.perf_counter() - t0)

    with _replaced_loader(load):
        yield


@contextlib.contextmanager
def jax_compile_events(events: list[tuple[float, float]]) -> Iterator[None]:
    """Append ``(end time, seconds)`` of every JAX compile step (trace, lower, backend
    compile) to ``events`` while the block runs."""
    import jax

    def listener(event: str, duration_secs: float, **kwargs) -> None:
        if event.startswith(_COMPILE_EVENT_PREFIX):
            events.append((time.perf_counter(), float(duration_secs)))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@contextlib.contextmanager
def timed_predict(
    timings: list[ModelTiming], compiles: list[tuple[float, float]]
) -> Iterator[None]:
    """Wrap ``RunModel.predict`` so each call appends a :class:`ModelTiming` (with the JAX
    compile time of the ``compiles`` events that ended during the call)."""
    from alphafold.model import model as af_model

    original = af_model.RunModel.predict

    def predict(self, feat, random_seed=0, return_representations=False, callback=None):
        marks: list[tuple[float, float]] = []
        last = [time.perf_counter()]

        def on_recycle(result, recycles):
            now = time.perf_counter()
            marks.append((last[0], now))
            if callback is not None:
                callback(result, recycles)
            last[0] = time.perf_counter()

        start = last[0]
        out = original(
            self,
            feat,
            random_seed=random_seed,
            return_representations=return_representations,
            callback=on_recycle,
        )
        end = time.perf_counter()
        compile_s = sum(d for at, d in compiles if start <= at <= end)
        timings.append(
            ModelTiming(
                total_s=end - start, forwards_s=[b - a for a, b in marks], compile_s=compile_s
            )
        )
        return out

    af_model.RunModel.predict = predict
    try:
        yield
    finally:
        af_model.RunModel.predict = original
