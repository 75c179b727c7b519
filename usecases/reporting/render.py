"""Write the report: one self-contained HTML page and one Markdown page (+ its PNG figures).

The HTML embeds every figure as a base64 PNG, its CSS inline and, where a run has a structure,
3Dmol.js and the scripts that draw it (``viewer.py``; allowed by their sha256 hashes only), and
forbids any fetch with a Content-Security-Policy, so it opens offline. The Markdown (for papers
and pull requests) links the same figures from ``figures/`` beside it.

    python -m usecases.reporting.render results/covid_ct/RUN [more records or folders] --out DIR
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from usecases.errors import DataError, UserError
from usecases.records.sets import find_studies
from usecases.records.study import STUDY_FILE, load_study
from usecases.reporting.blocks import Block, Figure, Note, Paragraph, Section, Table, Viewer3D
from usecases.reporting.build import build_sections
from usecases.reporting.runs import load_runs
from usecases.reporting.study import study_section
from usecases.reporting.viewer import draw_script, library_js

TITLE = "usecase-bench: paper-reproduction report"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 76em; color: #1b1b1b;
       padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { font-size: 1.05em; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 12.5px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } tr:nth-child(even) td { background: #fafafa; }
td.verdict-pass { background: #d9f2d9 !important; font-weight: 600; }
td.verdict-fail { background: #f8d0d0 !important; font-weight: 600; }
td.verdict-not-comparable, td.verdict-not-established { color: #666; }
td.verdict-reproduced { background: #d9f2d9 !important; font-weight: 600; }
td.verdict-consistent { background: #eef6d0 !important; font-weight: 600; }
td.verdict-not-reproduced { background: #f8d0d0 !important; font-weight: 600; }
figure { margin: 1em 0 1.6em; } figure img { max-width: 100%; border: 1px solid #e2e2e2; }
figcaption { font-size: 12.5px; color: #444; max-width: 60em; }
p.skipped { color: #8a5a00; background: #fff6e0; padding: .4em .7em;
            border-left: 3px solid #e0a800; }
nav ul { columns: 2; } .meta { color: #555; }
"""


def write_report(records: list[Path], *, out_dir: Path) -> dict[str, Path]:
    """Render ``records`` (files or folders) into ``out_dir``; return the paths written.

    Study records (``study.json``) among them or below the folders come first, each as a
    section of its own. Keys: ``html`` (report.html, self-contained), ``markdown`` (report.md)
    and ``figures`` (the folder of PNGs the Markdown links). Raises DataError for unreadable
    records.
    """
    given = [Path(p) for p in records]
    studies = [load_study(p) for p in find_studies(given)]
    record_paths = [p for p in given if p.is_dir() or p.name != STUDY_FILE]
    runs = load_runs(record_paths) if record_paths else []
    if not runs and not studies:
        raise DataError(f"no result records found in {', '.join(str(p) for p in records)}")
    sections = [study_section(s, index=i) for i, s in enumerate(studies)]
    sections += build_sections(runs) if runs else []
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("fig-*.png"):
        old.unlink()
    for fig in _figures(sections):
        (fig_dir / f"{fig.id}.png").write_bytes(fig.png)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    html_path.write_text(to_html(sections, stamp=stamp), encoding="utf-8")
    md_path.write_text(to_markdown(sections, stamp=stamp, figure_dir="figures"), encoding="utf-8")
    return {"html": html_path, "markdown": md_path, "figures": fig_dir}


def to_html(sections: list[Section], *, stamp: str) -> str:
    """The whole page as one HTML string (no external resource of any kind)."""
    nav = "".join(f'<li><a href="#{s.id}">{_e(s.title)}</a></li>' for s in sections)
    body = "\n".join(_html_section(s) for s in sections)
    viewers = [b for s in sections for b in s.blocks if isinstance(b, Viewer3D)]
    scripts = [library_js(), *(draw_script(v) for v in viewers)] if viewers else []
    csp = CSP
    if scripts:
        csp += "; script-src " + " ".join(_script_hash(code) for code in scripts)
    body += "".join(f"\n<script>{code}</script>" for code in scripts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(TITLE)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<h1>{_e(TITLE)}</h1>\n<p class="meta">Generated {_e(stamp)} by usecase-bench '
        "from the result records below; opens offline (everything is embedded).</p>\n"
        f"<nav><ul>{nav}</ul></nav>\n{body}\n</body>\n</html>\n"
    )


