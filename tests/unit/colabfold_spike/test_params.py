"""colabfold_spike parameter files without a fold: checks, random arrays, the tar fetch.

The one test that traces the model's parameter shapes needs ColabFold installed (the
``colabfold`` extra) and skips without it.
"""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import needs_module
from usecases.colabfold_spike.weights import (
    FETCH_COMMAND,
    PAE_HEAD_KEY,
    check_params_dir,
    colabfold_data_dir,
    random_array,
)
from usecases.data.fetch import SUMS_NAME, fetch
from usecases.data.manifests import load_manifest
from usecases.errors import DataError

# ---- parameter files -----------------------------------------------------------------------


def _tiny_npz(*, ptm: bool = True, size: int = 4) -> bytes:
    arrays = {"alphafold/alphafold_iteration/structure_module//bias": np.zeros(size, np.float32)}
    if ptm:
        arrays[PAE_HEAD_KEY] = np.zeros((2, 3), np.float32)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _params_dir(folder: Path, *, size: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 6):
        (folder / f"params_model_{n}_ptm.npz").write_bytes(_tiny_npz(size=size))
    return folder


def test_empty_params_dir_names_the_fetch_command(tmp_path):
    (tmp_path / "params").mkdir()
    with pytest.raises(DataError) as info:
        check_params_dir(tmp_path / "params", model_type="alphafold2_ptm")
    message = str(info.value)
    assert "5 of 5" in message and FETCH_COMMAND in message and "weights=random" in message
    with pytest.raises(DataError, match="does not exist"):
        check_params_dir(tmp_path / "nowhere", model_type="alphafold2_ptm")


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda b: b[: len(b) // 2], "BadZipFile"),
        (lambda b: b"\x00" * len(b), "BadZipFile"),
        (lambda b: _tiny_npz(ptm=False), "not a *_ptm parameter file"),
    ],
)
def test_corrupt_params_file_is_refused_with_the_fetch_command(tmp_path, damage, says):
    folder = _params_dir(tmp_path / "p")
    victim = folder / "params_model_4_ptm.npz"
    victim.write_bytes(damage(victim.read_bytes()))
    with pytest.raises(DataError) as info:
        check_params_dir(folder, model_type="alphafold2_ptm")
    message = str(info.value)
    assert "params_model_4_ptm.npz is corrupt" in message and says in message
    assert FETCH_COMMAND in message and "\n" not in message


def test_params_dir_may_be_a_colabfold_data_dir_and_is_linked_for_colabfold(tmp_path):
    data = tmp_path / "cfdata"
    _params_dir(data / "params")
    assert check_params_dir(data, model_type="alphafold2_ptm") == data / "params"
    assert colabfold_data_dir(data / "params", scratch=tmp_path / "s") == data
    flat = _params_dir(tmp_path / "flat")
    made = colabfold_data_dir(flat, scratch=tmp_path / "s2")
    assert (made / "params" / "params_model_1_ptm.npz").is_file()


class _TinyShapes:
    """Stands in for the traced AlphaFold2 shapes: those of ``_tiny_npz(size=SIZE)``."""

    SIZE = 50_000  # 200 kB: reading the npy headers stops far before its end

    def shapes(self, *, model_type: str, model_number: int) -> dict[str, tuple[int, ...]]:
        return {
            "alphafold/alphafold_iteration/structure_module//bias": (self.SIZE,),
            PAE_HEAD_KEY: (2, 3),
        }


def test_params_file_with_damaged_array_data_fails_when_colabfold_reads_it(tmp_path):
    needs_module("colabfold", "ColabFold is not installed (colabfold extra)")
    import colabfold.alphafold.models as cf_models

    from usecases.colabfold_spike.instrument import checked_params_loader

    folder = _params_dir(tmp_path / "p", size=_TinyShapes.SIZE)
    data_dir = colabfold_data_dir(folder, scratch=tmp_path / "s")
    with checked_params_loader(folder, shapes=_TinyShapes()):
        params = cf_models.get_model_haiku_params(str(data_dir), "alphafold2_ptm", "1")
    bias = params["alphafold/alphafold_iteration/structure_module"]["bias"]
    assert bias.shape == (_TinyShapes.SIZE,)
    victim = folder / "params_model_2_ptm.npz"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] = 0x7F  # inside the large array; every npy header stays intact
    victim.write_bytes(bytes(data))
    assert check_params_dir(folder, model_type="alphafold2_ptm") == folder  # headers only
    with checked_params_loader(folder, shapes=_TinyShapes()), pytest.raises(DataError) as info:
        cf_models.get_model_haiku_params(str(data_dir), "alphafold2_ptm", "2")
    message = str(info.value)
    assert "params_model_2_ptm.npz could not be read (BadZipFile" in message
    assert FETCH_COMMAND in message
    assert cf_models.get_model_haiku_params.__name__ == "get_model_haiku_params"  # restored


