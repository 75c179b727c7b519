"""AlphaFold2 parameters for ColabFold: check a params folder, or make random ones of exact shape.

Real weights are the 2021-07-14 release (``params_model_{1..5}_ptm.npz``, fetched with
``usecase-bench-fetch alphafold_params``). ColabFold reads them from ``<data_dir>/params/``
and loads all five even when it runs one model. ``weights=random`` replaces only where the
arrays come from: :class:`RandomAlphaFoldParams` gives, for each file, arrays with the exact
names and shapes of the released file (found by ``jax.eval_shape`` of the haiku init on the
real AlphaFold2 model config), and ``instrument.random_params_loader`` feeds them through
ColabFold's own ``flat_params_to_haiku`` so the rest of ``colabfold.batch.run`` is unchanged.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usecases.errors import ConfigError, DataError

MODEL_NUMBERS = (1, 2, 3, 4, 5)
MODEL_TYPES = ("alphafold2_ptm", "alphafold2")
FETCH_COMMAND = "usecase-bench-fetch alphafold_params"
PAE_HEAD_KEY = "alphafold/alphafold_iteration/predicted_aligned_error_head/logits//weights"
"""Present in every ``*_ptm`` file (the pTM / PAE head), absent from the plain ones."""
RANDOM_STD = 0.02
"""Standard deviation of the random weights (uniform, so that activations stay finite)."""
_SHAPE_PROBE = "MFGFFVLLPLVSSQ"  # any short sequence: parameter shapes do not depend on it
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


UNIFIED_MEMORY_ENV = {"TF_FORCE_UNIFIED_MEMORY": "1", "XLA_PYTHON_CLIENT_MEM_FRACTION": "4.0"}
"""What importing ``colabfold.batch`` sets when unset: CUDA unified memory, 4x the GPU."""
JAX_DEFAULT_ENV = {"TF_FORCE_UNIFIED_MEMORY": "0", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.75"}
"""JAX's own GPU memory policy (what ColabFold's --disable-unified-memory leaves)."""


def set_gpu_memory_env(*, unified_memory: bool) -> dict[str, str]:
    """Fix JAX's GPU memory policy in the environment before JAX or ColabFold is imported.

    ``unified_memory=False`` (the default here) keeps JAX's defaults, so that importing
    ``colabfold.batch`` cannot switch on unified memory of 4x the GPU's size (it only fills
    unset variables); True applies ColabFold's own setting. Has no effect once JAX has
    created its GPU client. Returns the values set.
    """
    values = UNIFIED_MEMORY_ENV if unified_memory else JAX_DEFAULT_ENV
    os.environ.update(values)
    return dict(values)


def keep_jax_gpu_memory_defaults() -> None:
    """Before importing ``colabfold.batch``: fill the GPU memory variables that are unset
    with JAX's defaults, so that the import cannot switch on 4x unified memory."""
    for key, value in JAX_DEFAULT_ENV.items():
        os.environ.setdefault(key, value)


def param_file_name(*, model_type: str, model_number: int) -> str:
    """File name ColabFold reads for one model, e.g. ``params_model_3_ptm.npz``."""
    if model_type not in MODEL_TYPES:
        raise ConfigError(
            f"usecase.model_type={model_type} is not one of {', '.join(MODEL_TYPES)}."
        )
    suffix = "_ptm" if model_type == "alphafold2_ptm" else ""
    return f"params_model_{model_number}{suffix}.npz"


def _missing_hint(where: Path) -> str:
    return (
        f"fetch the AlphaFold2 parameters (3.5 GB) with `{FETCH_COMMAND}` (or --dest DIR and "
        f"usecase.params_dir=DIR), or run with weights=random; looked in {where}"
    )


