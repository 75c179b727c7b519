"""The published-value registry and the pass/fail/not-comparable verdicts of compare()."""

from __future__ import annotations

from pathlib import Path

import pytest

from usecases.errors import DataError
from usecases.records.references import Reference, compare, load_references

PUBLISHED_DICE = {
    "0.1": 0.761,
    "0.2": 0.772,
    "0.3": 0.773,
    "0.4": 0.768,
    "0.5": 0.759,
    "0.6": 0.744,
    "0.7": 0.720,
    "0.8": 0.680,
    "0.9": 0.585,
}
PAPER = {"dataset": "covid_semiseg", "scale": "paper"}


def _metrics(*, shift: float = 0.0) -> dict:
    """segmentation_metrics-shaped dict reproducing the published TV-UNet values + shift."""
    sens = {"0.1": 0.859, "0.9": 0.428}
    spec = {"0.1": 0.925, "0.9": 0.993}
    out: dict = {
        at: {
            "dice_pooled": dice + shift,
            "dice_mean_per_image": dice + shift - 0.05,
            "sensitivity": sens.get(at, 0.7) + shift,
            "specificity": spec.get(at, 0.95) + shift,
            "iou_pooled": 0.6,
        }
        for at, dice in PUBLISHED_DICE.items()
    }
    out["n_images"] = 48
    return out


def _by_id(rows: list[dict]) -> dict[str, dict]:
    return {row["reference_id"]: row for row in rows}


def test_tv_unet_curve_loads() -> None:
    refs = [r for r in load_references() if r.metric == "dice_pooled" and r.role == "target"]
    assert {r.at: r.value for r in refs} == PUBLISHED_DICE
    assert len(refs) == 9
    at_03 = next(r for r in refs if r.at == "0.3")
    assert at_03.value == 0.773
    assert at_03.tolerance == 0.03
    assert "galaxy_h5" in at_03.requires["dataset"]
    assert isinstance(at_03, Reference)


def test_every_entry_is_complete() -> None:
    refs = load_references()
    assert len({r.id for r in refs}) == len(refs)
    for ref in refs:
        assert ref.role in {"target", "context"}
        assert ref.citation and ref.source and ref.definition
        assert ref.role == "context" or ref.tolerance is not None


def test_matching_curve_passes() -> None:
    rows = compare(usecase="covid_ct", metrics=_metrics(), settings=PAPER, synthetic=False)
    targets = [
        row
        for row in rows
        if row["reference_id"].startswith("tv_unet_") and "abstract" not in row["reference_id"]
    ]
    assert len(targets) == 13
    assert all(row["verdict"] == "pass" for row in targets)
    assert all(row["difference"] == pytest.approx(0.0, abs=1e-9) for row in targets)


def test_curve_lower_by_a_tenth_fails() -> None:
    rows = _by_id(
        compare(usecase="covid_ct", metrics=_metrics(shift=-0.1), settings=PAPER, synthetic=False)
    )
    row = rows["tv_unet_dice_pooled_0.3"]
    assert row["verdict"] == "fail"
    assert row["difference"] == pytest.approx(-0.1)
    assert row["measured"] == pytest.approx(0.673)
    assert all(rows[f"tv_unet_dice_pooled_{at}"]["verdict"] == "fail" for at in PUBLISHED_DICE)


def test_galaxy_h5_at_galaxy_scale_is_judged() -> None:
    settings = {"dataset": "galaxy_h5", "scale": "galaxy"}
    rows = _by_id(
        compare(usecase="covid_ct", metrics=_metrics(), settings=settings, synthetic=False)
    )
    assert rows["tv_unet_dice_pooled_0.3"]["verdict"] == "pass"


@pytest.mark.parametrize(
    ("settings", "synthetic", "word"),
    [
        (PAPER, True, "synthetic"),
        ({"dataset": "covid_semiseg", "scale": "smoke"}, False, "scale"),
        ({"dataset": "phantom", "scale": "paper"}, False, "dataset"),
        ({"dataset": "covid_semiseg"}, False, "scale"),
    ],
)
def test_not_comparable(settings: dict, synthetic: bool, word: str) -> None:
    rows = compare(usecase="covid_ct", metrics=_metrics(), settings=settings, synthetic=synthetic)
    assert rows
    for row in rows:
        assert row["verdict"] == "not comparable"
        assert row["difference"] is None
    target = _by_id(rows)["tv_unet_dice_pooled_0.3"]
    assert word in target["reason"]
    assert target["measured"] == pytest.approx(0.773)


def test_context_entries_never_judged() -> None:
    for shift in (0.0, -0.1, 0.3):
        for settings in (PAPER, {"dataset": "medseg_nifti", "scale": "paper"}):
            rows = compare(
                usecase="covid_ct",
                metrics=_metrics(shift=shift),
                settings=settings,
                synthetic=False,
            )
            ids = _by_id(rows)
            for ref_id in (
                "inf_net_dice_mean_per_image",
                "semi_inf_net_dice_mean_per_image",
                "tv_unet_abstract_medseg_dice",
            ):
                assert ids[ref_id]["verdict"] == "not comparable"


def test_peers_show_best_mean_per_image_dice() -> None:
    rows = _by_id(compare(usecase="covid_ct", metrics=_metrics(), settings=PAPER, synthetic=False))
    peer = rows["inf_net_dice_mean_per_image"]
    assert peer["published"] == 0.682
    assert peer["measured"] == pytest.approx(0.773 - 0.05)
    assert peer["measured_at"] == "0.3"
    assert peer["reason"].startswith("context only")
    assert rows["semi_inf_net_dice_mean_per_image"]["published"] == 0.739


def test_missing_measurement_is_not_comparable() -> None:
    metrics = _metrics()
    del metrics["0.3"]
    rows = _by_id(compare(usecase="covid_ct", metrics=metrics, settings=PAPER, synthetic=False))
    assert rows["tv_unet_dice_pooled_0.3"]["verdict"] == "not comparable"
    assert rows["tv_unet_dice_pooled_0.3"]["measured"] is None
    assert rows["tv_unet_dice_pooled_0.2"]["verdict"] == "pass"


def test_other_usecase_with_null_at(tmp_path: Path) -> None:
    path = tmp_path / "refs.yaml"
    path.write_text(
        "references:\n"
        "  - {id: spike_plddt, usecase: colabfold_spike, metric: mean_plddt, definition: d,\n"
        "     at: null, value: 85.0, tolerance: 2.0, dataset: spike, requires: {},\n"
        "     role: target, citation: c, source: s}\n",
        encoding="utf-8",
    )
    refs = load_references(path=path)
    assert refs[0].at is None
    ok = compare(
        usecase="colabfold_spike",
        metrics={"mean_plddt": 86.5},
        settings={},
        synthetic=False,
        references=refs,
    )
    assert [row["verdict"] for row in ok] == ["pass"]
    bad = compare(
        usecase="colabfold_spike",
        metrics={"mean_plddt": 80.0},
        settings={},
        synthetic=False,
        references=refs,
    )
    assert [row["verdict"] for row in bad] == ["fail"]
    assert (
        compare(usecase="covid_ct", metrics={}, settings={}, synthetic=False, references=refs) == []
    )


def test_bad_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "refs.yaml"
    path.write_text("references:\n  - {id: x, usecase: u}\n", encoding="utf-8")
    with pytest.raises(DataError, match="missing fields"):
        load_references(path=path)
