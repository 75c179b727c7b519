"""covid_ct's ONNX steps: export (tf2onnx) and parity with Keras, int8 quantization, runtime.

``runtime`` is the onnxruntime/tf2onnx glue (sessions, export, quantize calls); ``export``
makes the ``onnx_parity`` check (in a fresh TensorFlow process for a JAX-trained model);
``quantize`` the ``onnx_int8_dice`` check.
"""