def resolve_params_dir(path: Path, *, model_type: str) -> Path:
    """The folder that holds the ``params_model_*.npz`` files.

    ``path`` may be that folder itself (what the fetch writes) or a ColabFold data dir with
    them in ``params/``. Raises DataError (one line naming the fetch command) if neither.
    """
    path = Path(path).expanduser()
    first = param_file_name(model_type=model_type, model_number=1)
    if not path.is_dir():
        raise DataError(f"AlphaFold2 parameter folder {path} does not exist; {_missing_hint(path)}")
    if not (path / first).exists() and (path / "params" / first).exists():
        return path / "params"
    return path


def check_params_dir(path: Path, *, model_type: str) -> Path:
    """Check that all five parameter files are present and readable; return their folder.

    Cheap (no array data is read): each file must open as a zip, hold only ``.npy``
    members with readable headers of float arrays, and, for ``alphafold2_ptm``, the PAE
    head. Raises DataError naming the first missing or corrupt file and the fetch command.
    """
    folder = resolve_params_dir(path, model_type=model_type)
    names = [param_file_name(model_type=model_type, model_number=n) for n in MODEL_NUMBERS]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(names)} AlphaFold2 parameter files are missing (first: "
            f"{missing[0]}); {_missing_hint(folder)}"
        )
    for name in names:
        problem = _npz_problem(folder / name, need_pae=model_type == "alphafold2_ptm")
        if problem is not None:
            raise DataError(
                f"AlphaFold2 parameter file {folder / name} is corrupt ({problem}); delete "
                f"{folder} and fetch again with `{FETCH_COMMAND}`"
            )
    return folder


def npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """``"scope//name" -> shape`` of every array in an AlphaFold2 ``.npz``, from the npy
    headers only (no array data is read).

    Raises ValueError (with the reason) for a file that is not such an ``.npz``.
    """
    out: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                if not member.endswith(".npy") or "//" not in member:
                    raise ValueError(f"unexpected member {member!r}")
                with zf.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    read_header = _HEADER_READERS.get(version)
                    if read_header is None:
                        raise ValueError(f"array {member} has npy format version {version}")
                    shape, _, dtype = read_header(handle)
                if dtype.kind != "f" or any(d < 1 for d in shape):
                    raise ValueError(f"array {member} has dtype {dtype} and shape {shape}")
                out[member.removesuffix(".npy")] = tuple(int(d) for d in shape)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{type(err).__name__}: {' '.join(str(err).split())[:120]}") from err
    if not out:
        raise ValueError("no arrays")
    return out


def _npz_problem(path: Path, *, need_pae: bool) -> str | None:
    """Why ``path`` is not a usable AlphaFold2 ``.npz`` (None when it looks right)."""
    try:
        shapes = npz_shapes(path)
    except ValueError as err:
        return str(err)
    if need_pae and PAE_HEAD_KEY not in shapes:
        return "no pTM head: not a *_ptm parameter file"
    return None


def shape_problem(
    actual: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]
) -> str | None:
    """Why ``actual`` cannot serve as ``expected`` (missing arrays, other shapes), or None.

    Extra arrays are allowed (ColabFold ignores what its model does not use).
    """
    missing = sorted(set(expected) - set(actual))
    if missing:
        return f"{len(missing)} of {len(expected)} arrays missing (first: {missing[0]})"
    wrong = sorted(k for k in expected if actual[k] != expected[k])
    if wrong:
        k = wrong[0]
        first = f"{k} {actual[k]}, expected {expected[k]}"
        return f"{len(wrong)} arrays of another shape (first: {first})"
    return None


def colabfold_data_dir(params_dir: Path, *, scratch: Path) -> Path:
    """A ColabFold ``data_dir`` whose ``params/`` is ``params_dir``.

    Returns ``params_dir.parent`` when the folder is already called ``params``; else makes
    ``scratch/params`` a symbolic link to ``params_dir`` and returns ``scratch``.
    """
    params_dir = Path(params_dir).absolute()
    if params_dir.name == "params":
        return params_dir.parent
    scratch.mkdir(parents=True, exist_ok=True)
    link = scratch / "params"
    if not link.exists():
        link.symlink_to(params_dir, target_is_directory=True)
    return scratch


