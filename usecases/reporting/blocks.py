"""The report's building blocks: tables, figures, notes and sections, free of any output format.

``build`` makes them from records; ``render`` writes them as HTML and as Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    """A titled table of text cells; ``id`` is unique within the report."""

    id: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG figure with a caption; ``id`` is unique within the report and names the file."""

    id: str
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Note:
    """A sentence in place of a figure or table that could not be made (says why)."""

    id: str
    text: str


@dataclass(frozen=True)
class Paragraph:
    """Plain explanatory text."""

    text: str


@dataclass(frozen=True)
class Viewer3D:
    """An interactive 3-D view of one PDB (text), coloured by pLDDT = B-factor x ``plddt_scale``
    (100 where the file stores 0..1); HTML only, the Markdown keeps the static figure."""

    id: str
    title: str
    caption: str
    pdb: str
    plddt_scale: float = 1.0


Block = Table | Figure | Note | Paragraph | Viewer3D


@dataclass(frozen=True)
class Section:
    """A titled group of blocks (``id`` becomes the HTML anchor)."""

    id: str
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)
