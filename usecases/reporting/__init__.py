"""Paper-reproduction report: result records -> one self-contained HTML page + a Markdown page.

``write_report(records, out_dir=...)`` is the entry for code; ``usecase-bench-report``
(``python -m usecases.reporting.render``) the one for people. Modules: runs (read records),
slices (CT test slices), figures, tables, study (study records), build (sections), render
(HTML, Markdown, CLI).
"""

from __future__ import annotations

from pathlib import Path


def write_report(records: list[Path], *, out_dir: Path) -> dict[str, Path]:
    """Render ``records`` into ``out_dir`` (see ``usecases.reporting.render.write_report``)."""
    from usecases.reporting.render import write_report as _write

    return _write(records, out_dir=out_dir)
