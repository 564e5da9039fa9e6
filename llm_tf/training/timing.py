"""The one execution timer: wall time of each compiled call of ``model.fit`` and the ms-per-step figure.

With ``steps_per_execution=k`` Keras runs ``k`` training steps per compiled call and calls the callbacks once
per call, so the time of a call divided by ``k`` is the time of one step. The first call of a run includes the
tracing and (with ``jit_compile``) the XLA compilation; :func:`ms_per_step` leaves it out by default.

Two spans can be timed (``include_loop_overhead``):

- ``False`` (default): from ``on_train_batch_begin`` to ``on_train_batch_end`` of the same call, i.e. the
  compiled call plus the conversion of its logs (which waits for the result). The time other callbacks spend
  between calls (CSV logging, backups) is not counted.
- ``True``: from one call's ``on_train_batch_begin`` to the next one's (the last call: to the epoch's end),
  so the fit loop's own per-call overhead counts too, as in a hand-written training loop timed end to end.

Example:
    >>> timer = ExecutionTimer()  # doctest: +SKIP
    >>> model.fit(dataset, epochs=1, steps_per_epoch=500, callbacks=[timer])  # doctest: +SKIP
    >>> timer.ms_per_step(steps_per_execution=50)  # doctest: +SKIP
    44.1
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import keras

from llm_tf.checks import check_non_negative_int, check_positive_int


def _check_steps(steps_per_execution) -> int:
    check_positive_int("steps_per_execution", steps_per_execution)
    return steps_per_execution


def ms_per_step(seconds: Sequence[float], steps_per_execution: int, skip_first: int = 1) -> float | None:
    """Median milliseconds per training step from the wall times of compiled calls.

    Args:
        seconds: wall time of each call, in seconds, in order.
        steps_per_execution: training steps per call.
        skip_first: leading calls left out (the first holds the compilation).

    Returns:
        ``1000 * median(seconds[skip_first:]) / steps_per_execution`` rounded to 3 decimals, or None when no
        call is left.

    Example:
        >>> ms_per_step([2.0, 0.5, 0.7, 0.6], steps_per_execution=10)
        60.0
    """
    steps = _check_steps(steps_per_execution)
    check_non_negative_int("skip_first", skip_first)
    steady = list(seconds)[skip_first:]
    if not steady:
        return None
    return round(1000 * statistics.median(steady) / steps, 3)


class ExecutionTimer(keras.callbacks.Callback):
    """A Keras callback recording the wall time of every compiled training call of ``fit``.

    Args:
        include_loop_overhead: time from one call's start to the next call's start (True) instead of from a
            call's start to its end (False, the default); see the module docstring.
        clock: the clock (``time.perf_counter``); tests pass a fake one.

    Attributes:
        seconds: the wall time of each call so far, in order (kept across ``fit`` calls).

    Example:
        >>> timer = ExecutionTimer()
        >>> timer.seconds
        []
    """

    def __init__(self, include_loop_overhead: bool = False, clock=time.perf_counter):
        super().__init__()
        self.include_loop_overhead = bool(include_loop_overhead)
        self.clock = clock
        self.seconds: list[float] = []
        self._begin: float | None = None

    def on_train_batch_begin(self, batch, logs=None):
        now = self.clock()
        if self.include_loop_overhead and self._begin is not None:
            self.seconds.append(now - self._begin)
        self._begin = now

    def on_train_batch_end(self, batch, logs=None):
        if not self.include_loop_overhead and self._begin is not None:
            # The logs were converted to Python numbers before this callback ran: the call has finished.
            self.seconds.append(self.clock() - self._begin)
            self._begin = None

    def on_epoch_end(self, epoch, logs=None):
        if self.include_loop_overhead and self._begin is not None:
            self.seconds.append(self.clock() - self._begin)
        self._begin = None

    def ms_per_step(self, steps_per_execution: int, skip_first: int = 1) -> float | None:
        """Median milliseconds per step over the recorded calls after the first ``skip_first``.

        Args:
            steps_per_execution: training steps per call (the model's ``steps_per_execution``).
            skip_first: leading calls left out (default 1: the call that compiled).

        Returns:
            The figure, or None when too few calls were recorded.
        """
        return ms_per_step(self.seconds, steps_per_execution, skip_first)

    def ms_per_step_samples(self, steps_per_execution: int) -> list[float]:
        """Every recorded call as milliseconds per step (none left out)."""
        steps = _check_steps(steps_per_execution)
        return [1000 * seconds / steps for seconds in self.seconds]


__all__ = ["ExecutionTimer", "ms_per_step"]
