"""Read the one protein sequence a ColabFold run folds from a FASTA file, and check it.

The default input is ``data_manifests/galaxy_spike_302.fasta``: the 302 residues the Galaxy
Europe notebook folded (UniProt P0DTC2 residues 1-302 with V3G, L5F, Q173K).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from usecases.data.manifests import DEFAULT_MANIFEST_DIR
from usecases.errors import ConfigError, DataError

GALAXY_FASTA = DEFAULT_MANIFEST_DIR / "galaxy_spike_302.fasta"
"""The 302-residue sequence of the Galaxy Europe ColabFold notebook."""
GALAXY_NAME = "galaxy_spike_302"
AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWY")
"""The 20 standard one-letter codes; ``X`` (unknown residue) is accepted as well."""
_ALLOWED = AMINO_ACIDS | {"X"}


@dataclass(frozen=True)
class ProteinSequence:
    """The sequence a run folds, where it came from, and how it was shortened.

    ``sequence`` is upper-case one-letter code; ``full_length`` is the length in the file,
    ``len(sequence)`` the folded length (shorter when ``max_length`` cut it).
    """

    name: str
    description: str
    sequence: str
    full_length: int
    source: Path

    @property
    def length(self) -> int:
        """Number of residues folded."""
        return len(self.sequence)

    @property
    def sha256(self) -> str:
        """sha256 (hex) of the folded sequence string."""
        return hashlib.sha256(self.sequence.encode("ascii")).hexdigest()

    @property
    def truncated(self) -> bool:
        """True when only the first ``length`` of ``full_length`` residues are folded."""
        return self.length < self.full_length


def read_fasta(path: Path) -> list[tuple[str, str]]:
    """Return ``(header, sequence)`` pairs of a FASTA file (header without '>').

    Sequence lines are joined with white space removed and upper-cased; a trailing ``*``
    (stop) is dropped. Raises DataError (one line) when the file is missing or unreadable.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise DataError(f"FASTA file {path} does not exist; give usecase.fasta=PATH.") from err
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"FASTA file {path} is not a readable text file ({err}).") from err
    records: list[tuple[str, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(";"):
            continue
        if stripped.startswith(">"):
            records.append((stripped[1:].strip(), []))
        elif not records:
            raise DataError(
                f"FASTA file {path} line {number} has sequence before any '>' header line."
            )
        else:
            records[-1][1].append("".join(stripped.split()).upper())
    return [(header, "".join(parts).removesuffix("*")) for header, parts in records]


def load_sequence(path: Path | None, *, max_length: int | None = None) -> ProteinSequence:
    """Load and check the single protein sequence in ``path`` (default: the Galaxy FASTA).

    Args:
        path: a FASTA file with exactly one record; None means ``GALAXY_FASTA``.
        max_length: keep only the first ``max_length`` residues (for speed); None keeps all.

    Raises:
        DataError: empty file, no or several records, empty sequence, or letters that are
            not amino acids (the first offending position is named).
        ConfigError: ``max_length`` is not a positive integer.
    """
    source = GALAXY_FASTA if path is None else Path(path).expanduser()
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
    ):
        raise ConfigError(f"usecase.max_length={max_length} must be a positive integer or null.")
    records = read_fasta(source)
    if not records:
        raise DataError(f"FASTA file {source} holds no sequence (no '>' record); give a protein.")
    if len(records) > 1:
        raise DataError(
            f"FASTA file {source} holds {len(records)} records; this use case folds one chain, "
            "so give a file with a single sequence."
        )
    header, sequence = records[0]
    if not sequence:
        raise DataError(f"FASTA file {source} record '{header}' has an empty sequence.")
    bad = [(i, c) for i, c in enumerate(sequence, start=1) if c not in _ALLOWED]
    if bad:
        pos, letter = bad[0]
        raise DataError(
            f"FASTA file {source}: {len(bad)} letters are not amino acids (first: {letter!r} at "
            f"residue {pos}); use the 20 one-letter codes (X for unknown)."
        )
    name = header.split()[0] if header.split() else source.stem
    folded = sequence if max_length is None else sequence[:max_length]
    return ProteinSequence(
        name=name,
        description=header,
        sequence=folded,
        full_length=len(sequence),
        source=source,
    )


def galaxy_sequence() -> str:
    """The 302-residue Galaxy notebook sequence (one-letter code)."""
    return load_sequence(GALAXY_FASTA).sequence
