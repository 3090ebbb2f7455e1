"""Serve an ONNX model with ONNX Runtime over TensorFlow Serving's REST API.

A thin wrapper kept so that the documented command keeps working; the
server is `keras_cd.serving`, installed with the package as
`keras-cd-serve` (`pip install 'keras-cd[serve]'`), and takes the same flags:

    python export/serve.py model.onnx --name cd_resnet --host 127.0.0.1 --port 8501
    keras-cd-serve model.onnx --name cd_resnet --host 127.0.0.1 --port 8501
    curl http://127.0.0.1:8501/v1/models/cd_resnet
    curl -d '{"instances": [[[[0.0, 0.0, 0.0], ...]]]}' \\
        http://127.0.0.1:8501/v1/models/cd_resnet:predict

See `keras-cd-serve --help` for the batching, version and fault flags.
"""

import importlib.util
import os
import sys

if importlib.util.find_spec("keras_cd") is None:  # a source checkout, not installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cd.serving import main  # noqa: E402

if __name__ == "__main__":
    main()
