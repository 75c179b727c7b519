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
- ``compilation_cache`` turns on JAX's persistent compilation cache in a folder and counts its
  hits and misses (JAX's own ``/jax/compilation_cache/*`` events), so the record can say
  whether the compiled model came from the cache (warm) or was compiled (cold).
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
_CACHE_EVENTS = {"/jax/compilation_cache/cache_hits": "hits",
                 "/jax/compilation_cache/cache_misses": "misses"}  # fmt: skip
_CACHE_SAVED = "/jax/compilation_cache/compile_time_saved_sec"
_CACHE_OPTIONS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                  "jax_persistent_cache_min_entry_size_bytes")  # fmt: skip
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


@contextlib.contextmanager
def compilation_cache(folder: Path | None, stats: dict) -> Iterator[None]:
    """Within the block JAX keeps every compiled program in ``folder`` (JAX's persistent
    compilation cache; None: off) and reads it back instead of compiling.

    ``stats`` gets ``dir``, ``hits``, ``misses``, ``saved_s`` (the compile seconds the hits
    saved, as JAX estimates them) and ``state``: "warm" (every program came from the cache),
    "cold" (none did), "partly warm", or "off".
    """
    stats.update(dir=None if folder is None else str(folder), hits=0, misses=0, saved_s=0.0)
    stats["state"] = "off"
    if folder is None:
        yield
        return
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cache

    Path(folder).mkdir(parents=True, exist_ok=True)
    before = {name: getattr(jax.config, name) for name in _CACHE_OPTIONS}

    def count(event: str, **kwargs) -> None:
        if event in _CACHE_EVENTS:
            stats[_CACHE_EVENTS[event]] += 1

    def saved(event: str, duration_secs: float, **kwargs) -> None:
        if event == _CACHE_SAVED:
            stats["saved_s"] += float(duration_secs)

    for name, value in zip(_CACHE_OPTIONS, (str(folder), 0.0, 0), strict=True):
        jax.config.update(name, value)  # every program, however quick to compile
    cache.reset_cache()  # JAX reads the options once per process: make it read them again
    jax.monitoring.register_event_listener(count)
    jax.monitoring.register_event_duration_secs_listener(saved)
    try:
        yield
    finally:
        jax.monitoring.unregister_event_listener(count)
        jax.monitoring.unregister_event_duration_listener(saved)
        for name, value in before.items():
            jax.config.update(name, value)
        cache.reset_cache()
        hits, misses = stats["hits"], stats["misses"]
        stats["state"] = "cold" if not hits else "warm" if not misses else "partly warm"
