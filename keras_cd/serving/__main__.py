"""`python -m keras_cd.serving MODEL [flags]`: the model server (see `keras_cd.serving.cli`).

The same program as the `keras-cd-serve` command: it serves an ONNX export
of a keras_cd network over TensorFlow Serving's REST API.
"""

from keras_cd.serving.cli import main

if __name__ == "__main__":
    main()
