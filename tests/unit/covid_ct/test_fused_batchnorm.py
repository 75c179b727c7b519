"""usecase.train.batchnorm=fused: the fused kernel computes Keras's BatchNormalization (outputs,
gradients, moving statistics) and changes nothing at inference; bad settings are refused."""

from __future__ import annotations

import numpy as np
import pytest

from usecases.covid_ct.fused_batchnorm import check_batchnorm, use_batchnorm
from usecases.errors import ConfigError


def _pair(keras, rng):
    """Two BatchNormalization layers with the same (non-trivial) weights; the second fused."""
    x = rng.standard_normal((4, 8, 8, 3)).astype(np.float32) * 3 + 1
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.BatchNormalization()])
    twin = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.BatchNormalization()])
    model.layers[0].set_weights([rng.random(3).astype(np.float32) + 0.5 for _ in range(4)])
    twin.set_weights(model.get_weights())
    assert use_batchnorm(twin, "fused") == 1 and use_batchnorm(twin, "fused") == 0
    return x, model, twin


def test_fused_training_matches_keras_outputs_gradients_and_moving_statistics():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the fused kernel is TensorFlow's; this run is " + keras.backend.backend())
    import tensorflow as tf

    x, model, twin = _pair(keras, np.random.default_rng(0))
    initial = model.layers[0].get_weights()
    results = []
    for m in (model, twin):
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = m(xt, training=True)
            loss = tf.reduce_sum(y * y * tf.range(3, dtype=tf.float32))
        grads = tape.gradient(loss, [xt, *m.trainable_variables])
        results.append((y.numpy(), [g.numpy() for g in grads], m.layers[0].get_weights()))
    (y0, g0, w0), (y1, g1, w1) = results
    assert type(twin.layers[0]).__name__ == "FusedBatchNormalization"
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    for a, b in zip(w1, w0, strict=True):  # gamma, beta, moving mean, moving (biased) variance
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert not np.allclose(w0[2], initial[2]) and not np.allclose(w0[3], initial[3])  # updated
    np.testing.assert_array_equal(twin(x, training=False), model(x, training=False))


def test_use_batchnorm_swaps_back_and_refuses_an_unknown_kind():
    keras = pytest.importorskip("keras")
    _, _, twin = _pair(keras, np.random.default_rng(1))
    assert use_batchnorm(twin, "keras") == 1
    assert type(twin.layers[0]) is keras.layers.BatchNormalization
    with pytest.raises(ValueError, match="batchnorm 'cudnn' is not one of"):
        use_batchnorm(twin, "cudnn")


@pytest.mark.parametrize(
    ("kind", "backend"), [("fused", "jax"), ("onednn", "tensorflow"), (1, "tensorflow")]
)
def test_a_batchnorm_setting_that_cannot_run_is_one_config_error(kind, backend):
    with pytest.raises(ConfigError, match=f"usecase.train.batchnorm={kind}: use keras, or fused"):
        check_batchnorm(kind, backend=backend)
    check_batchnorm("keras", backend=backend)
    check_batchnorm("fused", backend="tensorflow")
