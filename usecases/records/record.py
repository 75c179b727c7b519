"""The one result record every use case writes: typed, versioned, validated, written atomically.

The JSON Schema lives beside this file (``record.schema.json``); ``SCHEMA_VERSION`` changes
whenever a field changes meaning. Reports, the regression gate and benchmarks read records
through ``load_record`` only.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jsonschema

from usecases.errors import DataError

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).with_name("record.schema.json")


@dataclass
class ResultRecord:
    """One run of one use case. ``status`` is "ok", "failed" or "terminated" (SIGTERM or the
    launcher's preemption; ``error`` says why). ``resumable``: a checkpoint in the run folder
    lets ``run.py resume=RUN_DIR`` continue it. ``segments``: one entry per process that worked
    on the run (started_at, stopped_at, status, why, and for training the epochs it covered)."""

    run_id: str
    usecase: str
    status: str
    started_at: str
    finished_at: str | None = None
    config: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    device: dict = field(default_factory=dict)
    dataset: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    references: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    artifacts: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    error: str | None = None
    resumable: bool = False
    segments: list = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def validate(data: dict, *, what: str = "record") -> None:
    """Raise DataError (one line) unless ``data`` matches the record schema."""
    check_schema(
        data,
        schema=SCHEMA_PATH,
        version=SCHEMA_VERSION,
        what=what,
        remedy="rerun it with this version of usecase-bench",
    )


def check_schema(data: dict, *, schema: Path, version: str, what: str, remedy: str) -> None:
    """Raise DataError (one line) unless ``data`` has ``version`` and matches ``schema``."""
    if data.get("schema_version") != version:
        raise DataError(
            f"{what} has schema_version {data.get('schema_version')!r}, expected "
            f"{version!r}; {remedy}."
        )
    try:
        jsonschema.validate(data, json.loads(schema.read_text()))
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        message = f"{what} does not match the {schema.stem.split('.')[0]} schema at {where}"
        raise DataError(f"{message}: {err.message}") from err


def write_record(record: ResultRecord, path: Path) -> Path:
    """Validate and write ``record`` as JSON atomically (temporary file, then rename)."""
    data = record.to_dict()
    validate(data)
    return write_json(data, path)


def write_json(data: dict, path: Path) -> Path:
    """Write ``data`` as indented JSON atomically (temporary file beside it, then rename)."""
    with atomic_file(path, what="record") as tmp, tmp.open("w") as handle:
        json.dump(data, handle, indent=2, sort_keys=False, default=_jsonable)
        handle.write("\n")
    return Path(path)


@contextmanager
def atomic_file(path: Path, *, what: str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends, flush it to disk and rename
    it to ``path`` (mode 0644). The file at ``path`` is either the old one or the complete new
    one: on an OSError (a full disk) the temporary file is removed, the old file stays, and
    DataError says so in one line naming ``what``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=f"-{path.name}")
        os.close(fd)
    except OSError as err:
        raise DataError(f"{what} {path} not written ({err.strerror or err}).") from err
    tmp = Path(name)
    try:
        yield tmp  # named .part-XXXX-<name>: Keras wants *.weights.h5, numpy adds .npz otherwise
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        raise DataError(
            f"{what} {path} not written ({err.strerror or err}); the previous file, if any, "
            f"is kept: free space in {path.parent} and run again."
        ) from err
    finally:
        tmp.unlink(missing_ok=True)


def load_record(path: Path) -> ResultRecord:
    """Read and validate a record; DataError (one line) if missing, not JSON or off-schema."""
    data = read_json_object(path, what="record")
    validate(data, what=f"record {path}")
    return ResultRecord(**data)


def read_json_object(path: Path, *, what: str) -> dict:
    """The JSON object in ``path``; DataError naming ``what`` if missing, unreadable or not one."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise DataError(f"{what} {path} does not exist.") from err
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{what} {path} is not readable JSON ({err}).") from err
    if not isinstance(data, dict):
        raise DataError(f"{what} {path} is not a JSON object.")
    return data


def _jsonable(obj):
    """numpy scalars and arrays, Paths -> JSON types."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
