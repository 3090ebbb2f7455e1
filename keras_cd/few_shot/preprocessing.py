"""The reference preprocessing of a few-shot task: CL2N features and the query shift."""

import numpy as np

EPSILON = 1e-12


def center_normalize(features, base_mean):
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

    >>> import numpy as np
    >>> from keras_cd.few_shot import center_normalize
    >>> center_normalize(np.array([[4.0, 1.0], [1.0, 5.0]]), np.array([1.0, 1.0])).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    centered = np.asarray(features, np.float32) - np.asarray(base_mean, np.float32)
    norms = np.sqrt(np.einsum("...f,...f->...", centered, centered))[..., None]
    centered /= np.maximum(norms, EPSILON)
    return centered


def shift_queries(support, query):
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

    >>> import numpy as np
    >>> from keras_cd.few_shot import shift_queries
    >>> shift_queries(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([[5.0, 5.0]])).tolist()
    [[1.0, 0.0]]
    """
    support, query = np.asarray(support, np.float32), np.asarray(query, np.float32)
    eta = support.mean(axis=-2, keepdims=True) - query.mean(axis=-2, keepdims=True)
    return query + eta


def preprocess(tasks, shift=True):
    """A batch of tasks' features after the reference preprocessing.

    CL2N (`center_normalize`) on support and queries, then, with `shift`,
    the query shift (`shift_queries`).

    Args:
        tasks: a `keras_cd.few_shot.Tasks`.
        shift: bool, apply the query shift. Defaults to `True`.

    Returns:
        `(support, query)`: float32 (T, way * shot, F) and (T, way * queries, F).
    """
    support = center_normalize(tasks.support_features(), tasks.base_mean)
    query = center_normalize(tasks.query_features(), tasks.base_mean)
    return support, shift_queries(support, query) if shift else query
