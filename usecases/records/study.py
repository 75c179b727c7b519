"""The study record: N seeds of one setting summarised, judged against the published values.

One ``study.json`` beside the per-seed result records it was made from (``runs[].record``
holds their paths relative to it). Written by ``usecases.studies.reproduction``, read by the
report through ``load_study`` only. Its schema is ``study.schema.json`` beside this file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from usecases.records.record import check_schema, read_json_object, write_json
from usecases.records.sets import STUDY_NAME

STUDY_SCHEMA_VERSION = "1.0"
STUDY_SCHEMA_PATH = Path(__file__).with_name("study.schema.json")
STUDY_FILE = STUDY_NAME
STUDY_VERDICTS = ("reproduced", "consistent", "not reproduced", "not established")


@dataclass
class StudyRecord:
    """A reproduction study of one setting.

    ``runs``: one entry per seed (ok and failed), with its Dice per threshold, history,
    learning curve and time-to-quality. ``per_threshold``: ``{"0.3": {"dice_pooled":
    {n, mean, sd, ci, pi}, ...}}``. ``verdicts``: one per published value, with the numbers
    that decided it. ``time_to_quality``: the distribution of epochs and seconds to target.
    """

    study_id: str
    created_at: str
    usecase: str
    setting: str
    synthetic: bool
    confidence: float
    verdict_rule: str
    seeds: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    per_threshold: dict = field(default_factory=dict)
    verdicts: list = field(default_factory=list)
    time_to_quality: dict = field(default_factory=dict)
    failed: list = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    kind: str = "reproduction_study"
    schema_version: str = STUDY_SCHEMA_VERSION

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def validate_study(data: dict, *, what: str = "study") -> None:
    """Raise DataError (one line) unless ``data`` matches the study schema."""
    check_schema(
        data,
        schema=STUDY_SCHEMA_PATH,
        version=STUDY_SCHEMA_VERSION,
        what=what,
        remedy="remake it with usecase-bench-study --analyse",
    )


def write_study(study: StudyRecord, path: Path) -> Path:
    """Validate and write ``study`` atomically."""
    data = study.to_dict()
    validate_study(data)
    return write_json(data, path)


def load_study(path: Path) -> StudyRecord:
    """Read and validate a study record; DataError (one line) if missing, not JSON or off-schema."""
    data = read_json_object(path, what="study")
    validate_study(data, what=f"study {path}")
    return StudyRecord(**data)
