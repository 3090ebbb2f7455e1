"""Noise that stays independent across tf.distribute replicas."""

import keras


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A `keras.random.SeedGenerator` that folds in the replica id.

    Under `tf.distribute.MirroredStrategy` (and the other synchronous
    strategies) a SeedGenerator's state variable is mirrored, so every replica
    draws the same seed and therefore the same noise. On the TensorFlow
    backend, inside a replica context with more than one replica, the drawn
    seed is hashed together with the replica id, so each replica gets its own
    independent stream while the state stays in sync. Elsewhere the seeds are
    exactly those of a plain SeedGenerator.
    """

    def next(self, ordered=True):
        seed = super().next(ordered=ordered)
        if keras.backend.backend() != "tensorflow":
            return seed
        import tensorflow as tf  # Already imported by the TF backend.

        if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
            return seed
        context = tf.distribute.get_replica_context()
        if context.num_replicas_in_sync <= 1:
            return seed
        replica_id = tf.cast(context.replica_id_in_sync_group, "int32")
        folded = tf.random.experimental.stateless_fold_in(
            tf.cast(tf.math.floormod(seed, 2**31 - 1), "int32"), replica_id
        )
        return tf.cast(folded, seed.dtype)
