"""Rewrite strided ConvTranspose nodes of an ONNX model as Conv + DepthToSpace (sub-pixel form).

onnxruntime's CPU provider has int8 kernels for Conv (QLinearConv) but none for ConvTranspose:
after static quantization the TV-UNet's four up-sampling layers still run in float32 between a
DequantizeLinear and a QuantizeLinear, with layout transposes around them, and take about 40 %
of the int8 model's time at paper width. A transposed convolution of stride s whose output is
s times its input (Keras's ``padding="same"``) is exactly s*s ordinary convolutions of the low-
resolution input, one per output phase, interleaved (Shi et al. 2016, "sub-pixel convolution").
Here the s*s phases are one Conv with s*s*C_out output channels (taps a phase does not use are
zero) followed by DepthToSpace(blocksize s, mode DCR), which onnxruntime quantizes like every
other convolution. In float32 the rewritten model computes the same sums in another order
(max |dp| ~1e-7 on the TV-UNet); for a 3x3 kernel and stride 2 the Conv has 16 taps per
input pixel against the transposed convolution's 9 (1.78x its multiply-adds).
"""

from __future__ import annotations

import numpy as np

DOMAIN = ("", "ai.onnx")


def subpixel_convtranspose(model):
    """Replace every 2-D ConvTranspose of ``model`` (an onnx ModelProto, NCHW) by Conv +
    DepthToSpace, in place; returns ``(model, n_rewritten)``.

    Rewritten: group 1, dilation 1, equal strides s >= 2 on both axes, no output_padding or
    output_shape, explicit pads with pad_begin + pad_end = kernel - s (output = s x input),
    weights (C_in, C_out, kH, kW) and an optional bias as initializers. Any other ConvTranspose
    raises ValueError naming the node.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    nodes, rewritten = [], 0
    for node in graph.node:
        if node.op_type != "ConvTranspose" or node.domain not in DOMAIN:
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        stride, pads = _check(node, attrs, inits)
        weight = numpy_helper.to_array(inits[node.input[1]])
        kernel, begin = _phase_kernel(weight, stride=stride, pads=pads)
        base = f"{node.name or node.output[0]}/subpixel"
        graph.initializer.append(numpy_helper.from_array(kernel, f"{base}/W"))
        inputs = [node.input[0], f"{base}/W"]
        if len(node.input) > 2 and node.input[2]:
            bias = numpy_helper.to_array(inits[node.input[2]])
            graph.initializer.append(numpy_helper.from_array(np.tile(bias, stride**2), f"{base}/B"))
            inputs.append(f"{base}/B")
        size = kernel.shape[2:]
        conv_pads = [begin[0], begin[1], size[0] - 1 - begin[0], size[1] - 1 - begin[1]]
        phases = f"{base}/phases"
        nodes.append(
            helper.make_node("Conv", inputs, [phases], name=f"{base}/conv",
                             kernel_shape=list(size), pads=conv_pads, strides=[1, 1])
        )  # fmt: skip
        nodes.append(
            helper.make_node("DepthToSpace", [phases], list(node.output), name=f"{base}/d2s",
                             blocksize=stride, mode="DCR")
        )  # fmt: skip
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for n in graph.node for name in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model, rewritten


def _check(node, attrs: dict, inits: dict) -> tuple[int, list[int]]:
    """(stride, pads) of a ConvTranspose this module can rewrite; ValueError otherwise."""
    kernel = list(attrs.get("kernel_shape", []))
    strides = list(attrs.get("strides", [1, 1]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    problems = []
    if node.input[1] not in inits or len(kernel) != 2:
        problems.append("weights must be a 2-D initializer")
    if attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1, 1])):
        problems.append("group and dilations must be 1")
    if len(set(strides)) != 1 or strides[0] < 2:
        problems.append(f"strides {strides} must be equal and >= 2")
    if attrs.get("output_padding") or attrs.get("output_shape"):
        problems.append("output_padding/output_shape are not supported")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        problems.append("auto_pad must be NOTSET (explicit pads)")
    if not problems and any(pads[i] + pads[i + 2] != kernel[i] - strides[0] for i in (0, 1)):
        problems.append(f"pads {pads} do not give an output of stride x input")
    if problems:
        raise ValueError(f"ConvTranspose {node.name!r} cannot be rewritten: {'; '.join(problems)}")
    return strides[0], pads


def _phase_kernel(weight: np.ndarray, *, stride: int, pads: list[int]):
    """The Conv kernel (s*s*C_out, C_in, kH', kW') of all output phases, DCR channel order, and
    the Conv's leading pads (top, left).

    Output row p = s*m + a of the transposed convolution sums input rows i with kernel row
    k = p + pad_begin - s*i, i.e. input offset o = i - m = (a + pad_begin - k) / s; a phase's
    kernel holds those taps at offset o, every other tap is zero.
    """
    c_in, c_out, kh, kw = weight.shape
    offsets = []  # per axis: {phase: [(offset, kernel index)]}
    for axis, k in ((0, kh), (1, kw)):
        begin = pads[axis]
        taps = {
            a: [((a + begin - j) // stride, j) for j in range(k) if (a + begin - j) % stride == 0]
            for a in range(stride)
        }
        offsets.append(taps)
    lows = [min(o for taps in ax.values() for o, _ in taps) for ax in offsets]
    highs = [max(o for taps in ax.values() for o, _ in taps) for ax in offsets]
    size = (highs[0] - lows[0] + 1, highs[1] - lows[1] + 1)
    kernel = np.zeros((stride * stride * c_out, c_in, *size), dtype=weight.dtype)
    for a, rows in offsets[0].items():
        for b, cols in offsets[1].items():
            first = (a * stride + b) * c_out
            for oh, jh in rows:
                for ow, jw in cols:
                    kernel[first : first + c_out, :, oh - lows[0], ow - lows[1]] = weight[
                        :, :, jh, jw
                    ].T
    return kernel, (-lows[0], -lows[1])