def to_markdown(sections: list[Section], *, stamp: str, figure_dir: str) -> str:
    """The same report as GitHub Markdown; figures link ``figure_dir/<id>.png``."""
    out = [
        f"# {TITLE}",
        "",
        f"Generated {stamp} by usecase-bench from the result records below.",
        "",
    ]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            out += [*_md_block(block, figure_dir=figure_dir), ""]
    return "\n".join(out).rstrip() + "\n"


def _html_section(section: Section) -> str:
    inner = "\n".join(_html_block(b) for b in section.blocks)
    return f'<section id="{section.id}">\n<h2>{_e(section.title)}</h2>\n{inner}\n</section>'


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{_e(block.text)}</p>"
    if isinstance(block, Note):
        return f'<p class="skipped" id="{block.id}" data-skipped="true">{_e(block.text)}</p>'
    if isinstance(block, Viewer3D):
        return (
            f'<figure id="{block.id}-figure"><h3>{_e(block.title)}</h3>'
            f'<div id="{block.id}" class="viewer3d" role="img" aria-label="{_e(block.title)}" '
            'style="width:640px;height:420px;position:relative;border:1px solid #e2e2e2">'
            f"</div><figcaption>{_e(block.caption)}</figcaption></figure>"
        )
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        return (
            f'<figure id="{block.id}"><h3>{_e(block.title)}</h3>'
            f'<img alt="{_e(block.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(block.caption)}</figcaption></figure>"
        )
    return _html_table(block)


def _html_table(table: Table) -> str:
    verdict_col = table.columns.index("verdict") if "verdict" in table.columns else -1
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    rows = []
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row):
            cls = f' class="verdict-{cell.replace(" ", "-")}"' if i == verdict_col else ""
            cells.append(f"<td{cls}>{_e(cell)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    caption = f'<p class="meta">{_e(table.caption)}</p>' if table.caption else ""
    return (
        f'<h3>{_e(table.title)}</h3>\n<table id="{table.id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{caption}"
    )


def _md_block(block: Block, *, figure_dir: str) -> list[str]:
    if isinstance(block, Paragraph):
        return [block.text]
    if isinstance(block, Note):
        return [f"> _{_md(block.text)}_"]
    if isinstance(block, Viewer3D):
        return [f"> _{_md(block.title)}: interactive in report.html (the figure above is static)_"]
    if isinstance(block, Figure):
        return [
            f"### {block.title}",
            "",
            f"![{block.title}]({figure_dir}/{block.id}.png)",
            "",
            f"_{_md(block.caption)}_",
        ]
    lines = [f"### {block.title}", ""]
    lines.append("| " + " | ".join(_md(c) or " " for c in block.columns) + " |")
    lines.append("|" + "---|" * len(block.columns))
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in block.rows]
    if block.caption:
        lines += ["", f"_{_md(block.caption)}_"]
    return lines


def _figures(sections: list[Section]) -> list[Figure]:
    return [b for s in sections for b in s.blocks if isinstance(b, Figure)]


def _script_hash(code: str) -> str:
    """The CSP source that allows exactly this inline script."""
    digest = base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: render records (files or folders) into --out; exit 0, or 1/2 with one error line."""
    parser = argparse.ArgumentParser(
        prog="usecase-bench-report",
        description="Turn result records into a self-contained HTML page and a Markdown page.",
    )
    parser.add_argument(
        "records", type=Path, nargs="+", help="record.json / study.json files or folders"
    )
    parser.add_argument(
        "--out", "-o", type=Path, default=Path("results/report"), help="output folder"
    )
    args = parser.parse_args(argv)
    try:
        paths = write_report(args.records, out_dir=args.out)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        print(f"error: cannot write the report to {args.out} ({err.strerror})", file=sys.stderr)
        return 2
    print(f"report: {paths['html']} and {paths['markdown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
