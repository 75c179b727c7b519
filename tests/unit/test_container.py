"""The container recipe: it installs the project's own lock and runs run.py, and its entry point
detects the GPU. No image is built here: these machines reach the package registries but not
a container registry, so the base image cannot be pulled (see the README)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

DOCKERFILE = REPO / "container" / "Dockerfile"
ENTRYPOINT = REPO / "container" / "entrypoint.sh"


def _pins(lock: Path) -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9_.-]+)==(\S+) \\$", lock.read_text(), re.M))


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())  # join continued lines
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0], ln.split(None, 1)[1]) for ln in lines]


def test_the_image_installs_the_hashed_lock_as_a_non_root_user_and_runs_run_py():
    steps = _instructions()
    assert steps[0][0] == "FROM" and steps[0][1].startswith("nvidia/cuda:")
    (run,) = [arg for op, arg in steps if op == "RUN" and "bootstrap.sh" in arg]
    assert "LOCK=requirements-container.lock" in run and "PYTHON=python3.11" in run
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    before_install = [op for op, arg in steps[: steps.index(("RUN", run))]]
    assert "USER" in before_install  # installed as that user, not as root
    (entry,) = [arg for op, arg in steps if op == "ENTRYPOINT"]
    assert entry == '["/opt/usecase-bench/container/entrypoint.sh"]'
    assert 'exec python "$home/run.py"' in ENTRYPOINT.read_text()
    assert os.access(ENTRYPOINT, os.X_OK)


def test_the_container_lock_pins_what_ci_tests_and_adds_the_gpu_and_jupyterlab():
    ci = _pins(REPO / "requirements-colabfold.lock")
    image = _pins(REPO / "requirements-container.lock")
    shared = ci.keys() & image.keys()
    assert {"keras", "tensorflow-cpu", "jax", "colabfold", "tf-keras"} <= shared
    assert {name: ci[name] for name in shared} == {name: image[name] for name in shared}
    assert {"jax-cuda12-plugin", "jupyterlab"} <= image.keys() - ci.keys()
    assert image["jax-cuda12-plugin"] == image["jax"]
    head = (REPO / "requirements-container.lock").read_text().splitlines()[1]
    assert "--extra container" in head and "--generate-hashes" in head


def _entry(tmp_path: Path, *args: str, gpu: str | None) -> subprocess.CompletedProcess:
    """The entry point with this checkout as the image's, and a fake nvidia-smi where ``gpu``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho '{gpu}'\n" if gpu else "#!/bin/sh\nexit 9\n")
    smi.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "USECASE_BENCH_HOME": str(REPO),
    }
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, check=False
    )


def test_the_entry_point_says_what_it_found_and_runs_keras_on_jax_with_a_gpu(tmp_path):
    res = _entry(tmp_path, "dataset=phantom", "--cfg", "job", gpu="NVIDIA H200")
    assert res.returncode == 0, res.stderr
    assert "NVIDIA GPU detected: NVIDIA H200" in res.stderr
    assert re.search(r"^backend:\n  name: jax$", res.stdout, re.M)
    chosen = _entry(tmp_path, "dataset=phantom", "backend=tensorflow", "--cfg", "job", gpu="H200")
    assert re.search(r"^backend:\n  name: tensorflow$", chosen.stdout, re.M)
    cpu = _entry(tmp_path, "dataset=phantom", "--cfg", "job", gpu=None)
    assert "no NVIDIA GPU visible" in cpu.stderr
    assert re.search(r"^backend:\n  name: tensorflow$", cpu.stdout, re.M)
    bad = _entry(tmp_path, "scale=huge", gpu=None)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error:")


def test_the_galaxy_tool_names_the_image_this_recipe_builds():
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    image = f"ghcr.io/usecase-bench/usecase-bench:{version}"
    macros = (REPO / "galaxy" / "macros.xml").read_text()
    assert f'<token name="@TOOL_VERSION@">{version}</token>' in macros
    assert "ghcr.io/usecase-bench/usecase-bench:@TOOL_VERSION@" in macros
    assert f"docker build -f container/Dockerfile -t {image} ." in DOCKERFILE.read_text()