def test_random_arrays_are_finite_and_layer_norms_start_at_identity():
    rng = np.random.default_rng(0)
    w = random_array("weights", (256, 8, 32), rng)
    assert w.dtype == np.float32 and w.shape == (256, 8, 32) and np.isfinite(w).all()
    assert 0.015 < float(w.std()) < 0.025 and abs(float(w.mean())) < 1e-3
    assert (random_array("scale", (7,), rng) == 1).all()
    assert (random_array("offset", (7,), rng) == 0).all()


def test_random_parameters_have_the_published_alphafold2_size():
    needs_module("colabfold", "ColabFold is not installed (colabfold extra)")
    from usecases.colabfold_spike.weights import RandomAlphaFoldParams

    params = RandomAlphaFoldParams(seed=0)
    # 93,237,338 is the parameter count of the released model_1_ptm (and of OpenFold)
    assert params.parameter_count(model_type="alphafold2_ptm", model_number=1) == 93_237_338
    with_templates = params.shapes(model_type="alphafold2_ptm", model_number=1)
    without = params.shapes(model_type="alphafold2_ptm", model_number=3)
    assert set(without) < set(with_templates)
    assert all(with_templates[k] == shape for k, shape in without.items())
    assert PAE_HEAD_KEY in without
    evo = "alphafold/alphafold_iteration/evoformer/evoformer_iteration"
    assert with_templates[f"{evo}/msa_row_attention_with_pair_bias/attention//query_w"] == (
        48,
        256,
        8,
        32,
    )
    assert f"{evo}/triangle_multiplication_outgoing/left_projection//weights" in without


# ---- fetch of the parameter tar ------------------------------------------------------------


@pytest.fixture
def www(tmp_path, monkeypatch) -> Iterator[tuple[Path, int]]:
    """A loopback HTTP server over tmp_path/www; yields (root, port)."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_alphafold_params_manifest_fetches_a_flat_tar_that_colabfold_can_use(tmp_path, www):
    root, port = www
    members = {"LICENSE": b"license text\n"}
    for n in range(1, 6):
        members[f"params_model_{n}.npz"] = _tiny_npz(ptm=False)
        members[f"params_model_{n}_ptm.npz"] = _tiny_npz()
    _tar(root / "alphafold_params_2021-07-14.tar", members)
    manifest = load_manifest("alphafold_params")
    assert manifest.archive == "tar" and manifest.url.endswith("alphafold_params_2021-07-14.tar")
    dest = tmp_path / "cache" / "alphafold_params"
    url = f"http://127.0.0.1:{port}/alphafold_params_2021-07-14.tar"
    assert fetch("alphafold_params", dest=dest, url=url) == dest
    assert check_params_dir(dest, model_type="alphafold2_ptm") == dest
    assert len((dest / SUMS_NAME).read_text().splitlines()) == 11
    assert not (dest / ".downloads").exists()


@pytest.mark.parametrize("evil", ["../evil.npz", "/tmp/evil.npz", "ok/../../evil.npz"])
def test_params_tar_with_an_escaping_member_is_refused(tmp_path, www, evil):
    root, port = www
    _tar(root / "evil.tar", {"params_model_1_ptm.npz": _tiny_npz(), evil: b"pwned"})
    parent = tmp_path / "cache"
    with pytest.raises(DataError, match="refusing"):
        fetch(
            "alphafold_params",
            dest=parent / "alphafold_params",
            url=f"http://127.0.0.1:{port}/evil.tar",
        )
    assert not (tmp_path / "evil.npz").exists()
    assert not parent.exists() or list(parent.iterdir()) == []
