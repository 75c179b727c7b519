"""Assemble the report's sections (tables, figures, notes) from loaded runs."""

from __future__ import annotations

from collections import Counter

from usecases.reporting import figures, tables, viewer
from usecases.reporting.blocks import Block, Paragraph, Section
from usecases.reporting.runs import Run

COVID, COLABFOLD = "covid_ct", "colabfold_spike"


def build_sections(runs: list[Run]) -> list[Section]:
    """Every section of the report for ``runs`` (use-case sections only where runs exist)."""
    citations = tables.Citations()
    sections = [
        Section("sec-summary", "Summary", (Paragraph(summary_text(runs)), tables.runs_table(runs))),
        Section(
            "sec-references",
            "Published vs measured",
            tuple(
                tables.references_table(r, index=i, citations=citations) for i, r in enumerate(runs)
            ),
        ),
    ]
    covid = [r for r in runs if r.record.usecase == COVID]
    if covid:
        sections.append(
            Section("sec-covid-ct", "COVID-19 CT segmentation (covid_ct)", _covid(covid))
        )
    fold = [r for r in runs if r.record.usecase == COLABFOLD]
    if fold:
        sections.append(
            Section("sec-colabfold", "ColabFold spike (colabfold_spike)", _colabfold(fold))
        )
    sections += [
        Section(
            "sec-timings",
            "Timings",
            (tables.timings_table(runs), tables.cpu_gpu_table(runs), figures.timing_bars(runs)),
        ),
        Section("sec-environment", "Environment", (tables.environment_table(runs),)),
        Section("sec-notes", "Notes", (tables.notes_table(runs),)),
        Section("sec-citations", "Citations", (citations.table(),)),
    ]
    return sections


def summary_text(runs: list[Run]) -> str:
    """One sentence: how many runs of what, their status, and the verdict counts."""
    usecases = Counter(r.record.usecase for r in runs)
    status = Counter(r.record.status for r in runs)
    verdicts = Counter(
        str(c.get("verdict")) for r in runs for c in r.record.references if isinstance(c, dict)
    )
    what = ", ".join(f"{n} {u}" for u, n in sorted(usecases.items()))
    states = ", ".join(f"{n} {s}" for s, n in sorted(status.items()))
    judged = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())) or "none"
    return (
        f"{len(runs)} run(s): {what} ({states}). Verdicts against published values, one run "
        f"each: {judged} (a reproduction verdict needs a study over seeds)."
    )


def _covid(runs: list[Run]) -> tuple[Block, ...]:
    blocks: list[Block] = [figures.dice_curve(runs)]
    blocks += [tables.threshold_table(r, index=i) for i, r in enumerate(runs)]
    blocks.append(figures.training_curves(runs))
    blocks += [figures.ct_slices(r, index=i) for i, r in enumerate(runs)]
    return tuple(blocks)


def _colabfold(runs: list[Run]) -> tuple[Block, ...]:
    blocks: list[Block] = []
    for i, run in enumerate(runs):
        blocks += [
            tables.models_table(run, index=i),
            figures.plddt_profile(run, index=i),
            figures.structure_view(run, index=i),
            viewer.structure_viewer(run, index=i),
        ]
    return tuple(blocks)
