"""The TV-UNet of Saeedizadeh et al. 2021, as in TV_UNET.py of anuprulez/COVID-CT-Segmentation.

Reads top to bottom like the paper: a 128x128x1 CT slice goes down four levels of
"two 3x3 convolutions (he_normal) -> BatchNorm -> ReLU", each followed by 2x2 max pooling
and 20 % dropout, with n, 2n, 4n and 8n filters; a 16n bottleneck; then four levels up, each
a 3x3 transposed convolution of stride 2, concatenated with the skip connection of the same
level, 20 % dropout and the same double convolution; a 1x1 convolution with 2 sigmoid channels
(background, infection) closes it. n = 64 gives the paper's model (about 34.5 M parameters).

The loss is binary cross-entropy plus 2.4e-7 times the total variation of the infection channel
(``tv_bce_loss``), exactly as ``TV_bin_loss`` in the same file.
"""

from __future__ import annotations

import keras
from keras import layers, ops

TV_WEIGHT = 2.4e-7


def conv_block(x, n_filters: int):
    """Two times Conv 3x3 (he_normal, same padding) -> BatchNorm -> ReLU."""
    for _ in range(2):
        x = layers.Conv2D(n_filters, 3, padding="same", kernel_initializer="he_normal")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    return x


def build_tv_unet(*, n_filters: int = 64, dropout: float = 0.2, size: int = 128) -> keras.Model:
    """TV-UNet for (size, size, 1) slices -> (size, size, 2) sigmoid probabilities."""
    inputs = keras.Input((size, size, 1), name="ct_slice")

    # Contracting path: n, 2n, 4n, 8n filters, each level pooled and dropped out.
    skips = []
    x = inputs
    for level in range(4):
        x = conv_block(x, n_filters * 2**level)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout)(x)

    # Bottleneck: 16n filters.
    x = conv_block(x, n_filters * 16)

    # Expansive path: transposed convolution, skip concatenation, dropout, double conv.
    for level in reversed(range(4)):
        x = layers.Conv2DTranspose(n_filters * 2**level, 3, strides=2, padding="same")(x)
        x = layers.Concatenate()([x, skips[level]])
        x = layers.Dropout(dropout)(x)
        x = conv_block(x, n_filters * 2**level)

    # The output layer computes in float32 also under a mixed-precision policy.
    outputs = layers.Conv2D(
        2, 1, activation="sigmoid", dtype="float32", name="infection_probability"
    )(x)
    return keras.Model(inputs, outputs, name=f"tv_unet_n{n_filters}")


def total_variation(y_pred):
    """Anisotropic TV of the infection channel of (N, H, W, 2) probabilities.

    TV = mean |p[:, i+1, j] - p[:, i, j]| + mean |p[:, i, j+1] - p[:, i, j]|, the means taken
    over all batch elements and pixel pairs (TV_bin_loss in TV_UNET.py, anuprulez/
    COVID-CT-Segmentation; Saeedizadeh et al. 2021, doi 10.1016/j.cmpbup.2021.100007).
    """
    p = y_pred[..., 1]
    return ops.mean(ops.abs(p[:, 1:, :] - p[:, :-1, :])) + ops.mean(
        ops.abs(p[:, :, 1:] - p[:, :, :-1])
    )


def tv_bce_loss(y_true, y_pred):
    """Binary cross-entropy over all pixels and both channels + 2.4e-7 x TV (scalar)."""
    y_true = ops.cast(ops.reshape(y_true, (-1,)), y_pred.dtype)
    y_flat = ops.reshape(y_pred, (-1,))
    bce = keras.losses.binary_crossentropy(y_true, y_flat)
    return bce + TV_WEIGHT * ops.cast(total_variation(y_pred), bce.dtype)
