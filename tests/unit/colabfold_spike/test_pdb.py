"""The one PDB reader: CA atoms of the first model, with coordinates and B-factors."""

from __future__ import annotations

import numpy as np

from usecases.colabfold_spike.pdb import ca_bfactors, read_ca_trace


def _atom(record: str, serial: int, name: str, res: int, xyz, b: float) -> str:
    x, y, z = xyz
    return (
        f"{record:<6}{serial:>5} {name:^4} ALA A{res:>4}    "
        f"{x:>8.3f}{y:>8.3f}{z:>8.3f}{1.0:>6.2f}{b:>6.2f}           C"
    )


def test_the_first_models_ca_atoms_are_read_with_coordinates_and_b_factors(tmp_path):
    lines = [
        "MODEL        1",
        _atom("ATOM", 1, "N", 1, (0, 0, 0), 10.0),
        _atom("ATOM", 2, "CA", 1, (1.5, -2.25, 3.0), 91.5),
        _atom("HETATM", 3, "CA", 2, (4.0, 5.0, 6.0), 42.0),
        _atom("ATOM", 4, "CA", 3, (7.0, 8.0, 9.0), 0.0)[:60] + "  xx.x",  # unreadable B
        "ENDMDL",
        "MODEL        2",
        _atom("ATOM", 5, "CA", 1, (9.0, 9.0, 9.0), 12.0),
        "ENDMDL",
    ]
    pdb = tmp_path / "m.pdb"
    pdb.write_text("\n".join(lines) + "\n")
    assert read_ca_trace(pdb) == [((1.5, -2.25, 3.0), 91.5), ((4.0, 5.0, 6.0), 42.0)]
    np.testing.assert_array_equal(ca_bfactors(pdb), [91.5, 42.0])


def test_a_file_without_ca_atoms_gives_empty_results(tmp_path):
    pdb = tmp_path / "empty.pdb"
    pdb.write_text(_atom("ATOM", 1, "N", 1, (0, 0, 0), 10.0) + "\nEND\n")
    assert read_ca_trace(pdb) == []
    assert ca_bfactors(pdb).shape == (0,)
