"""colabfold_spike input without a fold: the FASTA reader and the MSA options."""

from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import SHARED_DATA, require
from usecases.colabfold_spike.fasta import GALAXY_FASTA, galaxy_sequence, load_sequence, read_fasta
from usecases.colabfold_spike.msa import check_msa_server, resolve_msa
from usecases.colabfold_spike.once import spike_prefix
from usecases.errors import ConfigError, DataError

SHARED_SPIKE = SHARED_DATA / "spike"


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
