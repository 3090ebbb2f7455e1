"""scikit-learn's handwritten digits: real images that need no download.

[`load_digits`][keras_cd.datasets.load_digits] gives small real images in the
layout of the paper's image-classification experiments (Wang, Bao & Shi,
arXiv 2403.15726), `(N, height, width, channels)`, so that
`keras_cd.models.cd_resnet` trains on them offline, in place of CIFAR-10.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keras_cd import _validation

if TYPE_CHECKING:
    import numpy as np


def load_digits(
    seed: int = 0, test_size: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns the 1,797 8x8 digit images of scikit-learn, split stratified by class.

    The offline stand-in for CIFAR-10 in the examples, benchmarks and tests:
    real handwritten digits shipped inside scikit-learn (`pip install
    scikit-learn`, part of the `examples` and `test` extras).

    Args:
        seed: int, seed of the train/test split. Defaults to `0`.
        test_size: float in (0, 1), share of the test set. Defaults to `0.3`.

    Returns:
        `(x_train, x_test, y_train, y_test)`: float32 images of shape
        (N, 8, 8, 1) scaled to [0, 1] and int64 labels 0-9.

    Raises:
        ValueError: if `test_size` is not a number in (0, 1).
        ImportError: if scikit-learn is not installed.

    Example:
        >>> import keras_cd
        >>> x_train, x_test, y_train, y_test = keras_cd.datasets.load_digits(seed=0)
        >>> x_train.shape, x_test.shape, float(x_train.max())
        ((1257, 8, 8, 1), (540, 8, 8, 1), 1.0)
        >>> sorted(set(y_test.tolist())) == list(range(10))  # every class in both splits
        True
    """
    test_size = _validation.number(
        "test_size", test_size, "Use e.g. 0.3.", low=0, high=1, low_open=True, high_open=True
    )
    try:
        from sklearn.datasets import load_digits as sklearn_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise ImportError(
            "The digits dataset comes with scikit-learn: "
            "pip install scikit-learn (or pip install -e '.[examples]')."
        ) from error
    digits = sklearn_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]  # pixel values 0-16
    labels = digits.target.astype("int64")
    return tuple(
        train_test_split(images, labels, test_size=test_size, random_state=seed, stratify=labels)
    )
