"""llm_tf.training.timing: the execution timer's two spans, its ms/step figure, and one real fit."""

import numpy as np
import pytest

from llm_tf.training.timing import ExecutionTimer, ms_per_step


class FakeClock:
    def __init__(self, times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def test_call_span_times_begin_to_end_of_each_call():
    # Calls run 1.0-1.5 and 3.0-3.25; the gap between them (other callbacks) is not counted.
    timer = ExecutionTimer(clock=FakeClock([1.0, 1.5, 3.0, 3.25]))
    for batch in range(2):
        timer.on_train_batch_begin(batch)
        timer.on_train_batch_end(batch)
    timer.on_epoch_end(0)
    assert timer.seconds == [0.5, 0.25]
    assert timer.ms_per_step(5) == 50.0  # median of the calls after the first: 0.25 s / 5 steps
    assert timer.ms_per_step_samples(5) == [100.0, 50.0]


def test_loop_span_times_begin_to_next_begin_and_the_last_call_to_the_epoch_end():
    timer = ExecutionTimer(include_loop_overhead=True, clock=FakeClock([1.0, 3.0, 3.5]))
    for batch in range(2):
        timer.on_train_batch_begin(batch)
        timer.on_train_batch_end(batch)
    timer.on_epoch_end(0)
    assert timer.seconds == [2.0, 0.5]
    # A second epoch starts a fresh span: nothing is counted across the epoch boundary.
    timer.clock = FakeClock([10.0, 10.25])
    timer.on_train_batch_begin(0)
    timer.on_epoch_end(1)
    assert timer.seconds == [2.0, 0.5, 0.25]


def test_ms_per_step_median_skip_and_errors():
    assert ms_per_step([9.0, 0.1, 0.3, 0.2], steps_per_execution=2) == 100.0
    assert ms_per_step([9.0, 0.1], steps_per_execution=1, skip_first=0) == pytest.approx(4550.0)
    assert ms_per_step([9.0], steps_per_execution=4) is None
    with pytest.raises(ValueError, match="steps_per_execution"):
        ms_per_step([1.0, 2.0], steps_per_execution=0)
    with pytest.raises(ValueError, match="skip_first"):
        ms_per_step([1.0, 2.0], steps_per_execution=1, skip_first=-1)


def test_timer_records_one_time_per_compiled_call_of_fit():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=4)
    x, y = np.ones((48, 3), np.float32), np.ones((48, 1), np.float32)
    timers = [ExecutionTimer(), ExecutionTimer(include_loop_overhead=True)]
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=timers)  # 12 steps = 3 calls of 4
    for timer in timers:
        assert len(timer.seconds) == 3 and all(seconds > 0 for seconds in timer.seconds)
    # The loop span contains the call span of the same call.
    assert all(loop >= call for call, loop in zip(timers[0].seconds, timers[1].seconds))
