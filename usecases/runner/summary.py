"""The few lines a run ends with on the console, built from its record alone.

What a person wants at a glance: the headline metric, the verdicts against published values
(or why there are none), the fastest inference path, and where the record and report are.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from usecases.numbers import finite

# record timings of whole-batch inference, and how the summary names their path
_INFERENCE = {"inference_batch": "Keras", "onnx_inference_batch": "onnxruntime float32",
              "onnx_int8_inference_batch": "onnxruntime int8"}  # fmt: skip


def summary_lines(record: dict, *, run_dir: Path) -> list[str]:
    """The closing lines for one record (a ``record.json`` as a dict) written in ``run_dir``."""
    lines = [f"summary: {record.get('usecase')} {record.get('status')}"]
    if record.get("status") != "ok":
        lines.append(f"  error: {record.get('error')}")
    else:
        lines.append(f"  {_headline(record)}")
        lines.append(f"  {_verdicts(record)}")
        quality = _time_to_quality(record.get("metrics") or {})
        if quality:
            lines.append(f"  {quality}")
        fastest = _fastest_inference(record.get("timings") or {})
        if fastest:
            lines.append(f"  {fastest}")
    lines.append(f"  record: {run_dir / 'record.json'}")
    report = run_dir / "report" / "report.html"
    if report.is_file():
        lines.append(f"  report: {report}")
    return lines


def _headline(record: dict) -> str:
    metrics = record.get("metrics") or {}
    if record.get("usecase") == "colabfold_spike":
        plddt = finite(metrics.get("mean_plddt_best"))
        best = metrics.get("best_model", "?")
        return f"mean pLDDT of the best model ({best}): " + (
            "-" if plddt is None else f"{plddt:.1f}"
        )
    dice = finite((metrics.get("0.3") or {}).get("dice_pooled"))
    return "pooled test Dice at 0.3: " + ("-" if dice is None else f"{dice:.3f}")


def _time_to_quality(metrics: dict) -> str | None:
    """'time to quality (Dice@0.3 >= 0.743): epoch 13, 41.1 s', or never reached, or None."""
    ttq = metrics.get("time_to_quality")
    if not isinstance(ttq, dict):
        return None
    what = f"time to quality (Dice@{ttq.get('at')} >= {ttq.get('target')})"
    seconds = finite(ttq.get("seconds"))
    if not ttq.get("reached") or seconds is None:
        return f"{what}: not reached in {ttq.get('epochs_run')} epochs"
    return f"{what}: epoch {ttq.get('epochs')}, {seconds:.1f} s"


def _verdicts(record: dict) -> str:
    """'verdicts: 5 pass, 4 fail', or 'no verdict' with the reasons (synthetic data ...)."""
    refs = record.get("references") or []
    judged = Counter(r.get("verdict") for r in refs if r.get("verdict") in ("pass", "fail"))
    if judged:
        counts = ", ".join(f"{judged[v]} {v}" for v in ("pass", "fail") if judged[v])
        return (
            f"verdicts against published values: {counts} (of {len(refs)} references; one run: "
            "a reproduction verdict needs a study, usecase-bench-study)"
        )
    reasons = sorted({str(r.get("reason")) for r in refs if r.get("reason")})
    if reasons == ["synthetic data"] or (
        not reasons and (record.get("dataset") or {}).get("synthetic")
    ):
        return "synthetic data: no verdict against published values"
    return "no verdict against published values" + (f": {'; '.join(reasons)}" if reasons else "")


def _fastest_inference(timings: dict) -> str | None:
    """The timed inference path with the most images/s, e.g. 'onnxruntime int8 at batch 8'."""
    best = None
    for key, value in timings.items():
        if not isinstance(value, dict) or (rate := finite(value.get("images_per_s"))) is None:
            continue
        prefix, _, size = key.rpartition("batch")
        path = _INFERENCE.get(prefix + "batch")
        if path and size.isdigit() and (best is None or rate > best[0]):
            best = (rate, path, int(size))
    if best is None:
        return None
    rate, path, size = best
    return f"fastest inference: {path} at batch {size}, {rate:,.0f} images/s"
