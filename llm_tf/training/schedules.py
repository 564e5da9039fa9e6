"""Learning-rate schedules for Transformer training: linear warmup + cosine decay, and the Noam schedule.

Both are registered Keras serializables (package ``llm_tf``), so a ``.keras`` file saved with an optimizer
that uses them reloads with its optimizer, provided ``llm_tf.training`` has been imported.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from llm_tf.checks import check_number


def _check_positive(name, value, allow_zero=False):
    check_number(name, value, minimum=0, exclusive_minimum=not allow_zero, finite=True)


@keras.saving.register_keras_serializable(package="llm_tf")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to a peak learning rate, then cosine decay to a final rate.

    For optimizer step ``s`` (0-based, the optimizer's ``iterations``)::

        s < warmup_steps:  lr = peak * (s + 1) / warmup_steps
        otherwise:         p = min(1, (s - warmup_steps) / max(1, total_steps - warmup_steps))
                           lr = final + (peak - final) * 0.5 * (1 + cos(pi * p))

    The first step already uses a non-zero rate, the peak is reached at step ``warmup_steps - 1`` and the rate
    stays at ``final_learning_rate`` after ``total_steps``.

    Args:
        peak_learning_rate: the rate at the end of warmup.
        warmup_steps: number of warmup steps (0 disables warmup).
        total_steps: the step at which the decay reaches ``final_learning_rate`` (warmup included).
        final_learning_rate: the rate after decay (default 0).
        name: optional name.

    Returns:
        Called with a step, the learning rate as a float32 scalar tensor.

    Example:
        >>> schedule = WarmupCosineDecay(1e-3, warmup_steps=100, total_steps=1000)
        >>> round(float(schedule(99)), 6)
        0.001
    """

    def __init__(self, peak_learning_rate, warmup_steps, total_steps, final_learning_rate=0.0, name=None):
        super().__init__()
        _check_positive("peak_learning_rate", peak_learning_rate)
        _check_positive("final_learning_rate", final_learning_rate, allow_zero=True)
        _check_positive("warmup_steps", warmup_steps, allow_zero=True)
        _check_positive("total_steps", total_steps)
        if total_steps < warmup_steps:
            raise ValueError(
                "total_steps must be >= warmup_steps; got "
                f"total_steps={total_steps}, warmup_steps={warmup_steps}"
            )
        if final_learning_rate > peak_learning_rate:
            raise ValueError(
                f"final_learning_rate must not exceed peak_learning_rate; got final_learning_rate="
                f"{final_learning_rate}, peak_learning_rate={peak_learning_rate}"
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.final_learning_rate = float(final_learning_rate)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = ops.cast(self.peak_learning_rate, "float32")
        final = ops.cast(self.final_learning_rate, "float32")
        warmup = float(max(self.warmup_steps, 1))
        warmup_rate = peak * (step + 1.0) / warmup
        decay_length = float(max(1, self.total_steps - self.warmup_steps))
        progress = ops.clip((step - float(self.warmup_steps)) / decay_length, 0.0, 1.0)
        cosine_rate = final + (peak - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < float(self.warmup_steps), warmup_rate, cosine_rate)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "final_learning_rate": self.final_learning_rate,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="llm_tf")
class NoamSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The schedule of "Attention Is All You Need": ``scale * d_model**-0.5 * min(n**-0.5, n * w**-1.5)``.

    ``n = step + 1`` (the optimizer's 0-based ``iterations`` plus one), so the rate rises linearly for
    ``warmup_steps`` steps, peaks at ``scale * (d_model * warmup_steps) ** -0.5`` and then decays as
    ``n**-0.5``.

    Args:
        d_model: the model width.
        warmup_steps: steps of linear increase (the paper uses 4000).
        scale: a multiplier on the whole schedule (1.0 in the paper).
        name: optional name.

    Returns:
        Called with a step, the learning rate as a float32 scalar tensor.

    Example:
        >>> schedule = NoamSchedule(d_model=512, warmup_steps=4000)
        >>> round(float(schedule(3999)), 7)
        0.0006988
    """

    def __init__(self, d_model, warmup_steps=4000, scale=1.0, name=None):
        super().__init__()
        _check_positive("d_model", d_model)
        _check_positive("warmup_steps", warmup_steps)
        _check_positive("scale", scale)
        self.d_model = int(d_model)
        self.warmup_steps = int(warmup_steps)
        self.scale = float(scale)
        self.name = name

    def __call__(self, step):
        n = ops.cast(step, "float32") + 1.0
        rate = ops.minimum(ops.rsqrt(n), n * float(self.warmup_steps) ** -1.5)
        return (self.scale * float(self.d_model) ** -0.5) * rate

    def get_config(self):
        return {
            "d_model": self.d_model,
            "warmup_steps": self.warmup_steps,
            "scale": self.scale,
            "name": self.name,
        }
