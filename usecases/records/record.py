"""The one result record every use case writes: typed, versioned, validated, written atomically.

The JSON Schema lives beside this file (``record.schema.json``); ``SCHEMA_VERSION`` changes
whenever a field changes meaning. Reports, the regression gate and benchmarks read records
through ``load_record`` only.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jsonschema

from usecases.errors import DataError

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).with_name("record.schema.json")


@dataclass
class ResultRecord:
    """One run of one use case. ``status`` is "ok" or "failed" (then ``error`` says why)."""

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
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def validate(data: dict, *, what: str = "record") -> None:
    """Raise DataError (one line) unless ``data`` matches the record schema."""
    if data.get("schema_version") != SCHEMA_VERSION:
        raise DataError(
            f"{what} has schema_version {data.get('schema_version')!r}, expected "
            f"{SCHEMA_VERSION!r}; rerun it with this version of usecase-bench."
        )
    try:
        jsonschema.validate(data, _schema())
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise DataError(
            f"{what} does not match the record schema at {where}: {err.message}"
        ) from err


def write_record(record: ResultRecord, path: Path) -> Path:
    """Validate and write ``record`` as JSON atomically (temporary file, then rename)."""
    data = record.to_dict()
    validate(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".record-", suffix=".json.part")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=_jsonable)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_record(path: Path) -> ResultRecord:
    """Read and validate a record; DataError (one line) if missing, not JSON or off-schema."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise DataError(f"record {path} does not exist.") from err
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"record {path} is not readable JSON ({err}).") from err
    if not isinstance(data, dict):
        raise DataError(f"record {path} is not a JSON object.")
    validate(data, what=f"record {path}")
    return ResultRecord(**data)


def _jsonable(obj):
    """numpy scalars and arrays, Paths -> JSON types."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
