"""BatchNormalization that trains through TensorFlow's fused kernel, as the paper's tf-keras did.

Keras 3 normalises in separate ops on every backend (``tf.nn.moments``, then scale and shift,
and their gradients op by op). tf-keras 2, the paper's framework, called the fused kernel
(``FusedBatchNormV3``, oneDNN on CPU) for 4-D inputs. At ci width (n=8, batch 16, 128x128)
that difference is the whole gap between the port's training step and the paper's code's
(docs/performance.md, "The fit loop"). ``usecase.train.batchnorm=fused`` swaps the class of
every BatchNormalization layer of the port for this one before training on TensorFlow: same
variables, same inference path (moving statistics, Keras's own ops), and in training the fused
kernel. The moving variance is updated with the biased batch variance, as Keras 3 does (the
kernel returns the Bessel-corrected one, which is scaled back). The arithmetic is the same;
the order of the sums is not, so a fused run is not bit-identical to a Keras one.
"""

from __future__ import annotations

import functools

from usecases.errors import ConfigError

BATCHNORMS = ("keras", "fused")


def check_batchnorm(kind: object, *, backend: str) -> None:
    """ConfigError unless ``usecase.train.batchnorm`` is "keras", or "fused" on TensorFlow."""
    if kind not in BATCHNORMS or (kind == "fused" and backend != "tensorflow"):
        raise ConfigError(
            f"usecase.train.batchnorm={kind}: use keras, or fused with backend=tensorflow "
            "(the fused kernel is TensorFlow's)."
        )


@functools.cache
def fused_class():
    """The FusedBatchNormalization layer class (made on first use: Keras loads then)."""
    import keras

    class FusedBatchNormalization(keras.layers.BatchNormalization):
        """keras.layers.BatchNormalization whose training call on TensorFlow, for 4-D
        channels-last input, is one ``FusedBatchNormV3``; else Keras's own call."""

        call = _fused_call

    return FusedBatchNormalization


def _fused_call(self, inputs, training=None, mask=None):
    import keras

    axis = self.axis % len(inputs.shape)
    if not (training and self.trainable) or mask is not None or self.renorm or (
        keras.backend.backend() != "tensorflow" or len(inputs.shape) != 4 or axis != 3
    ):  # fmt: skip
        return keras.layers.BatchNormalization.call(self, inputs, training=training, mask=mask)
    import tensorflow as tf

    outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        inputs,
        tf.cast(self.gamma, "float32") if self.scale else tf.ones_like(self.moving_mean),
        tf.cast(self.beta, "float32") if self.center else tf.zeros_like(self.moving_mean),
        epsilon=self.epsilon,
        data_format="NHWC",
        is_training=True,
    )
    count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], "float32")
    variance = variance * (count - 1.0) / count  # the kernel's batch variance is unbiased
    m = self.momentum
    self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
    self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
    return tf.cast(outputs, self.compute_dtype)


def use_batchnorm(model, kind: str) -> int:
    """Make every BatchNormalization layer of the Keras ``model`` train the ``kind`` way
    ("keras" or "fused"); returns how many layers it changed. ValueError for another kind."""
    import keras

    if kind not in BATCHNORMS:
        raise ValueError(f"batchnorm {kind!r} is not one of {BATCHNORMS}")
    target = fused_class() if kind == "fused" else keras.layers.BatchNormalization
    changed = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and type(layer) is not target:
            layer.__class__ = target
            changed += 1
    return changed
