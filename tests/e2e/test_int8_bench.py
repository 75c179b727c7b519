"""usecases.bench.int8 end to end at smoke width: recipes side by side; bad input in one line."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import COVID_ROOT, NO_SHARED, REPO, require


def _bench(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "usecases.bench.int8", "--data", str(COVID_ROOT), *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)


def _weights(tmp_path, width: int):
    code = (
        "import sys; from usecases.covid_ct import hot_paths; "
        f"hot_paths.build({width}).save_weights(sys.argv[1])"
    )
    path = tmp_path / f"n{width}.weights.h5"
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, check=True, timeout=300)
    return path


def test_recipes_are_timed_and_scored_side_by_side(tmp_path):
    require((COVID_ROOT / "Dataset").is_dir(), NO_SHARED)
    weights = _weights(tmp_path, 4)
    res = _bench("--weights", str(weights), "--width", "4", "--rounds", "2",
                 "--recipes", "previous", "default", "--out", str(tmp_path / "out"))  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "int8.json").read_text())
    assert list(result["paths"]) == [
        "keras_predict", "onnxruntime_float32", "int8 previous", "int8 default"
    ]  # fmt: skip
    for name, path in result["paths"].items():
        assert len(path["rounds_s"]) == 2 and path["images_per_s"] > 0, name
        assert set(path["dice_drop"]) == {f"0.{i}" for i in range(1, 10)}
        assert path["dice_max_drop"] == max(path["dice_drop"].values())
    assert result["paths"]["keras_predict"]["speedup"] == 1.0
    default = result["paths"]["int8 default"]["quantization"]
    assert default["upsampling"].startswith("4 ConvTranspose as sub-pixel")
    assert result["paths"]["int8 previous"]["quantization"]["recipe"]["upsampling"] == "float"
    assert "int8 default" in res.stdout and "vs predict" in res.stdout


def test_weights_of_another_width_are_one_error_line(tmp_path):
    require((COVID_ROOT / "Dataset").is_dir(), NO_SHARED)
    weights = _weights(tmp_path, 4)
    res = _bench("--weights", str(weights), "--width", "8", "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "is not a TV-UNet of width 8" in lines[0], res.stderr[-2000:]
    assert "Traceback" not in res.stderr and not (tmp_path / "out" / "int8.json").exists()
    missing = _bench("--weights", str(tmp_path / "none.h5"), "--out", str(tmp_path / "out"))
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: --weights")
