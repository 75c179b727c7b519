"""int8 recipes: the sub-pixel rewrite of ConvTranspose is exact, and each recipe quantizes
what it says (small ONNX graphs built here, run by onnxruntime; no TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import needs_module
from usecases.covid_ct.onnx.int8 import DEFAULT, PREVIOUS, Int8Recipe, quantize_int8
from usecases.covid_ct.onnx.subpixel import subpixel_convtranspose

onnx = needs_module("onnx", "onnx is not installed here")
ort = needs_module("onnxruntime", "onnxruntime is not installed here")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _run(model, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _convtranspose(k: int, s: int, pads: list[int], *, bias: bool, rng) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(rng.standard_normal((5, 7, k, k)).astype(np.float32), "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(7).astype(np.float32), "b"))
        inputs.append("b")
    node = helper.make_node(
        "ConvTranspose", inputs, ["y"], name="up", strides=[s, s], kernel_shape=[k, k], pads=pads
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, 6, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 7, 6 * s, 9 * s])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    ("k", "s", "pads", "bias"),
    [
        (3, 2, [0, 0, 1, 1], True),  # Keras Conv2DTranspose(3, strides=2, "same") via tf2onnx
        (3, 2, [0, 0, 1, 1], False),
        (3, 2, [1, 1, 0, 0], True),
        (4, 2, [1, 1, 1, 1], True),
        (2, 2, [0, 0, 0, 0], True),
        (5, 3, [1, 1, 1, 1], True),
        (3, 2, [0, 1, 1, 0], True),  # other pads on the two axes
    ],
)
def test_the_subpixel_form_computes_the_transposed_convolution(k, s, pads, bias):
    rng = np.random.default_rng(k * 10 + s)
    model = _convtranspose(k, s, pads, bias=bias, rng=rng)
    x = rng.standard_normal((2, 5, 6, 9)).astype(np.float32)
    expected = _run(model, x)
    rewritten, n = subpixel_convtranspose(model)
    onnx.checker.check_model(rewritten, full_check=True)
    assert n == 1
    assert [node.op_type for node in rewritten.graph.node] == ["Conv", "DepthToSpace"]
    got = _run(rewritten, x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"group": 5}, "group and dilations must be 1"),
        ({"output_padding": [1, 1]}, "output_padding/output_shape"),
        ({"pads": [0, 0, 0, 0]}, "do not give an output of stride x input"),
        ({"strides": [2, 1]}, "must be equal and >= 2"),
    ],
)
def test_a_convtranspose_it_cannot_rewrite_is_refused_by_name(change, message):
    model = _convtranspose(3, 2, [0, 0, 1, 1], bias=False, rng=np.random.default_rng(0))
    node = model.graph.node[0]
    for key, value in change.items():
        for attr in [a for a in node.attribute if a.name == key]:
            node.attribute.remove(attr)
        node.attribute.append(helper.make_attribute(key, value))
    with pytest.raises(ValueError, match=f"ConvTranspose 'up' cannot be rewritten: .*{message}"):
        subpixel_convtranspose(model)


def _tiny_unet(tmp_path, rng):
    """Conv 3x3 -> Relu -> MaxPool -> Conv -> Relu -> ConvTranspose (stride 2) -> Concat ->
    Conv 3x3 -> Relu -> Conv 1x1 -> Sigmoid, NCHW, as tf2onnx writes the TV-UNet."""

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.3

    inits = {"w1": w(8, 1, 3, 3), "b1": w(8), "w2": w(16, 8, 3, 3), "b2": w(16),
             "wt": w(16, 8, 3, 3), "bt": w(8), "w3": w(8, 16, 3, 3), "b3": w(8),
             "wh": w(2, 8, 1, 1), "bh": w(2)}  # fmt: skip
    pads = {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", **pads),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", **pads),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("ConvTranspose", ["r2", "wt", "bt"], ["u"], name="up", strides=[2, 2],
                         kernel_shape=[3, 3], pads=[0, 0, 1, 1]),
        helper.make_node("Concat", ["u", "r1"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "w3", "b3"], ["c3"], name="conv3", **pads),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("Conv", ["r3", "wh", "bh"], ["logits"], name="head", kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["logits"], ["p"], name="sigmoid"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "tiny_unet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 16, 16])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 2, 16, 16])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _quantized_ops(path) -> dict[str, list[str]]:
    """op type -> names of its nodes that run in int8: a (transposed) convolution whose weights
    come through DequantizeLinear, any other node whose output goes into a QuantizeLinear."""
    model = onnx.load(path)
    dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    q_in = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    out: dict[str, list[str]] = {}
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        out.setdefault(n.op_type, [])
        conv = n.op_type in ("Conv", "ConvTranspose")
        if (conv and n.input[1] in dq) or (not conv and set(n.output) & q_in):
            out[n.op_type].append(n.name)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    rng = np.random.default_rng(3)
    path = _tiny_unet(tmp_path_factory.mktemp("tiny"), rng)
    calibration = rng.random((16, 1, 16, 16)).astype(np.float32)
    test = rng.random((4, 1, 16, 16)).astype(np.float32)
    return path, calibration, test, _run(onnx.load(path), test)


def test_the_default_recipe_quantizes_the_upsampling_the_previous_one_leaves_it_float(
    tiny, tmp_path
):
    src, calibration, x, expected = tiny
    info = quantize_int8(src, tmp_path / "new.onnx", calibration=calibration, recipe=DEFAULT)
    old = quantize_int8(src, tmp_path / "old.onnx", calibration=calibration, recipe=PREVIOUS)
    new_ops, old_ops = _quantized_ops(tmp_path / "new.onnx"), _quantized_ops(tmp_path / "old.onnx")
    assert "ConvTranspose" not in new_ops and "DepthToSpace" in new_ops
    assert len(new_ops["Conv"]) == 5  # conv1, conv2, the sub-pixel conv, conv3, head
    assert "ConvTranspose" in old_ops and len(old_ops["Conv"]) == 4
    assert info["upsampling"].startswith("1 ConvTranspose as sub-pixel")
    assert old["upsampling"].startswith("ConvTranspose in float32")
    assert info["recipe"]["upsampling"] == "subpixel" and info["calibration_images"] == 16
    for name in ("new.onnx", "old.onnx"):
        got = _run(onnx.load(tmp_path / name), x)
        assert np.abs(got - expected).mean() < 0.02
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.onnx", "old.onnx"]  # no leftovers


def test_float_nodes_stay_float(tiny, tmp_path):
    src, calibration, _, _ = tiny
    recipe = Int8Recipe(float_nodes=("first", "head"))
    info = quantize_int8(src, tmp_path / "q.onnx", calibration=calibration, recipe=recipe)
    ops = _quantized_ops(tmp_path / "q.onnx")
    convs = [n.name for n in onnx.load(tmp_path / "q.onnx").graph.node if n.op_type == "Conv"]
    assert len(convs) == 5 and len(ops["Conv"]) == 3  # first and head read float
    assert ops["Sigmoid"] == [] and len(info["float_nodes"]) == 3  # conv1, head, sigmoid


def test_calibration_methods_set_other_ranges(tiny, tmp_path):
    src = tiny[0]
    heavy = np.random.default_rng(5).standard_normal((32, 1, 16, 16)).astype(np.float32) ** 3
    scales = {}
    for method in ("minmax", "entropy", "percentile"):
        file = tmp_path / f"{method}.onnx"
        recipe = Int8Recipe(calibration=method, percentile=99.0)
        info = quantize_int8(src, file, calibration=heavy, recipe=recipe)
        assert info["recipe"]["calibration"] == method
        model = onnx.load(file)
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        scales[method] = [float(inits[n.input[1]]) for n in model.graph.node
                          if n.op_type == "QuantizeLinear"]  # fmt: skip
    assert len(scales["minmax"]) == len(scales["entropy"]) == len(scales["percentile"]) > 5
    assert scales["minmax"] != scales["percentile"] and scales["minmax"] != scales["entropy"]
    # a percentile below 100 clips: no range wider than MinMax's
    assert all(
        p <= m * (1 + 1e-6) for p, m in zip(scales["percentile"], scales["minmax"], strict=True)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"upsampling": "nearest"}, "upsampling 'nearest'"),
        ({"calibration": "kl"}, "calibration 'kl'"),
        ({"float_nodes": ("tail",)}, r"float_nodes \['tail'\]"),
    ],
)
def test_a_bad_recipe_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Int8Recipe(**kwargs)


def test_recipe_labels():
    assert DEFAULT.label == "subpixel+minmax" and PREVIOUS.label == "float-upsampling+minmax"
    assert Int8Recipe(calibration="percentile", float_nodes=("head",)).label == (
        "subpixel+percentile 99.999+float head"
    )
