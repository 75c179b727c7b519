"""covid_ct's ONNX steps: export (tf2onnx) and parity with Keras, int8 quantization, runtime.

``runtime`` is the onnxruntime/tf2onnx glue (sessions, export); ``export`` makes the
``onnx_parity`` check (in a fresh TensorFlow process for a JAX-trained model); ``int8`` holds
the quantization recipes (``subpixel`` rewrites ConvTranspose so it quantizes too);
``quantize`` makes the ``onnx_int8_dice`` check.
"""
