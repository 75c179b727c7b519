"""colabfold_spike pieces without a fold: FASTA, MSA options, parameter files, fetch, verdicts.

Nothing here runs AlphaFold; the one test that traces the model's parameter shapes needs
ColabFold installed (the ``colabfold`` extra) and skips without it.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, SHARED_DATA, needs_module, require
from usecases.colabfold_spike.fasta import GALAXY_FASTA, galaxy_sequence, load_sequence, read_fasta
from usecases.colabfold_spike.msa import check_msa_server, resolve_msa
from usecases.colabfold_spike.once import spike_prefix
from usecases.colabfold_spike.outputs import FoldResult, ModelResult
from usecases.colabfold_spike.weights import (
    FETCH_COMMAND,
    JAX_DEFAULT_ENV,
    PAE_HEAD_KEY,
    check_params_dir,
    colabfold_data_dir,
    random_array,
)
from usecases.data.fetch import SUMS_NAME, fetch
from usecases.data.manifests import load_manifest
from usecases.errors import ConfigError, DataError
from usecases.records.references import compare

SHARED_SPIKE = SHARED_DATA / "spike"
GALAXY_SETTINGS = {
    "weights": "alphafold",
    "sequence": "galaxy_spike_302",
    "msa_mode": "mmseqs2",
    "model_type": "alphafold2_ptm",
    "num_recycles": 3,
    "num_models": 5,
    "use_templates": False,
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- FASTA ---------------------------------------------------------------------------------


def test_galaxy_fasta_is_uniprot_1_302_with_the_three_substitutions():
    uniprot = SHARED_SPIKE / "P0DTC2_spike_uniprot.fasta"
    require(
        uniprot.is_file(), f"{uniprot} is absent (../shared/data is only on dev and CI machines)"
    )
    full = read_fasta(uniprot)[0][1]
    expected = list(full[:302])
    for pos, (was, now) in {3: ("V", "G"), 5: ("L", "F"), 173: ("Q", "K")}.items():
        assert expected[pos - 1] == was
        expected[pos - 1] = now
    assert galaxy_sequence() == "".join(expected)
    shared = SHARED_SPIKE / "galaxy_spike_302.fasta"
    if shared.is_file():
        assert GALAXY_FASTA.read_bytes() == shared.read_bytes()


def test_max_length_keeps_the_first_residues_and_says_so():
    seq = load_sequence(None, max_length=30)
    assert seq.sequence == galaxy_sequence()[:30] and seq.length == 30
    assert seq.full_length == 302 and seq.truncated
    assert not load_sequence(None).truncated


@pytest.mark.parametrize("max_length", [0, -3, "ten", True])
def test_max_length_must_be_a_positive_integer(max_length):
    with pytest.raises(ConfigError, match="max_length"):
        load_sequence(None, max_length=max_length)


def test_empty_fasta_is_refused(tmp_path):
    path = tmp_path / "empty.fasta"
    path.write_text("")
    with pytest.raises(DataError, match="holds no sequence"):
        load_sequence(path)
    path.write_text(">only a header\n")
    with pytest.raises(DataError, match="empty sequence"):
        load_sequence(path)


def test_letters_that_are_not_amino_acids_are_named(tmp_path):
    path = tmp_path / "bad.fasta"
    path.write_text(">bad\nMFVFL\nVLPJ1VSS\n")
    with pytest.raises(DataError, match=r"2 letters are not amino acids \(first: 'J' at residue 9"):
        load_sequence(path)


def test_fasta_with_two_records_is_refused_and_case_and_spaces_do_not_matter(tmp_path):
    two = tmp_path / "two.fasta"
    two.write_text(">a\nMKV\n>b\nMKV\n")
    with pytest.raises(DataError, match="2 records"):
        load_sequence(two)
    one = tmp_path / "one.fasta"
    one.write_text(">x my protein\nmk v\nLX*\n")
    seq = load_sequence(one)
    assert seq.sequence == "MKVLX" and seq.name == "x"


def test_spike_prefix_repeats_the_sequence_beyond_its_length():
    assert spike_prefix(20) == galaxy_sequence()[:20]
    long = spike_prefix(700)
    assert len(long) == 700 and long[302:604] == galaxy_sequence()


# ---- MSA options ---------------------------------------------------------------------------


def test_msa_modes_resolve_to_colabfold_names():
    assert resolve_msa("mmseqs2", sequence="MKV").colabfold_mode == "mmseqs2_uniref_env"
    assert resolve_msa("mmseqs2", sequence="MKV").uses_server
    single = resolve_msa("single_sequence", sequence="MKV")
    assert single.colabfold_mode == "single_sequence" and not single.uses_server
    with pytest.raises(ConfigError, match="msa_mode=jackhmmer"):
        resolve_msa("jackhmmer", sequence="MKV")


def test_a3m_must_start_with_the_folded_sequence(tmp_path):
    a3m = tmp_path / "q.a3m"
    a3m.write_text("#3\t1\n>101\nMKV\n>hit\nMK-aaV\n")
    source = resolve_msa(str(a3m), sequence="MKV")
    assert source.mode == "a3m" and source.a3m_path == a3m
    with pytest.raises(DataError, match="is not the sequence being folded"):
        resolve_msa(str(a3m), sequence="MKVL")
    with pytest.raises(DataError, match="does not exist"):
        resolve_msa(str(tmp_path / "none.a3m"), sequence="MKV")


def test_unreachable_msa_server_fails_fast_with_one_line():
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        check_msa_server(f"http://127.0.0.1:{_closed_port()}", timeout_s=2)
    assert time.perf_counter() - t0 < 5
    message = str(info.value)
    assert "\n" not in message and "single_sequence" in message and ".a3m" in message


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


# ---- verdicts and timings ------------------------------------------------------------------


def _metrics(best: float, mean: float) -> dict:
    return {"mean_plddt_best": best, "mean_plddt_mean": mean, "model_1": {"mean_plddt": 81.0}}


def _verdicts(refs: list[dict]) -> dict[str, str]:
    return {r["reference_id"]: r["verdict"] for r in refs}


def test_galaxy_settings_get_pass_or_fail_on_best_and_mean_only():
    refs = compare(
        usecase="colabfold_spike",
        metrics=_metrics(82.0, 80.0),
        settings=GALAXY_SETTINGS,
        synthetic=False,
    )
    verdicts = _verdicts(refs)
    assert verdicts["colabfold_galaxy_mean_plddt_best"] == "pass"  # |82.0 - 83.8| <= 3
    assert verdicts["colabfold_galaxy_mean_plddt_mean"] == "pass"  # |80.0 - 82.44| <= 3
    judged = {k for k, v in verdicts.items() if v != "not comparable"}
    assert judged == {"colabfold_galaxy_mean_plddt_best", "colabfold_galaxy_mean_plddt_mean"}
    low = compare(
        usecase="colabfold_spike",
        metrics=_metrics(70.0, 79.0),
        settings=GALAXY_SETTINGS,
        synthetic=False,
    )
    assert _verdicts(low)["colabfold_galaxy_mean_plddt_best"] == "fail"
    assert _verdicts(low)["colabfold_galaxy_mean_plddt_mean"] == "fail"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"msa_mode": "single_sequence"}, "msa_mode is single_sequence"),
        ({"num_recycles": 1}, "num_recycles is 1"),
        ({"sequence": "other"}, "sequence is other"),
        ({"weights": "random"}, "weights is random"),
    ],
)
def test_other_settings_are_not_comparable_with_the_reason(change, reason):
    refs = compare(
        usecase="colabfold_spike",
        metrics=_metrics(83.8, 82.44),
        settings={**GALAXY_SETTINGS, **change},
        synthetic=False,
    )
    best = next(r for r in refs if r["reference_id"] == "colabfold_galaxy_mean_plddt_best")
    assert best["verdict"] == "not comparable" and reason in best["reason"]


def _model(
    n: int, *, rank: int, time_s: float, forwards: list[float], compile_s: float = 0.0
) -> ModelResult:
    return ModelResult(
        model=f"model_{n}",
        rank=rank,
        tag=f"alphafold2_ptm_model_{n}_seed_000",
        mean_plddt=80.0,
        mean_plddt_residues=80.0,
        ptm=0.7,
        max_pae=30.0,
        plddt_per_residue=[80.0],
        time_s=time_s,
        forwards_s=forwards,
        compile_s=compile_s,
        pdb=Path("x.pdb"),
        scores=Path("x.json"),
    )


def test_first_model_time_holds_compilation_and_is_kept_apart_from_steady_state():
    result = FoldResult(
        jobname="q",
        out_dir=Path("."),
        models=[
            _model(2, rank=1, time_s=8.0, forwards=[4.0, 4.0]),
            _model(1, rank=2, time_s=38.0, forwards=[34.0, 4.0], compile_s=29.5),
            _model(3, rank=3, time_s=8.2, forwards=[4.1, 4.1]),
        ],
        run_s=60.0,
        params_s=5.0,
        compile_s=31.0,
    )
    t = result.timings()
    assert t["first_model_s"] == 38.0 and t["forward_first_s"] == 34.0
    assert t["first_model_compile_s"] == 29.5 and t["first_model_without_compile_s"] == 8.5
    assert t["model_compile_s"] == {"model_1": 29.5, "model_2": 0.0, "model_3": 0.0}
    assert t["steady_model"]["median_s"] == pytest.approx(8.1)
    assert t["forward_steady"]["median_s"] == 4.0 and t["jax_compile_s"] == 31.0
    assert t["forwards_per_model"] == 2
    assert t["outside_prediction_s"] == pytest.approx(60.0 - 54.2 - 5.0)


def test_one_model_without_recycles_has_no_steady_state():
    result = FoldResult(
        jobname="q",
        out_dir=Path("."),
        models=[_model(1, rank=1, time_s=20.0, forwards=[20.0], compile_s=12.0)],
        run_s=30.0,
        params_s=2.0,
        compile_s=12.5,
    )
    t = result.timings()
    assert t["first_model_s"] == 20.0 and t["first_model_without_compile_s"] == 8.0
    assert "steady_model" not in t and "forward_steady" not in t


def test_importing_colabfold_keeps_jax_gpu_memory_defaults():
    needs_module("colabfold", "ColabFold is not installed (colabfold extra)")
    code = (
        "import os\n"
        "from usecases.colabfold_spike.weights import keep_jax_gpu_memory_defaults\n"
        "keep_jax_gpu_memory_defaults()\n"
        "import colabfold.batch\n"
        "print(*(os.environ[k] for k in ('TF_FORCE_UNIFIED_MEMORY',"
        " 'XLA_PYTHON_CLIENT_MEM_FRACTION')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in JAX_DEFAULT_ENV}
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    ).stdout.split()
    assert out == ["0", "0.75"]  # not ColabFold's "1" and "4.0" (4x the GPU, unified memory)


def test_models_are_read_with_colabfolds_own_scores_and_a_differing_rank_stops_the_run(tmp_path):
    from usecases.colabfold_spike.checkpoint import FinishedModel
    from usecases.colabfold_spike.instrument import ModelTiming
    from usecases.colabfold_spike.outputs import read_models

    tag = "alphafold2_ptm_model_1_seed_000"
    timing = ModelTiming(total_s=2.0, forwards_s=[2.0], tag=tag, mean_plddt=84.9)
    done = FinishedModel(model="model_1", tag=tag, started_at="2026-12-04T00:00:00+00:00",
                         ranking_confidence=84.9, mean_plddt=84.9, ptm=0.5,
                         timing=timing)  # fmt: skip
    with pytest.raises(RuntimeError, match="ColabFold ranked model_1 otherwise"):
        read_models([done], out_dir=tmp_path, jobname="job", resumed=False)
    (tmp_path / f"job_scores_rank_001_{tag}.json").write_text('{"plddt": [80.0, 90.0]}')
    (tmp_path / f"job_unrelaxed_rank_001_{tag}.pdb").write_text("")
    (model,) = read_models([done], out_dir=tmp_path, jobname="job", resumed=False)
    # ColabFold's own mean pLDDT (float16 output), not the mean of the rounded residues
    assert model.mean_plddt == 84.9 and model.mean_plddt_residues == 85.0 and model.time_s == 2.0


def test_the_compilation_cache_is_cold_then_warm_and_off_when_not_given(tmp_path):
    jax = pytest.importorskip("jax", reason="JAX is not installed (the colabfold extra)")
    from usecases.colabfold_spike.instrument import compilation_cache

    def step():  # a new function each time: only the persistent cache can skip its compile
        return jax.jit(lambda x: jax.numpy.tanh(x @ x.T) + 1.0)(jax.numpy.ones((32, 32)))

    cold, warm, off = {}, {}, {}
    with compilation_cache(tmp_path / "jax", cold):
        first = step().block_until_ready()
    assert cold["state"] == "cold" and cold["misses"] >= 1 and any((tmp_path / "jax").iterdir())
    with compilation_cache(tmp_path / "jax", warm):
        again = step().block_until_ready()
    assert warm["state"] == "warm" and warm["hits"] >= 1 and warm["misses"] == 0
    assert np.array_equal(np.asarray(first), np.asarray(again))
    with compilation_cache(None, off):
        step().block_until_ready()
    assert off == {"dir": None, "hits": 0, "misses": 0, "saved_s": 0.0, "state": "off"}
    assert jax.config.jax_compilation_cache_dir != str(tmp_path / "jax")  # put back


def test_the_fold_sweep_cli_refuses_a_model_count_colabfold_lacks(tmp_path, capsys):
    from usecases.bench.colabfold import main

    with pytest.raises(SystemExit) as stop:
        main(["--models", "1", "6", "--out", str(tmp_path)])
    assert stop.value.code == 2 and "--models take 1 to 5" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
