"""The one PDB reader: the CA atoms of the first model (coordinates in Å, B-factor column).

ColabFold writes each residue's pLDDT (0-100) into the B-factor column of its atoms; the
record's per-residue pLDDT and the report's structure view both read it from here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_ca_trace(pdb: Path) -> list[tuple[tuple[float, float, float], float]]:
    """``((x, y, z), B-factor)`` of each CA atom (ATOM or HETATM) of the first model, in order.

    Reading stops at the first ``ENDMDL``; lines whose numbers do not parse are skipped.
    """
    trace = []
    for line in Path(pdb).read_text(errors="replace").splitlines():
        if line.startswith("ENDMDL"):
            break
        if line.startswith(("ATOM", "HETATM")) and line[12:16].strip() == "CA":
            try:
                xyz = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
                trace.append((xyz, float(line[60:66])))
            except ValueError:
                continue
    return trace


def ca_bfactors(pdb: Path) -> np.ndarray:
    """B-factor of each residue's CA atom of the first model, in residue order (shape (L,))."""
    return np.asarray([b for _, b in read_ca_trace(pdb)], dtype=np.float64)
