"""The Galaxy tool (galaxy/usecase_bench.xml): planemo lint, and each of its <test>s run as
Galaxy would run it.

``planemo test`` needs a Galaxy checkout, which these machines cannot download. Instead each
<test> is parsed by galaxy-tool-util, its Cheetah command is rendered with Galaxy's own
``fill_template`` from the test's inputs (defaults elsewhere, conditionals resolved, output
filters evaluated), its lines joined into one as Galaxy does, run by bash in a fresh job
folder with run.py's checkout as ``USECASE_BENCH_HOME``, and every output is checked with
galaxy-tool-util's ``verify_assertions`` against that test's own assertions. The real
``planemo test`` is the next check on a machine with Galaxy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, needs_module

TOOL = REPO / "galaxy" / "usecase_bench.xml"
BIN = Path(sys.executable).parent


class Value:
    """An input as the command sees it: ``str`` is the text Galaxy writes, truth its value."""

    def __init__(self, text: str, value: object) -> None:
        self.text, self.value = text, value

    def __str__(self) -> str:
        return self.text

    def __bool__(self) -> bool:
        return bool(self.value)

    def __eq__(self, other: object) -> bool:
        return self.text == str(other)

    def __hash__(self) -> int:
        return hash(self.text)


def _param(element, given: dict[str, str], name: str, test_data: Path) -> tuple[Value, object]:
    """(Cheetah value, raw value for filters) of one <param>, from the test or its default."""
    kind = element.get("type")
    text = given.get(name)
    if kind == "select":
        options = element.findall("option")
        default = next((o for o in options if o.get("selected") == "true"), options[0])
        value = text if text is not None else default.get("value")
        return Value(value, value), value
    if kind == "boolean":
        on = (text if text is not None else element.get("checked", "false")).lower() == "true"
        return Value(element.get("truevalue" if on else "falsevalue"), on), on
    if kind == "integer":
        raw = text if text is not None else element.get("value")
        number = int(raw) if raw not in (None, "") else None
        return Value("" if number is None else str(number), number), number
    if kind == "data":
        if text is None:
            return Value("None", None), None
        path = str(test_data / text)
        return Value(path, path), path
    raise AssertionError(f"the harness does not know <param type={kind!r}> ({name})")


def _inputs(parent, given: dict[str, str], test_data: Path, prefix: str = ""):
    """(Cheetah namespace, raw values) of the params and conditionals under ``parent``."""
    names, raw = {}, {}
    for child in parent:
        name = child.get("name")
        if child.tag == "param":
            names[name], raw[name] = _param(child, given, prefix + name, test_data)
        elif child.tag == "conditional":
            test = child.find("param")
            inner = f"{prefix}{name}|"
            value, value_raw = _param(test, given, inner + test.get("name"), test_data)
            (when,) = [w for w in child.findall("when") if w.get("value") == str(value)]
            sub, sub_raw = _inputs(when, given, test_data, inner)
            names[name] = {test.get("name"): value, **sub}
            raw[name] = {test.get("name"): value_raw, **sub_raw}
    return names, raw


def _job(tool_source, case: dict, job: Path) -> tuple[subprocess.CompletedProcess, dict, dict]:
    """Render and run one <test>; (process, data outputs {name: path}, collections {name:
    {element: path}})."""
    from galaxy.util.template import fill_template

    root = tool_source.root
    given = {i["name"]: i["value"] for i in case["inputs"]}
    names, raw = _inputs(root.find("inputs"), given, TOOL.parent / "test-data")
    outputs, collections = {}, {}
    for output in root.find("outputs"):
        rule = output.find("filter")
        if rule is not None and not eval(rule.text.strip(), {}, dict(raw)):  # Galaxy's rule
            continue
        if output.tag == "data":
            outputs[output.get("name")] = job / "outputs" / f"{output.get('name')}.dat"
            names[output.get("name")] = Value(str(outputs[output.get("name")]), True)
        else:
            collections[output.get("name")] = output.find("discover_datasets")
    (job / "outputs").mkdir(parents=True)
    rendered = fill_template(tool_source.parse_command(), context=names)
    # Galaxy strips each line and joins them with spaces (tools/evaluation.py): one command line
    command = " ".join(line.strip() for line in rendered.split("\n")).strip()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "USECASE_BENCH_HOME": str(REPO),
        "USECASE_BENCH_CACHE": str(job / "cache"),
    }
    proc = subprocess.run(
        ["bash", "-c", command], cwd=job, env=env, capture_output=True, text=True, check=False
    )
    found = {}
    for name, discover in collections.items():
        pattern = re.compile(discover.get("pattern"))
        folder = job / discover.get("directory")
        files = sorted(folder.iterdir()) if folder.is_dir() else []
        found[name] = {m.group("designation"): f for f in files if (m := pattern.fullmatch(f.name))}
    return proc, outputs, found


@pytest.fixture(scope="module")
def tool_source():
    from galaxy.tool_util.parser import get_tool_source

    return get_tool_source(str(TOOL))


def test_planemo_lint_passes_offline():
    proc = subprocess.run(
        [str(BIN / "planemo"), "lint", "--fail_level", "warn", str(TOOL)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "CitationsFound" in proc.stdout and "TestsNoValid" in proc.stdout


def _cases(tool_source) -> list[dict]:
    return tool_source.parse_tests_to_dict()["tests"]


@pytest.mark.parametrize("index", [0, 1], ids=["covid_ct-phantom", "colabfold_spike-random"])
def test_each_tool_test_runs_as_galaxy_would_and_meets_its_assertions(tool_source, index, tmp_path):
    from galaxy.tool_util.verify.asserts import verify_assertions

    cases = _cases(tool_source)
    assert len(cases) == 2  # a new <test> needs its own id above
    case = cases[index]
    if any(i["name"] == "uc|usecase" and i["value"] == "colabfold_spike" for i in case["inputs"]):
        needs_module("colabfold", "ColabFold is not installed (install the colabfold extra)")
    proc, outputs, collections = _job(tool_source, case, tmp_path / "job")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert len(outputs) + len(collections) == int(case["expect_num_outputs"])
    for output in case["outputs"]:
        data = outputs[output["name"]].read_bytes()
        verify_assertions(data, output["attributes"]["assert_list"])
    for expected in case["output_collections"]:
        elements = collections[expected["name"]]
        assert len(elements) == int(expected["element_count"]), sorted(elements)
        for element, (_, attributes) in expected["element_tests"].items():
            verify_assertions(elements[element].read_bytes(), attributes["assert_list"])


def test_a_zip_without_the_dataset_tree_is_one_line_and_a_failed_job(tool_source, tmp_path):
    import zipfile

    test_data = tmp_path / "job" / "in"
    test_data.mkdir(parents=True)
    with zipfile.ZipFile(test_data / "empty.zip", "w") as archive:
        archive.writestr("README.txt", "no slices here")
    case = {
        "inputs": [
            {"name": "uc|usecase", "value": "covid_ct"},
            {"name": "uc|data|source", "value": "covid_semiseg"},
            {"name": "uc|data|archive", "value": str(test_data / "empty.zip")},
            {"name": "device", "value": "cpu"},
        ]
    }
    proc, _, _ = _job(tool_source, case, tmp_path / "job")
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == ["error: the zip holds no Dataset/ folder (the COVID-SemiSeg tree of Inf-Net)"]
