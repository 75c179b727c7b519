"""The benchmark summary table: images/s, GFLOP/s, efficiency and speed-up per hot path."""

from __future__ import annotations

from collections.abc import Iterable


def summary_lines(rows: Iterable, ceilings: dict) -> list[str]:
    """Text lines: one block per (width, kind, batch size), the reference way first.

    ``rows`` carry ``width``, ``path`` (HotPath), ``batch_size`` and ``info`` with
    ``images_per_s``, ``gflops_per_s``, ``efficiency`` and, with trained weights, ``dice_pooled``,
    ``dice_drop_vs_float32`` (per threshold) and ``dice_max_drop_vs_float32`` (largest drop
    over thresholds); ratios are to the block's reference path and, where the block has it,
    to the paper's own code under tf-keras (``tf_keras_original*``).
    """
    rows = list(rows)
    lines = [
        "GEMM ceilings: "
        + "; ".join(
            f"{p} {c['gflops']:,.0f} {'GOP/s' if p == 'int8' else 'GFLOP/s'} ({c['library']})"
            for p, c in sorted(ceilings.items())
        ),
        "data: " + ", ".join(sorted({str(r.info.get("data", "not recorded")) for r in rows})),
    ]
    blocks: dict[tuple, list] = {}
    for r in rows:
        blocks.setdefault((r.width, r.info["n_filters"], r.path.kind, r.batch_size), []).append(r)
    for (width, n, kind, bs), block in sorted(blocks.items()):
        block.sort(key=lambda r: (not r.path.reference, -r.info["images_per_s"]))
        ref = block[0] if block[0].path.reference else None
        paper = next((r for r in block if r.path.name.startswith("tf_keras_original")), None)
        lines.append("")
        lines.append(f"{kind}, {width} width (n={n}), batch {bs}")
        lines.append(
            f"  {'path':34} {'images/s':>10} {'GFLOP/s':>9} {'eff.':>6} {'Dice@0.3':>9} "
            f"{'drop@0.3':>9} {'max drop':>9}  vs reference"
            + ("  vs paper's code" if paper else "")
        )
        for r in block:
            ratio = f"{r.info['images_per_s'] / ref.info['images_per_s']:.2f}x" if ref else "n/a"
            if paper:
                ratio += f"{r.info['images_per_s'] / paper.info['images_per_s']:17.2f}x"
            eff = r.info.get("efficiency")
            dice = (r.info.get("dice_pooled") or {}).get("0.3")
            drop = (r.info.get("dice_drop_vs_float32") or {}).get("0.3")
            worst = r.info.get("dice_max_drop_vs_float32")
            lines.append(
                f"  {r.path.name:34} {r.info['images_per_s']:10.2f} {r.info['gflops_per_s']:9.1f} "
                f"{'' if eff is None else f'{eff:.0%}':>6} "
                f"{'' if dice is None else f'{dice:.4f}':>9} "
                f"{'' if drop is None else f'{drop:+.4f}':>9} "
                f"{'' if worst is None else f'{worst:+.4f}':>9}  {ratio}"
                + ("  (reference)" if r.path.reference else "")
            )
        fastest = max(block, key=lambda r: r.info["images_per_s"])
        if ref is not None and fastest is not ref:
            lines.append(
                f"  fastest: {fastest.path.name}, "
                f"{fastest.info['images_per_s'] / ref.info['images_per_s']:.2f}x {ref.path.name}"
            )
    return lines
