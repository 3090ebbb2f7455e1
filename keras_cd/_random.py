"""Noise that stays independent across tf.distribute replicas, drawn fast.

The diffusion step x <- x + sigma * sqrt(dt) * eps of the convection-diffusion
layers needs eps ~ N(0, I) that differs between replicas and is cheap to draw
under XLA: `ReplicaSeedGenerator` folds the replica id into the seeds,
`gaussian_like` draws the normals (Box-Muller), `uniform` and `hash_uniform`
the uniforms, and `dropout` the dropout masks.
"""

import math

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
        """Returns the next seed, folded with the replica id inside a replica context."""
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


def uniform(shape, seed):
    """Returns `keras.random.uniform(shape, seed=seed)` on [0, 1), float32, fast under XLA.

    Keras leaves TensorFlow's generator on `alg="auto_select"`, which XLA's
    CPU backend expands into code many times slower than Philox; without XLA
    both are the same Philox kernel. `seed` is a `keras.random.SeedGenerator`,
    or a seed it drew (`generator.next()`).
    """
    if keras.backend.backend() != "tensorflow":
        return keras.random.uniform(shape, seed=seed)  # a generator, or JAX key data
    import tensorflow as tf  # Already imported by the TF backend.

    drawn = seed.next() if isinstance(seed, keras.random.SeedGenerator) else seed
    if drawn.dtype != tf.int32:  # as Keras does: int64 state, int32 seeds
        drawn = tf.cast(tf.math.floormod(drawn, tf.int32.max - 1), tf.int32)
    return tf.random.stateless_uniform(shape, drawn, alg="philox")


def _mix(x):
    """A 32-bit integer hash with full avalanche (Wellons' "lowbias32")."""
    import tensorflow as tf

    shift, xor = tf.bitwise.right_shift, tf.bitwise.bitwise_xor
    x = xor(x, shift(x, tf.constant(16, tf.uint32))) * tf.constant(0x7FEB352D, tf.uint32)
    x = xor(x, shift(x, tf.constant(15, tf.uint32))) * tf.constant(0x846CA68B, tf.uint32)
    return xor(x, shift(x, tf.constant(16, tf.uint32)))


def hash_uniform(shape, seed):
    """Uniforms on [0, 1) (24 bits, float32) from a counter-based hash, for dropout masks.

    u_i = hash(hash(i XOR k) + k) / 2^32 with k = hash(seed_0 XOR hash(seed_1)):
    two rounds of a 32-bit integer hash of the element index keyed by the
    seed, so each element costs a few integer operations. Inside a compiled
    `tf.while_loop` (a whole training run under XLA) it is faster than
    Philox on a CPU. Statistically it is a good hash, not a
    cryptographic generator: for dropout masks, not for noise whose
    distribution a result depends on (`uniform` serves those). Other
    backends get `keras.random.uniform`.
    """
    if keras.backend.backend() != "tensorflow":
        return keras.random.uniform(shape, seed=seed)
    import tensorflow as tf  # Already imported by the TF backend.

    drawn = seed.next() if isinstance(seed, keras.random.SeedGenerator) else seed
    words = tf.bitcast(tf.cast(tf.math.floormod(drawn, 2**31), tf.int32), tf.uint32)
    key = _mix(tf.bitwise.bitwise_xor(words[0], _mix(words[1] + tf.constant(1, tf.uint32))))
    size = tf.reduce_prod(tf.cast(shape, tf.int32))
    index = tf.bitcast(tf.range(size, dtype=tf.int32), tf.uint32)
    bits = _mix(_mix(tf.bitwise.bitwise_xor(index, key)) + key)
    top = tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32))
    return tf.reshape(tf.cast(top, tf.float32) * (1.0 / (1 << 24)), shape)


def dropout(values, rate, seed):
    """Returns `values` after inverted dropout.

    Each entry is kept with probability 1 - rate, then scaled by
    1 / (1 - rate), so the expectation is unchanged. Masks come from
    `hash_uniform` (TensorFlow; `keras.random.uniform` elsewhere).
    """
    from keras import ops

    keep = hash_uniform(ops.shape(values), seed) >= rate
    return ops.where(keep, values / (1 - rate), ops.zeros_like(values))


def gaussian_like(inputs, stddev, seed):
    """Returns `stddev * N(0, I)` noise with the shape of `inputs`, in float32.

    Box-Muller from pairs of uniforms, written with vectorized ops:

        z1 = r cos(2 pi u2),  z2 = r sin(2 pi u2),  r = sqrt(-2 log(1 - u1)),

    with u1, u2 independent and uniform on [0, 1), gives two independent
    standard normals. This is the transform TensorFlow's own
    `stateless_normal` kernel applies element by element (with scalar
    log/sin/cos); applied to whole tensors it runs faster on a CPU
    (`benchmarks/train_step.py` prints the noise's share of a step). As
    in TensorFlow's kernel, float32 uniforms have 23-24 bits, so |z| is
    at most about 5.7 (a tail of probability ~1e-7 is cut).

    The pairs are formed along the last axis when its size is static and
    even (no reshaping of the result), otherwise over the flattened tensor.
    """
    from keras import ops

    shape = ops.shape(inputs)
    channels = inputs.shape[-1] if len(inputs.shape) else None
    if channels is not None and channels % 2 == 0 and channels > 0:
        uniform_pairs = uniform((2,) + tuple(shape[:-1]) + (channels // 2,), seed)
        flat = False
    else:
        static = None not in inputs.shape
        size = math.prod(inputs.shape) if static else ops.size(inputs)
        uniform_pairs = uniform((2, (size + 1) // 2), seed)
        flat = True
    radius = ops.sqrt(-2.0 * ops.log(1.0 - uniform_pairs[0])) * stddev
    angle = (2.0 * math.pi) * uniform_pairs[1]
    axis = 0 if flat else -1
    noise = ops.concatenate([radius * ops.cos(angle), radius * ops.sin(angle)], axis=axis)
    if flat:
        noise = ops.reshape(noise[:size], shape)
    return noise
