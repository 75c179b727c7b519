"""Floating-point operations of the TV-UNet, counted from the built Keras model.

A multiply-add counts as 2 FLOPs. Only convolutions (incl. transposed) are counted; they are
more than 99 % of the work. One training step costs about 3x the forward pass (forward,
gradient w.r.t. activations, gradient w.r.t. weights).
"""

from __future__ import annotations

import keras

TRAIN_FACTOR = 3


def forward_flops_per_image(model: keras.Model) -> int:
    """FLOPs of one forward pass of one image through every Conv2D / Conv2DTranspose."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            # every input pixel scatters a k x k x C_out patch
            _, h, w, c_in = layer.input.shape
            kh, kw = layer.kernel_size
            total += 2 * h * w * kh * kw * c_in * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, _ = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2 * h * w * kh * kw * c_in * layer.filters
    return int(total)
