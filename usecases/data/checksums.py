"""The one sha256 helper: hex digest of a file (read in 1 MiB chunks), of a tree of source files
or of weight arrays."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of the bytes of the file at ``path``."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_arrays(arrays: Iterable[np.ndarray]) -> str:
    """Hex sha256 of arrays in order (shape and float32 bytes of each): two models that start
    from the same weights, whichever framework holds them, give the same digest."""
    digest = hashlib.sha256()
    for array in arrays:
        values = np.ascontiguousarray(array, dtype=np.float32)
        digest.update(repr(values.shape).encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def sha256_tree(root: Path, *, pattern: str = "*.py") -> str:
    """Hex sha256 of every file under ``root`` matching ``pattern``: relative paths (sorted)
    and bytes, so a changed, added or removed file changes it (e.g. the code that trained)."""
    digest = hashlib.sha256()
    root = Path(root)
    for path in sorted(root.rglob(pattern)):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()