def alphafold_param_shapes(*, model_type: str, model_number: int) -> dict[str, tuple[int, ...]]:
    """Flat ``"scope//name" -> shape`` of one released parameter file (all float32).

    Found by ``jax.eval_shape`` of the haiku init of ColabFold's AlphaFold2 model on the
    real config (``model_{n}_ptm`` or ``model_{n}``), with the unfused triangle
    multiplications in which the files store them. Takes seconds (tracing, no compute).
    """
    keep_jax_gpu_memory_defaults()
    import jax
    from alphafold.model import config, model
    from colabfold.batch import build_monomer_feature, mk_mock_template

    param_file_name(model_type=model_type, model_number=model_number)  # checks model_type
    suffix = "_ptm" if model_type == "alphafold2_ptm" else ""
    cfg = config.model_config(f"model_{model_number}{suffix}")
    evo = cfg.model.embeddings_and_evoformer
    stacks = [evo.evoformer]
    if evo.template.enabled:
        stacks.append(evo.template.template_pair_stack)
    for stack in stacks:
        stack.triangle_multiplication_incoming.fuse_projection_weights = False
        stack.triangle_multiplication_outgoing.fuse_projection_weights = False
    runner = model.RunModel(cfg, params=None)
    probe = _SHAPE_PROBE
    feat = runner.process_features(
        build_monomer_feature(probe, f">101\n{probe}", mk_mock_template(probe)), random_seed=0
    )
    tree = jax.eval_shape(runner.init, jax.random.PRNGKey(0), feat)
    return {
        f"{scope}//{name}": tuple(int(d) for d in leaf.shape)
        for scope, params in tree.items()
        for name, leaf in params.items()
    }


def random_array(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """One random float32 parameter: layer-norm ``scale`` 1, ``offset`` 0, else uniform
    with standard deviation ``RANDOM_STD`` (keeps every activation finite)."""
    if name == "scale":
        return np.ones(shape, dtype=np.float32)
    if name == "offset":
        return np.zeros(shape, dtype=np.float32)
    out = rng.random(shape, dtype=np.float32)
    out -= 0.5
    out *= np.float32(2 * np.sqrt(3.0) * RANDOM_STD)
    return out


@dataclass
class RandomAlphaFoldParams:
    """Random AlphaFold2 parameters with the exact names and shapes of the released files.

    Shapes are traced once per distinct architecture (with or without the template stack)
    and kept; arrays are drawn anew on each call (deterministic by ``seed`` and model
    number) so that no extra copy of the ~93 M floats per model stays in memory.
    """

    seed: int = 0
    _shapes: dict[tuple[str, bool], dict[str, tuple[int, ...]]] = field(default_factory=dict)

    def shapes(self, *, model_type: str, model_number: int) -> dict[str, tuple[int, ...]]:
        """``"scope//name" -> shape`` of ``params_model_{model_number}[_ptm].npz``."""
        from alphafold.model import config

        suffix = "_ptm" if model_type == "alphafold2_ptm" else ""
        templates = bool(
            config.model_config(
                f"model_{model_number}{suffix}"
            ).model.embeddings_and_evoformer.template.enabled
        )
        key = (model_type, templates)
        if key not in self._shapes:
            self._shapes[key] = alphafold_param_shapes(
                model_type=model_type, model_number=model_number
            )
        return self._shapes[key]

    def flat(self, *, model_type: str, model_number: int) -> dict[str, np.ndarray]:
        """Random arrays for one model, keyed like the ``.npz`` file (float32)."""
        shapes = self.shapes(model_type=model_type, model_number=model_number)
        rng = np.random.default_rng([self.seed, model_number])
        return {
            key: random_array(key.split("//")[1], shape, rng)
            for key, shape in sorted(shapes.items())
        }

    def parameter_count(self, *, model_type: str, model_number: int) -> int:
        """Number of scalars in one model's parameters (93,237,338 for model_1_ptm)."""
        shapes = self.shapes(model_type=model_type, model_number=model_number)
        return int(sum(int(np.prod(s)) for s in shapes.values()))
