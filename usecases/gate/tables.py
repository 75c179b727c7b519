"""The gate's result as text: a plain table, GitHub Markdown, and the one-line verdict."""

from __future__ import annotations

from usecases.gate.compare import OK, GateResult, fmt_value


def format_table(result: GateResult) -> str:
    """Plain-text table of every check, worst first, then the notes and a one-line verdict."""
    rows = [("run", "check", "baseline", "current", "change", "allowed", "verdict")]
    ordered = sorted(result.checks, key=lambda c: (c.verdict == OK, c.run, c.path))
    rows += [
        (c.run, c.path, fmt_value(c.baseline), fmt_value(c.current), c.change, c.allowed, c.verdict)
        for c in ordered
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines += [f"note: {n}" for n in result.notes]
    lines.append(verdict_line(result))
    return "\n".join(lines)


def format_markdown(result: GateResult, *, title: str = "Regression gate") -> str:
    """The same table in GitHub Markdown (for a CI job summary or a pull request)."""
    out = [f"## {title}", "", verdict_line(result), ""]
    out += ["| run | check | baseline | current | change | allowed | verdict |", "|---" * 7 + "|"]
    for c in sorted(result.checks, key=lambda c: (c.verdict == OK, c.run, c.path)):
        verdict = f"**{c.verdict}**" if c.verdict != OK else c.verdict
        cells = (
            c.run,
            c.path,
            fmt_value(c.baseline),
            fmt_value(c.current),
            c.change,
            c.allowed,
            verdict,
        )
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    out += [""] + [f"- note: {n}" for n in result.notes]
    return "\n".join(out).rstrip() + "\n"


def verdict_line(result: GateResult) -> str:
    """'gate: PASS (N checks)' or 'gate: FAIL, K regressions: run path, ...'."""
    bad = result.regressions
    if not bad:
        return f"gate: PASS ({len(result.checks)} checks hold)"
    named = ", ".join(f"{c.run} {c.path}" for c in bad)
    return f"gate: FAIL, {len(bad)} regression{'s' if len(bad) > 1 else ''}: {named}"
