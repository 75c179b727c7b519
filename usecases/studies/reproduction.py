"""Reproduction study: the seeds of one setting, judged as a distribution against the paper.

A published value is itself one training run, so one run of ours cannot confirm or refute
it. Over the ok runs (one per seed) of one setting this module gives, per threshold, the mean,
sd, the 95 % t confidence interval of the mean (CI) and the 95 % t prediction interval of one
more run (PI), and against each published value one verdict (``VERDICT_RULE``). The same
run settings are required of every run (``studies.runs``); failed runs are listed and left out.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from usecases.errors import DataError
from usecases.numbers import finite
from usecases.records.record import ResultRecord
from usecases.records.sets import run_key
from usecases.records.study import STUDY_FILE, StudyRecord
from usecases.studies.runs import check_same_settings, covid_record_files, repeated_seed, seed_of
from usecases.studies.stats import seed_summary

CONFIDENCE = 0.95
MIN_SEEDS = 3
_EPS = 1e-9  # interval bounds are inclusive, to rounding
VERDICT_RULE = (
    "over n >= 3 ok seeds of one setting, 95 % t intervals (df = n - 1): 'reproduced' when the "
    "confidence interval of our mean lies inside published +- tolerance; else 'consistent' when "
    "the published value lies inside our prediction interval of one run (mean +- t sd "
    "sqrt(1 + 1/n)); else 'not reproduced', with the side our runs lie on ('above': ours are "
    "better); 'not established' with fewer than 3 ok seeds, synthetic data, settings other "
    "than the reference's, or a context-only value. Bounds count as inside."
)
CURVE_AT = "0.3"


def reproduction_verdict(
    values: Sequence[float],
    *,
    published: float,
    tolerance: float | None,
    confidence: float = CONFIDENCE,
    unusable: str | None = None,
) -> dict:
    """The verdict of ``values`` (one per seed) against ``published`` +- ``tolerance``.

    ``unusable`` (a reason such as "synthetic data") forces "not established". Returns
    ``{"verdict", "side", "reason", "summary": {n, mean, sd, ci, pi}}``; ``side`` is "above"
    or "below" (where our prediction interval lies) for "not reproduced", else None.
    """
    summary = _summary(values, confidence=confidence)
    out = {"verdict": "not established", "side": None, "summary": summary}
    if unusable is not None:
        return {**out, "reason": unusable}
    if tolerance is None:
        return {**out, "reason": "no tolerance: context only"}
    if len(values) < MIN_SEEDS:
        return {**out, "reason": f"{len(values)} ok seed(s); a verdict needs {MIN_SEEDS}"}
    (c_low, c_high), (p_low, p_high) = summary["ci"], summary["pi"]
    pct = f"{confidence:.0%}"
    band = f"published {published:g} +- {tolerance:g}"
    if published - tolerance - _EPS <= c_low and c_high <= published + tolerance + _EPS:
        reason = f"{pct} CI of the mean [{c_low:.3f}, {c_high:.3f}] lies inside {band}"
        return {**out, "verdict": "reproduced", "reason": reason}
    pi_text = f"{pct} prediction interval [{p_low:.3f}, {p_high:.3f}]"
    if p_low - _EPS <= published <= p_high + _EPS:
        reason = (
            f"published {published:g} lies inside our {pi_text}, but the CI of the mean "
            f"[{c_low:.3f}, {c_high:.3f}] is not inside {band}"
        )
        return {**out, "verdict": "consistent", "reason": reason}
    side = "above" if p_low > published else "below"
    reason = f"published {published:g} lies outside our {pi_text}: our runs lie {side} it"
    return {**out, "verdict": "not reproduced", "side": side, "reason": reason}


def _summary(values: Sequence[float], *, confidence: float) -> dict:
    """{n, mean, sd, ci, pi}; intervals None below two values."""
    if len(values) < 2:
        mean = float(values[0]) if values else None
        return {"n": len(values), "mean": mean, "sd": None, "ci": None, "pi": None}
    s = seed_summary([float(v) for v in values], confidence=confidence)
    return {"n": s.n, "mean": s.mean, "sd": s.sd, "ci": list(s.ci), "pi": list(s.pi)}


def build_study(
    paths: Sequence[Path], *, out_dir: Path, study_id: str, confidence: float = CONFIDENCE
) -> StudyRecord:
    """The study of the covid_ct records under ``paths``; ``out_dir`` is where study.json goes
    (records are named relative to it). DataError when settings differ or a seed repeats."""
    ok_files, failed_files = covid_record_files(paths)
    files = {id(r): f for f, r in [*ok_files, *failed_files]}
    ok, failed = [r for _, r in ok_files], [r for _, r in failed_files]
    check_same_settings(
        ok, free=(), what="a reproduction study compares runs that differ only in the seed"
    )
    ok.sort(key=seed_of)
    seeds = [seed_of(r) for r in ok]
    if (twice := repeated_seed(seeds)) is not None:
        raise DataError(f"seed {twice} was run twice: keep one run per seed")
    first = ok[0]
    synthetic = bool(first.dataset.get("synthetic"))
    keys = sorted({k for r in ok for k in _threshold_keys(r.metrics)}, key=float)
    per_threshold = {
        k: {
            m: _summary(vals, confidence=confidence)
            for m in ("dice_pooled", "dice_mean_per_image")
            if (vals := [v for r in ok if (v := _metric(r, k, m)) is not None])
        }
        for k in keys
    }
    return StudyRecord(
        study_id=study_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        usecase="covid_ct",
        setting=run_key(first) + (" (synthetic data)" if synthetic else ""),
        synthetic=synthetic,
        confidence=confidence,
        verdict_rule=VERDICT_RULE,
        seeds=seeds,
        runs=[_run_entry(r, file=files[id(r)], out_dir=out_dir) for r in [*ok, *failed]],
        per_threshold=per_threshold,
        verdicts=_verdicts(ok, confidence=confidence),
        time_to_quality=_time_to_quality(ok),
        failed=[f"seed {r.config.get('seed')} ({r.run_id}): {r.error}" for r in failed],
        environment=_environment(first),
        notes=[
            "one run per seed; the per-run verdicts of the records judge one run each",
            *(["synthetic data: no verdict against published values"] if synthetic else []),
        ],
    )


def _verdicts(ok: list[ResultRecord], *, confidence: float) -> list[dict]:
    """One verdict per reference of the first run, from every run's comparison with it."""
    out = []
    for ref in ok[0].references:
        rid = ref.get("reference_id")
        entries = [e for r in ok for e in r.references if e.get("reference_id") == rid]
        values = [v for e in entries if (v := finite(e.get("measured"))) is not None]
        # synthetic data, other settings, context only: the whole study is unusable for this
        # value; a run that merely lacks the value is left out of it (fewer seeds)
        unusable = next(
            (
                str(e.get("reason"))
                for e in entries
                if e.get("verdict") == "not comparable"
                and not str(e.get("reason", "")).startswith("no measured")
            ),
            None,
        )
        judged = reproduction_verdict(
            values,
            published=float(ref["published"]),
            tolerance=finite(ref.get("tolerance")),
            confidence=confidence,
            unusable=unusable,
        )
        out.append(
            {
                "reference_id": rid,
                "metric": ref.get("metric"),
                "at": ref.get("at"),
                "published": ref.get("published"),
                "tolerance": ref.get("tolerance"),
                "values": values,
                **judged,
                "citation": ref.get("citation"),
            }
        )
    return out


def _time_to_quality(ok: list[ResultRecord]) -> dict:
    """Over seeds: how many reached the target, and the epochs and seconds they took."""
    ttq = [t for r in ok if isinstance(t := r.metrics.get("time_to_quality"), Mapping)]
    if not ttq:
        return {"recorded": 0, "note": "no run recorded a learning curve"}
    reached = [t for t in ttq if t.get("reached")]
    epochs = [int(t["epochs"]) for t in reached]
    seconds = [float(t["seconds"]) for t in reached]
    return {
        "recorded": len(ttq),
        "metric": ttq[0].get("metric"),
        "at": ttq[0].get("at"),
        "target": ttq[0].get("target"),
        "target_from": ttq[0].get("target_from"),
        "reached": len(reached),
        "epochs": epochs,
        "seconds": seconds,
        # medians over the seeds that reached the target only (named so: with 1 of 4 reached,
        # it is that one seed)
        "epochs_median_of_reached": statistics.median(epochs) if epochs else None,
        "seconds_median_of_reached": statistics.median(seconds) if seconds else None,
        "includes": ttq[0].get("includes"),
    }


def _run_entry(record: ResultRecord, *, file: Path, out_dir: Path) -> dict:
    m = record.metrics
    curve = (m.get("learning_curve") or {}).get("by_threshold", {}).get(CURVE_AT, {})
    history = m.get("history") or {}
    return {
        "seed": record.config.get("seed"),
        "run_id": record.run_id,
        "record": _relative(file, out_dir),
        "status": record.status,
        "error": record.error,
        "dice_pooled": {k: _metric(record, k, "dice_pooled") for k in _threshold_keys(m)},
        "dice_mean_per_image": {
            k: _metric(record, k, "dice_mean_per_image") for k in _threshold_keys(m)
        },
        "history": {k: history.get(k) for k in ("loss", "val_loss") if k in history},
        "curve_dice_pooled_at": CURVE_AT,
        "curve_dice_pooled": curve.get("dice_pooled"),
        "best_epoch": m.get("best_epoch"),
        "epochs_run": m.get("epochs_run"),
        "time_to_quality": m.get("time_to_quality"),
        "train_images_per_s": (record.timings.get("train_step") or {}).get("images_per_s"),
    }


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(path.resolve())


def _environment(record: ResultRecord) -> dict:
    env = record.environment
    return {
        "cpu": (env.get("cpu") or {}).get("model"),
        "gpus": [g.get("name") for g in env.get("gpus") or [] if isinstance(g, Mapping)],
        "libraries": env.get("libraries"),
        "git": env.get("git"),
        "precision": (record.device.get("precision") or {}).get("policy"),
    }


def _threshold_keys(metrics: Mapping) -> list[str]:
    out = []
    for key, row in metrics.items():
        if isinstance(row, Mapping) and "dice_pooled" in row and finite(_as_float(key)):
            out.append(key)
    return out


def _as_float(key: str) -> float | None:
    try:
        return float(key)
    except ValueError:
        return None


def _metric(record: ResultRecord, key: str, metric: str) -> float | None:
    return finite((record.metrics.get(key) or {}).get(metric))


def study_path(out_dir: Path) -> Path:
    """Where the study record of ``out_dir`` lives."""
    return Path(out_dir) / STUDY_FILE


def format_study(study: StudyRecord) -> str:
    """The study as printed text: setting, per-threshold intervals, verdicts, time to target."""
    pct = f"{study.confidence:.0%}"
    lines = [
        f"reproduction study of {study.setting}: seeds {','.join(map(str, study.seeds))}",
        f"{'threshold':>9s} {'n':>2s} {'Dice mean':>9s} {'sd':>6s} {pct + ' CI of mean':>18s} "
        f"{pct + ' PI of one run':>18s}",
    ]
    for key, row in study.per_threshold.items():
        s = row.get("dice_pooled")
        if s:
            lines.append(
                f"{key:>9s} {s['n']:2d} {s['mean']:9.4f} {_f(s['sd'], 6)} "
                f"{_pair(s['ci']):>18s} {_pair(s['pi']):>18s}"
            )
    for v in study.verdicts:
        at = "" if v["at"] is None else f"@{v['at']}"
        lines.append(f"{v['reference_id']} ({v['metric']}{at}): {v['verdict']}: {v['reason']}")
    ttq = study.time_to_quality
    if ttq.get("recorded"):
        lines.append(
            f"time to quality ({ttq['metric']}@{ttq['at']} >= {ttq['target']:g}): "
            f"{ttq['reached']} of {ttq['recorded']} seeds; epochs {ttq['epochs'] or '-'}, "
            f"seconds {[round(s, 1) for s in ttq['seconds']] or '-'}"
        )
    lines += [f"left out, failed: {line}" for line in study.failed]
    return "\n".join(lines)


def _f(value: float | None, width: int) -> str:
    return f"{'-':>{width}s}" if value is None else f"{value:{width}.4f}"


def _pair(pair: Sequence[float] | None) -> str:
    return "-" if pair is None else f"[{pair[0]:.4f}, {pair[1]:.4f}]"
