"""Paper-reproduction report: result records -> one self-contained HTML page + a Markdown page.

``write_report(records, out_dir=...)`` is the entry for code; ``python -m usecases.report.render``
(``usecase-bench-report``) the one for people. Modules: runs (read records), slices (CT test
slices), figures, tables, build (sections), render (HTML, Markdown, CLI).
"""

from __future__ import annotations

from pathlib import Path


def write_report(records: list[Path], *, out_dir: Path) -> dict[str, Path]:
    """Render ``records`` into ``out_dir`` (see ``usecases.report.render.write_report``)."""
    from usecases.report.render import write_report as _write

    return _write(records, out_dir=out_dir)
