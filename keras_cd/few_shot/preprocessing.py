"""The reference preprocessing of a few-shot task: CL2N features and the query shift.

What the paper's few-shot experiment (Wang, Bao & Shi, 2024) does to the
backbone's features before COIN sees them, after the reference code:
`center_normalize` (CL2N), then `shift_queries`; `preprocess` does both for
a batch of tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from keras_cd.few_shot.tasks import Tasks

EPSILON = 1e-12


def center_normalize(features: ArrayLike, base_mean: ArrayLike) -> np.ndarray:
    """Centers on the base-class mean, then scales every feature to unit length (CL2N).

        x <- (x - m) / ||x - m||_2,

    with m the mean base-class feature (SimpleShot's CL2N, the reference
    code's "Centering and Normalization"). A feature equal to m stays 0
    (the reference would divide by zero).

    Args:
        features: (..., F) array.
        base_mean: (F,) array.

    Returns:
        float32 array of the shape of `features`.

    Example:
    >>> import numpy as np, keras_cd
    >>> features = np.array([[4.0, 1.0], [1.0, 5.0]])
    >>> keras_cd.few_shot.center_normalize(features, np.array([1.0, 1.0])).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    centered = np.asarray(features, np.float32) - np.asarray(base_mean, np.float32)
    norms = np.sqrt(np.einsum("...f,...f->...", centered, centered))[..., None]
    centered /= np.maximum(norms, EPSILON)
    return centered


def shift_queries(support: ArrayLike, query: ArrayLike) -> np.ndarray:
    """Moves the queries so that their mean is the support's ("cross-domain shift").

        q <- q + eta,    eta = mean(support) - mean(query),

    the means taken over the rows of one task (axis -2), as the reference
    code does after CL2N. Transductive: it reads the query features (never
    their labels).

    Args:
        support: (..., S, F) array.
        query: (..., Q, F) array.

    Returns:
        float32 array of the shape of `query`.

    Example:
    >>> import numpy as np, keras_cd
    >>> support, query = np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([[5.0, 5.0]])
    >>> keras_cd.few_shot.shift_queries(support, query).tolist()
    [[1.0, 0.0]]
    """
    support, query = np.asarray(support, np.float32), np.asarray(query, np.float32)
    eta = support.mean(axis=-2, keepdims=True) - query.mean(axis=-2, keepdims=True)
    return query + eta


def preprocess(tasks: Tasks, shift: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A batch of tasks' features after the reference preprocessing.

    CL2N (`center_normalize`) on support and queries, then, with `shift`,
    the query shift (`shift_queries`).

    Args:
        tasks: a `keras_cd.few_shot.Tasks`.
        shift: bool, apply the query shift. Defaults to `True`.

    Returns:
        `(support, query)`: float32 (T, way * shot, F) and (T, way * queries, F).

    Example:
    >>> import numpy as np, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(6), 10)
    >>> data = keras_cd.few_shot.FeatureSet(
    ...     rng.normal(size=(60, 4)), labels, np.where(labels < 3, "base", "novel"))
    >>> tasks, _ = keras_cd.few_shot.sample_tasks(data, way=3, shot=1, queries=2, num_tasks=2)
    >>> support, query = keras_cd.few_shot.preprocess(tasks)
    >>> support.shape, query.shape, bool(np.allclose(np.linalg.norm(support, axis=-1), 1))
    ((2, 3, 4), (2, 6, 4), True)
    >>> bool(np.allclose(query.mean(axis=1), support.mean(axis=1), atol=1e-6))  # the shift
    True
    """
    support = center_normalize(tasks.support_features(), tasks.base_mean)
    query = center_normalize(tasks.query_features(), tasks.base_mean)
    return support, shift_queries(support, query) if shift else query
