"""A training stream whose every epoch is a function of (seed, epoch): resumable exactly.

Training a convection-diffusion network draws random numbers in three
places: the diffusion noise, the data order and the augmentations. The
checkpoints (`keras_cd.checkpoint.ResumableCheckpoint`) restore the first;
[`resumable_epochs`][keras_cd.datasets.resumable_epochs] makes the other two
a function of the epoch, so that a resumed run of the paper's experiments
(Wang, Bao & Shi, arXiv 2403.15726) sees exactly the batches the
uninterrupted run would have. TensorFlow (tf.data) only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keras_cd import _validation

if TYPE_CHECKING:
    import tensorflow as tf


def resumable_epochs(
    dataset: tf.data.Dataset,
    seed: int,
    epochs: int,
    initial_epoch: int = 0,
    examples_per_epoch: int | None = None,
    buffer_size: int | None = None,
) -> tf.data.Dataset:
    """Returns the examples of epochs `initial_epoch`..`epochs - 1`, each shuffled by its own seed.

    Epoch e is `dataset` shuffled with a seed derived from (seed, e) (further
    passes, when `examples_per_epoch` exceeds one pass, from (seed, e, pass)),
    cut to `examples_per_epoch` examples. Each example comes with an
    augmentation seed: an int64 pair unique to its (epoch, position), for
    TensorFlow's stateless random ops (`tf.image.stateless_random_crop`,
    `stateless_random_flip_left_right`). So the stream from epoch k on is
    exactly the tail of the stream from epoch 0: a run resumed at epoch k
    (`keras_cd.checkpoint.ResumableCheckpoint`) sees the batches and
    augmentations the uninterrupted run would have, where a plain
    `shuffle(reshuffle_each_iteration=True)` pipeline replays epoch 1's order.

    Batch the result with `examples_per_epoch` a multiple of the batch size
    and pass `steps_per_epoch=examples_per_epoch // batch_size` to `fit`, so
    that no batch straddles two epochs. TensorFlow backend (tf.data).

    Args:
        dataset: a finite `tf.data.Dataset` of examples.
        seed: int, seed of the whole stream.
        epochs: int >= 0, the epoch after the last one (as `fit(epochs=...)`).
        initial_epoch: int >= 0, the first epoch (as
            `fit(initial_epoch=...)`). Defaults to `0`.
        examples_per_epoch: int >= 1 or None, examples per epoch, drawn from
            as many shuffled passes over `dataset` as needed. Defaults to
            `None`: one pass over `dataset`.
        buffer_size: int >= 1 or None, the shuffle buffer. Defaults to
            `None`: the whole dataset (a perfect shuffle; needs its size
            known).

    Returns:
        A `tf.data.Dataset` of `(augmentation_seed, example)` pairs,
        `augmentation_seed` an int64 tensor of shape (2,); empty when
        `initial_epoch >= epochs`.

    Raises:
        ValueError: if `seed` is not an int, `epochs` or `initial_epoch` is
            not an int >= 0, `examples_per_epoch` or `buffer_size` is not an
            int >= 1, or the size of `dataset` is unknown while
            `buffer_size` is None or `examples_per_epoch` is given.

    Example:
        >>> import tensorflow as tf, keras_cd
        >>> data = tf.data.Dataset.range(4)
        >>> full = keras_cd.datasets.resumable_epochs(data, seed=0, epochs=3)
        >>> tail = keras_cd.datasets.resumable_epochs(data, seed=0, epochs=3, initial_epoch=1)
        >>> [int(x) for _, x in full][4:] == [int(x) for _, x in tail]  # resumed at epoch 1
        True
        >>> sorted(int(x) for _, x in tail.take(4))  # each epoch is one pass, shuffled
        [0, 1, 2, 3]
    """
    import tensorflow as tf

    seed = _validation.integer("seed", seed, "Use e.g. seed=0.")
    epochs = _validation.non_negative_int("epochs", epochs, "Use the `epochs` given to fit().")
    initial_epoch = _validation.non_negative_int(
        "initial_epoch", initial_epoch, "Use the epoch fit() resumes from, e.g. 0."
    )
    if examples_per_epoch is not None:
        examples_per_epoch = _validation.positive_int(
            "examples_per_epoch", examples_per_epoch, "Use steps_per_epoch * batch_size."
        )
    if buffer_size is None:
        size = int(dataset.cardinality())
        if size < 0:
            _validation.invalid(
                "buffer_size",
                "an integer >= 1 for a dataset of unknown size",
                None,
                "Pass buffer_size, e.g. 10000.",
            )
        buffer_size = size
    buffer_size = _validation.positive_int("buffer_size", buffer_size, "Use e.g. 10000.")

    size = int(dataset.cardinality())
    if examples_per_epoch is not None and size < 0:
        _validation.invalid(
            "dataset",
            "a dataset of known size when examples_per_epoch is given",
            "a dataset of unknown size",
            "Apply dataset.apply(tf.data.experimental.assert_cardinality(N)) first.",
        )

    def mix(*parts):  # distinct seeds for distinct (seed, epoch, pass), below 2**63
        value = seed
        for part in parts:
            value = (value * 1_000_003 + part + 1) % (2**62)
        return value

    def one_epoch(epoch):
        # Python ints, not tensors, as shuffle seeds: TensorFlow combines an op seed
        # with the global seed in Python, which a traced epoch tensor cannot enter.
        if examples_per_epoch is None:
            passes = dataset.shuffle(
                buffer_size, seed=mix(epoch, 0), reshuffle_each_iteration=False
            )
        else:
            count = -(-examples_per_epoch // max(size, 1))
            passes = dataset.shuffle(
                buffer_size, seed=mix(epoch, 0), reshuffle_each_iteration=False
            )
            for number in range(1, count):
                passes = passes.concatenate(
                    dataset.shuffle(
                        buffer_size, seed=mix(epoch, number), reshuffle_each_iteration=False
                    )
                )
            passes = passes.take(examples_per_epoch)
        epoch_seed = tf.constant(mix(epoch), tf.int64)
        return passes.enumerate().map(
            lambda position, example: (tf.stack([epoch_seed, position]), example)
        )

    stream = None
    for epoch in range(initial_epoch, epochs):
        stream = one_epoch(epoch) if stream is None else stream.concatenate(one_epoch(epoch))
    return stream if stream is not None else one_epoch(initial_epoch).take(0)
