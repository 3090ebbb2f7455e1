"""Features files from a Keras backbone: over image arrays, an image folder or a tfds dataset.

The paper's few-shot experiment (Wang, Bao & Shi, 2024) runs COIN on the
features a frozen backbone computes; these functions compute them with any
Keras classifier (e.g. a `keras_cd.models.cd_resnet`) and return a
`keras_cd.few_shot.FeatureSet`, ready for `save_features` and
`sample_tasks`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from keras_cd import _validation
from keras_cd.few_shot.features import FeatureSet

if TYPE_CHECKING:
    import keras
    from numpy.typing import ArrayLike

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def feature_extractor(model: keras.Model, layer: str | None = None) -> keras.Model:
    """`model` cut at its feature layer: `layer`'s output, else the input of the last layer.

    For a classifier ending in a Dense layer (e.g. `keras_cd.models.cd_resnet`)
    the default is the pooled feature vector the classifier reads.

    Args:
        model: a functional or sequential Keras model.
        layer: str or None, the name of the layer whose output is the
            feature. Defaults to `None`, the input of the last layer.

    Returns:
        A `keras.Model` from the model's inputs to the features.

    Example:
    >>> import keras, keras_cd
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(3)])
    >>> keras_cd.few_shot.feature_extractor(model).output_shape
    (None, 8)
    """
    import keras

    if layer is not None:
        output = model.get_layer(layer).output
    else:
        output = model.layers[-1].input
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, output, name=f"{model.name}_features")


def _splits_of(labels, split):
    if isinstance(split, str):
        return np.full(len(labels), split)
    if isinstance(split, dict):
        missing = sorted({int(c) for c in np.unique(labels)} - {int(c) for c in split})
        if missing:
            _validation.invalid(
                "split", "a split for every class", f"no entry for classes {missing}", ""
            )
        return np.array([split[int(label)] for label in labels])
    return np.asarray(split)


def extract_features(
    model: keras.Model,
    images: np.ndarray | Iterable[ArrayLike],
    labels: ArrayLike,
    split: str | dict[int, str] | ArrayLike,
    layer: str | None = None,
    batch_size: int = 256,
) -> FeatureSet:
    """The features a backbone computes for every image, as a `FeatureSet`.

    Args:
        model: a Keras model from images to class scores (or to features).
        images: (M, ...) array, or an iterable of image batches (arrays)
            whose rows, in order, are the M images.
        labels: (M,) int class of each image.
        split: (M,) split names, one name for all, or a dict
            {class: "base" | "val" | "novel"}.
        layer: str or None, the layer whose output is the feature (see
            `feature_extractor`). Defaults to `None`.
        batch_size: int, images per forward pass (of an array of images).
            Defaults to `256`.

    Returns:
        A `FeatureSet` (features flattened to (M, F)); save it with
        `keras_cd.few_shot.save_features`.

    Raises:
        ValueError: if a dict `split` has no entry for some class, or the
            features do not make a valid `FeatureSet`.

    Example:
    >>> import numpy as np, keras, keras_cd
    >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(8), keras.layers.Dense(3)])
    >>> data = keras_cd.few_shot.extract_features(
    ...     model, np.ones((6, 4, 4, 1)), [0, 0, 1, 1, 2, 2], {0: "base", 1: "novel", 2: "novel"})
    >>> data.features.shape, data.classes("novel").tolist()
    ((6, 8), [1, 2])
    """
    from keras_cd import _backend

    extractor = feature_extractor(model, layer)
    predict = _backend.predictor(extractor)
    batches = (
        (images[i : i + batch_size] for i in range(0, len(images), batch_size))
        if isinstance(images, np.ndarray)
        else images
    )
    features = [
        np.asarray(_backend.numpy(predict(np.asarray(b, np.float32)))).reshape(len(b), -1)
        for b in batches
    ]
    features = np.concatenate(features) if features else np.zeros((0, 0), np.float32)
    labels = np.asarray(labels)
    return FeatureSet(features, labels, _splits_of(labels, split), source=f"model {model.name}")


def image_folder(
    directory: str, classes: Sequence[str], image_size: Sequence[int], batch_size: int = 64
) -> tuple[Iterator[np.ndarray], np.ndarray]:
    """The images of the listed classes of a folder with one sub-folder per class.

    Args:
        directory: str, holding `directory/CLASS/*.png|jpg|...`.
        classes: list of sub-folder names; class i is labeled i.
        image_size: `(height, width)` every image is resized to.
        batch_size: int, images per yielded batch. Defaults to `64`.

    Returns:
        `(batches, labels)`: a generator of float32 (b, height, width, 3)
        batches (pixel values 0-255, files in sorted order) and the (M,)
        int labels, for `extract_features`.

    Raises:
        ValueError: if a class has no sub-folder.

    Example:
    >>> import os, tempfile, numpy as np, keras, keras_cd
    >>> directory = tempfile.mkdtemp()
    >>> for name in ("cat", "dog"):
    ...     os.makedirs(os.path.join(directory, name))
    ...     image = np.full((6, 6, 3), 100 if name == "cat" else 200, "uint8")
    ...     keras.utils.save_img(os.path.join(directory, name, "1.png"), image, scale=False)
    >>> batches, labels = keras_cd.few_shot.image_folder(directory, ["cat", "dog"], (4, 4))
    >>> images = np.concatenate(list(batches))
    >>> images.shape, labels.tolist(), images[:, 0, 0, 0].tolist()
    ((2, 4, 4, 3), [0, 1], [100.0, 200.0])
    """
    import keras

    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(directory, name)
        if not os.path.isdir(folder):
            _validation.invalid(
                "classes",
                f"sub-folders of {directory}",
                name,
                f"Existing: {sorted(os.listdir(directory))[:20]}.",
            )
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))
        paths += [os.path.join(folder, f) for f in files]
        labels += [label] * len(files)

    def batches():
        for start in range(0, len(paths), batch_size):
            yield np.stack(
                [
                    keras.utils.img_to_array(
                        keras.utils.load_img(p, color_mode="rgb", target_size=tuple(image_size))
                    )
                    for p in paths[start : start + batch_size]
                ]
            ).astype(np.float32)

    return batches(), np.array(labels, np.int64)


def tfds_images(
    name: str,
    classes: Sequence[str | int] | None = None,
    split: str = "train",
    image_size: Sequence[int] | None = None,
    data_dir: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The images of a TensorFlow Datasets dataset, of the listed classes, in memory.

    Args:
        name: str, a tfds dataset with "image" and "label" features.
        classes: list of class names or ints to keep, or None for all;
            the labels are the dataset's own. Defaults to `None`.
        split: str, the tfds split. Defaults to `"train"`.
        image_size: `(height, width)` to resize to, or None to keep them.
            Defaults to `None`.
        data_dir: str or None, tfds's data directory. Defaults to `None`.

    Returns:
        `(images, labels)`: float32 (M, height, width, channels), int (M,).

    Raises:
        ImportError: without TensorFlow Datasets (`pip install
            tensorflow-datasets`).
        ValueError: for a class the dataset does not have.

    Example:
    ```python
    images, labels = keras_cd.few_shot.tfds_images(
        "cifar100", classes=["apple", "bee", "cup"], image_size=(32, 32))
    data = keras_cd.few_shot.extract_features(model, images, labels, "novel")
    ```
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "Reading a tfds dataset needs TensorFlow Datasets: pip install tensorflow-datasets "
            "(or pip install -e '.[data]')."
        ) from error
    from keras import ops

    dataset, info = tfds.load(
        name, split=split, data_dir=data_dir, as_supervised=True, with_info=True
    )
    names = list(info.features["label"].names) if hasattr(info.features["label"], "names") else []
    keep = None
    if classes is not None:
        unknown = [c for c in classes if str(c) not in names and not str(c).isdigit()]
        if unknown:
            _validation.invalid(
                "classes", f"class names of {name} or ints", unknown, f"Names: {names[:20]}..."
            )
        keep = {names.index(str(c)) if str(c) in names else int(c) for c in classes}
    images, labels = [], []
    for image, label in tfds.as_numpy(dataset):
        if keep is not None and int(label) not in keep:
            continue
        image = np.asarray(image, np.float32)
        if image_size is not None:
            image = ops.convert_to_numpy(ops.image.resize(image, tuple(image_size)))
        images.append(image)
        labels.append(int(label))
    return np.stack(images), np.array(labels, np.int64)
