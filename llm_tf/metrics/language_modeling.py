"""Perplexity: ``exp(mean token cross-entropy)`` (the Keras metric class is in ``keras_metrics``).

Cross-entropies are in nats (natural log), which is what Keras losses return, so perplexity is
``exp`` of the mean loss over the *real* tokens (padding excluded).
"""

import math


def perplexity(mean_cross_entropy):
    """Perplexity from a mean per-token cross-entropy in nats: ``exp(mean_cross_entropy)``.

    Args:
        mean_cross_entropy: a non-negative float (or numpy / 0-d tensor scalar), e.g. the ``loss`` or
            ``val_loss`` of a language model trained with sparse categorical cross-entropy whose padded
            positions carry sample weight 0.

    Returns:
        The perplexity as a float; ``inf`` when the exponential overflows, ``nan`` for a ``nan`` input
        (a diverged run is reported, not hidden).

    Raises:
        ValueError: when the value is negative or not a scalar number.

    Example:
        >>> round(perplexity(math.log(50.0)), 6)
        50.0
    """
    try:
        value = float(mean_cross_entropy)
    except (TypeError, ValueError):
        raise ValueError(
            f"`mean_cross_entropy` must be a scalar number; got mean_cross_entropy={mean_cross_entropy!r}."
        ) from None
    if math.isnan(value):
        return math.nan
    if value < 0.0:
        raise ValueError(
            f"`mean_cross_entropy` must be >= 0 (a cross-entropy in nats); got mean_cross_entropy={value!r}."
        )
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf
