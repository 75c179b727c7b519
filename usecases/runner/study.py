"""usecase-bench-study: N seeds of one covid_ct setting, one study record, one report.

    usecase-bench-study OUT --seeds 1,2,3,4 scale=ci device=cpu dataset.root=../shared/...

runs ``python run.py -m seed=...`` (a Hydra multirun: the ``hydra/launcher`` override sends the
seeds to SLURM through submitit) with each run's folder under ``OUT/runs/covid_ct/seed<N>``,
written as soon as that run finishes. Seeds that already have an ok record there are kept,
not rerun, so a study cut short is finished by the same command. Then it writes
``OUT/study.json`` (``usecases.studies.reproduction``), ``OUT/study.txt`` and the report
``OUT/report.html`` (study first, then each run). ``--analyse`` only redoes the last three.
A seed folder without an ok run (failed, interrupted) is moved to ``OUT/attempts/`` before that
seed runs again. Ctrl-C or SIGTERM stops the sweep after the running seed has written its
record (exit 130 or 143, no analysis). Exit 0 when every seed ran, 1 when a run failed (the
study is still written), 2 for bad input.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from usecases import paths
from usecases.errors import ConfigError, DataError, UserError
from usecases.records.record import load_record
from usecases.records.sets import find_records
from usecases.records.study import write_study
from usecases.studies.reproduction import build_study, format_study, study_path

RESERVED = ("seed", "results_dir", "run_id", "report")


def parse_seeds(text: str) -> list[int]:
    """Seeds "1,2,3" or "1-4" -> sorted unique seeds; ConfigError for anything else."""
    seeds: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            first, last = int(low), int(high or low)
            if first > last:
                raise ValueError
            seeds.update(range(first, last + 1))
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: give seeds as 1,2,3 or 1-4 (integers >= 0)") from None
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"--seeds {text!r}: give seeds as 1,2,3 or 1-4 (integers >= 0)")
    return sorted(seeds)


def done_seeds(runs_dir: Path) -> set[int]:
    """Seeds with an ok covid_ct record under ``runs_dir`` (unreadable records count as not
    done, and are left for the analysis to name)."""
    done = set()
    for file in find_records([runs_dir]) if runs_dir.exists() else []:
        try:
            record = load_record(file)
        except DataError:
            continue
        seed = record.config.get("seed")
        if record.usecase == "covid_ct" and record.status == "ok" and isinstance(seed, int):
            done.add(seed)
    return done


def set_aside(seeds: Sequence[int], *, runs_dir: Path, out: Path) -> list[Path]:
    """Move the folders of ``seeds`` that hold no ok run (failed, interrupted) out of
    ``runs_dir`` into ``out/attempts/`` so that the seed can run again; their paths."""
    moved = []
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    for seed in seeds:
        folder = runs_dir / "covid_ct" / f"seed{seed}"
        if folder.exists():
            target = out / "attempts" / f"seed{seed}-{stamp}"
            target.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(target)
            moved.append(target)
    return moved


def run_seeds(seeds: Sequence[int], *, runs_dir: Path, overrides: Sequence[str]) -> int:
    """``run.py -m seed=...`` into ``runs_dir``; its exit status."""
    run_py = paths.require(paths.repo() / "run.py", what="run.py")
    command = [
        sys.executable,
        str(run_py),
        "-m",
        f"seed={','.join(map(str, seeds))}",
        f"results_dir={runs_dir}",
        "run_id=seed${seed}",
        "report=false",
        *overrides,
    ]
    print(f"study: {len(seeds)} run(s), seeds {','.join(map(str, seeds))}", flush=True)
    child = subprocess.Popen(command)
    # a scheduler's SIGTERM or a Ctrl-C goes to the runs: each writes its record, the sweep
    # stops (runner/cli.py), and this waits for it rather than leaving it behind
    forward = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                child.send_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, forward)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run the seeds, write the study and its report; exit 0, 1 or 2 (one error line)."""
    parser = argparse.ArgumentParser(
        prog="usecase-bench-study", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out", type=Path, help="study folder (runs/, study.json, report.html)")
    parser.add_argument("--seeds", default="1-4", help="seeds, e.g. 1-4 or 1,2,5 (default 1-4)")
    parser.add_argument("--analyse", action="store_true", help="only analyse OUT/runs again")
    parser.add_argument("overrides", nargs="*", help="run.py overrides, e.g. scale=ci")
    args = parser.parse_intermixed_args(argv)  # overrides may follow the options
    try:
        return _main(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # an OUT folder that cannot be written
        where = err.filename or args.out
        print(f"error: cannot write {where} ({err.strerror}); choose another OUT", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    reserved = [o for o in args.overrides if o.lstrip("+~").split("=")[0] in RESERVED]
    if reserved:
        raise ConfigError(
            f"{reserved[0]!r}: the study sets {', '.join(RESERVED)} itself (use --seeds)"
        )
    _refuse_sweeps(args.overrides)
    out = args.out.resolve()
    runs_dir = out / "runs"
    rc = 0
    if not args.analyse:
        seeds = parse_seeds(args.seeds)
        kept = done_seeds(runs_dir)
        todo = [s for s in seeds if s not in kept]
        if kept & set(seeds):
            print(f"study: seeds {','.join(map(str, sorted(kept & set(seeds))))} kept (ok)")
        if todo:
            out.mkdir(parents=True, exist_ok=True)
            for moved in set_aside(todo, runs_dir=runs_dir, out=out):
                print(f"study: an earlier attempt without an ok run moved to {moved}")
            code = run_seeds(todo, runs_dir=runs_dir, overrides=args.overrides)
            if code in (2, 130, 143):  # bad options, or interrupted: no analysis now
                return code
            rc = 1 if code else 0
    if not runs_dir.exists():
        raise ConfigError(f"{runs_dir} does not exist: run the study first (without --analyse)")
    study = build_study([runs_dir], out_dir=out, study_id=out.name)
    write_study(study, study_path(out))
    text = format_study(study)
    (out / "study.txt").write_text(text + "\n")
    print(text)
    from usecases.reporting import write_report

    written = write_report([out], out_dir=out)
    print(f"study: {study_path(out)}\nreport: {written['html']}")
    return 1 if rc or study.failed else 0


def _refuse_sweeps(overrides: Sequence[str]) -> None:
    """ConfigError for an override that Hydra would sweep (``a=1,2``): one setting per study."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception as err:  # Hydra's several parse errors: run.py names them the same way
        raise ConfigError(f"bad option: {str(err).splitlines()[0]}") from None
    for override in parsed:
        if override.is_sweep_override():
            raise ConfigError(
                f"{override.input_line!r} sweeps several values; a study runs one setting "
                "(quote a comma inside a value, e.g. key='a,b')"
            )


if __name__ == "__main__":
    sys.exit(main())
