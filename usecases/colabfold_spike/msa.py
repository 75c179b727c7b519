"""Where a ColabFold run's multiple sequence alignment comes from, checked before the run.

``msa_mode`` is ``mmseqs2`` (the ColabFold MMseqs2 server, UniRef + environmental databases,
as in the Galaxy notebook), ``mmseqs2_uniref`` (server, UniRef only), ``single_sequence``
(no MSA), or the path of an ``.a3m`` file whose first sequence is the folded sequence.
The server is only reachable online: :func:`check_msa_server` fails fast with one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from usecases.errors import ConfigError, DataError

SERVER_MODES = {"mmseqs2": "mmseqs2_uniref_env", "mmseqs2_uniref": "mmseqs2_uniref"}
"""Our names -> ColabFold's ``msa_mode`` values for the MMseqs2 server."""
SINGLE = "single_sequence"
A3M = "a3m"


@dataclass(frozen=True)
class MsaSource:
    """The resolved MSA option.

    ``mode`` is the name used in records and reference checks (``mmseqs2``,
    ``mmseqs2_uniref``, ``single_sequence`` or ``a3m``); ``colabfold_mode`` is what
    ``colabfold.batch.run`` gets; ``a3m_path`` is set for ``a3m`` only.
    """

    mode: str
    colabfold_mode: str
    a3m_path: Path | None = None

    @property
    def uses_server(self) -> bool:
        """True when ColabFold will query the MMseqs2 server."""
        return self.mode in SERVER_MODES


def resolve_msa(value: str, *, sequence: str) -> MsaSource:
    """Turn the ``msa_mode`` option into an :class:`MsaSource`; check an ``.a3m`` file.

    Raises ConfigError for an unknown mode and DataError for an ``.a3m`` that is missing,
    empty, or whose first sequence is not ``sequence``.
    """
    value = str(value).strip()
    if value in SERVER_MODES:
        return MsaSource(mode=value, colabfold_mode=SERVER_MODES[value])
    if value == SINGLE:
        return MsaSource(mode=SINGLE, colabfold_mode=SINGLE)
    if not value.endswith(".a3m"):
        raise ConfigError(
            f"msa_mode={value} is not one of mmseqs2, mmseqs2_uniref, single_sequence, "
            "or a path to an .a3m file."
        )
    path = Path(value).expanduser()
    query = a3m_query(path)
    if query != sequence:
        raise DataError(
            f"the first sequence of {path} ({len(query)} residues) is not the sequence being "
            f"folded ({len(sequence)} residues); give the matching FASTA (usecase.fasta) and "
            "no usecase.max_length."
        )
    return MsaSource(mode=A3M, colabfold_mode="custom_a3m", a3m_path=path)


def a3m_query(path: Path) -> str:
    """The first (query) sequence of an ``.a3m`` file, upper-case letters only."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as err:
        raise DataError(f"MSA file {path} does not exist; give msa_mode=PATH.a3m.") from err
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"MSA file {path} is not a readable text file ({err}).") from err
    seen_header = False
    parts: list[str] = []
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith(">"):
            if seen_header:
                break
            seen_header = True
            continue
        if seen_header:
            parts.append("".join(c for c in line if c.isupper()))
    if not parts:
        raise DataError(f"MSA file {path} holds no sequence; give an .a3m alignment.")
    return "".join(parts)


def check_msa_server(url: str, *, timeout_s: float) -> None:
    """Raise ConfigError (one line) unless an HTTP request to ``url`` gets any answer.

    Uses ``requests`` (so proxies apply) with ``timeout_s`` for connect and read; any HTTP
    status counts as reachable. Never retries and never waits longer than about
    ``2 * timeout_s``.
    """
    import requests

    try:
        requests.get(url, timeout=(timeout_s, timeout_s), allow_redirects=False)
    except requests.RequestException as err:
        reason = type(err).__name__
        raise ConfigError(
            f"msa_mode=mmseqs2 needs the ColabFold MSA server {url}, which is not reachable "
            f"({reason}; offline?); use msa_mode=single_sequence or msa_mode=PATH.a3m."
        ) from err
