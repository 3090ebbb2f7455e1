"""Model versions on disk: one `.onnx` file, or a base path of numbered folders.

How a retrained keras_cd network (a new ONNX export) replaces the served
one without a restart. TensorFlow Serving's layout: `BASE/1/model.onnx`,
`BASE/2/model.onnx`, ... The newest complete version is served (TF
Serving's default version policy, `latest`). A version is complete when its
folder, named by digits only, holds `model.onnx` (or exactly one visible
`*.onnx` file) that ONNX Runtime loads. `scan()` looks again; the server
calls it every `--poll-seconds`, so a new version appears without a
restart. Write a new version atomically: build the folder under another
name and rename it into place, or export with
`keras_cd.export.to_onnx(model, "BASE/3/model.onnx")`, which writes the
file beside its final name and renames it. A version that fails to load is
reported and skipped (the current one stays) until its file changes.
"""

from __future__ import annotations

import logging
import os
import threading

from keras_cd.serving.model import OnnxModel

logger = logging.getLogger("keras_cd.serving")


class ModelRepository:
    """The versions of one model and the one being served.

    Args:
        path: str or path-like, an `.onnx` file (served as version 1) or a base folder of
            numbered version folders.
        name: str, the model name in the URL.
        seed: int or None, seed of the noise drawn for Monte-Carlo models
            (each version draws from its own stream). Defaults to `None`.
        intra_op_threads: int, ONNX Runtime's threads per call (`0`: one per
            core). Defaults to `0`.

    Attributes:
        current: the served `OnnxModel`, or `None` before a version loads.
            A request keeps the model it resolved, so requests in flight
            finish on the version they started on when a newer one takes over.
        states: dict, version -> `"AVAILABLE"` (served), `"END"` (replaced
            by a newer one) or `"LOADING"`.

    Raises:
        ValueError: if `path` is neither an `.onnx` file nor a folder.

    Example:
    ```python
    repository = keras_cd.serving.ModelRepository("models/cd_resnet", "cd_resnet")
    repository.scan()  # loads models/cd_resnet/<newest>/model.onnx
    repository.current.version, repository.states  # e.g. 2, {2: "AVAILABLE"}
    ```
    """

    def __init__(
        self,
        path: str | os.PathLike,
        name: str,
        seed: int | None = None,
        intra_op_threads: int = 0,
    ) -> None:
        self.path, self.name = os.fspath(path), name
        self.seed, self.intra_op_threads = seed, intra_op_threads
        if os.path.isfile(self.path):
            self.single_file = True
        elif os.path.isdir(self.path):
            self.single_file = False
        else:
            raise ValueError(
                f"Invalid value for `model`: expected an .onnx file or a base folder of "
                f"numbered versions (BASE/1/model.onnx). Received: {self.path!r}, which does "
                "not exist."
            )
        self.current: OnnxModel | None = None
        self.states: dict[int, str] = {}
        self._failed = {}  # version -> (mtime_ns, size) of the file that failed to load
        self._lock = threading.Lock()

    def _model_file(self, folder):
        preferred = os.path.join(folder, "model.onnx")
        if os.path.isfile(preferred):
            return preferred
        try:
            names = [n for n in os.listdir(folder) if n.endswith(".onnx") and not n.startswith(".")]
        except OSError:
            return None
        return os.path.join(folder, names[0]) if len(names) == 1 else None

    def versions(self) -> list[tuple[int, str]]:
        """Complete-looking versions on disk, newest first.

        Returns:
            list of `(version, file)`: int and the path of its `.onnx` file
            (not loaded yet).
        """
        if self.single_file:
            return [(1, self.path)]
        try:
            names = os.listdir(self.path)
        except OSError as error:
            logger.warning("cannot list %s: %s", self.path, error)
            return []
        found = []
        for name in names:
            if name.isdigit() and os.path.isdir(os.path.join(self.path, name)):
                model_file = self._model_file(os.path.join(self.path, name))
                if model_file is not None:
                    found.append((int(name), model_file))
        return sorted(found, reverse=True)

    def scan(self) -> bool:
        """Serves the newest version that loads.

        Blocking (loads models): the server runs it in a worker thread. A
        version whose file failed to load is not tried again until the file
        changes (size or modification time).

        Returns:
            bool, True when the served version changed.

        Raises:
            ValueError: for a single `.onnx` file that fails to load.
        """
        with self._lock:
            for version, model_file in self.versions():
                if self.current is not None and version == self.current.version:
                    return False
                try:
                    stat = os.stat(model_file)
                except OSError:
                    continue
                signature = (stat.st_mtime_ns, stat.st_size)
                if self._failed.get(version) == signature:
                    continue
                self.states[version] = "LOADING"
                try:
                    model = OnnxModel(
                        model_file,
                        self.name,
                        version=version,
                        seed=self.seed,
                        intra_op_threads=self.intra_op_threads,
                    )
                except ValueError as error:
                    self._failed[version] = signature
                    del self.states[version]
                    if self.single_file:
                        raise
                    logger.warning(
                        "version %d not loaded, still serving the last one: %s", version, error
                    )
                    continue
                previous, self.current = self.current, model
                self.states[version] = "AVAILABLE"
                if previous is not None:
                    self.states[previous.version] = "END"
                logger.info("serving %s version %d from %s", self.name, version, model_file)
                return True
            return False

    def resolve(self, version: str | None = None) -> OnnxModel | None:
        """The model answering a request for `version`.

        Args:
            version: str or None, the version in the request's path. Defaults
                to `None`, the served one.

        Returns:
            The served `OnnxModel` when it is that version, else None.
        """
        current = self.current
        if current is None or (version is not None and str(current.version) != version):
            return None
        return current
