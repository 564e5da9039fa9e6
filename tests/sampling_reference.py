"""``llm_tf.models.generation.row_uniforms`` written again in numpy's uint32 arithmetic (which wraps at 2**32).

Used by the TensorFlow tests and by the model smoke on the other backends, so every backend's draws are checked
against the same independent reference.
"""

import numpy as np


def reference_uniforms(seed, step, batch_size):
    """The uniform number in (0, 1) of each row for ``(seed, step)``: two rounds of the lowbias32 mixer."""

    def mix(x):
        x ^= x >> np.uint32(16)
        x *= np.uint32(0x7FEB352D)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x846CA68B)
        return x ^ (x >> np.uint32(16))

    with np.errstate(over="ignore"):
        x = mix(np.full(batch_size, seed, np.uint32) + np.uint32(step) * np.uint32(0x9E3779B9))
        x = mix(x ^ ((np.arange(batch_size, dtype=np.uint32) + np.uint32(1)) * np.uint32(0x85EBCA6B)))
    return ((x >> np.uint32(8)).astype(np.float32) + np.float32(0.5)) / np.float32(16777216.0)
