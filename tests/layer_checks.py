"""The standard checks every llm_tf layer must pass; each layer's test file only adds what is special.

``run_layer_checks`` runs, for one layer:

1. config round-trip: ``from_config(get_config())`` gives the same config, and the config names every
   constructor argument;
2. a symbolic (Functional) call gives the same shape and dtype as the eager call;
3. ``.keras`` save/load **in a fresh Python process** reproduces the outputs (one process per test session that
   only imports ``llm_tf.layers`` and never builds a layer reloads every layer's saved model);
4. one ``model.fit`` step (compiled with XLA on TensorFlow and JAX) gives a finite loss;
5. every trainable weight receives a nonzero gradient;
6. under ``mixed_bfloat16`` the layer runs on large-magnitude inputs without NaN/Inf;
7. (optional) a Keras mask on the first input comes out unchanged on the output.
"""

import atexit
import inspect
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
from keras import ops

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

# The reloading process: started once per test session (importing Keras and the backend is most of the cost of a
# fresh process), it has never built or seen the layers it loads: it only imports `llm_tf.layers` (which registers
# the serializable layers) and then, for every directory named on its standard input, loads `model.keras` there,
# calls it on `inputs.npz` and writes `reloaded.npz` (or `error.txt` with the traceback), then the file `done`.
_FRESH_PROCESS_SCRIPT = """
import json, os, sys, traceback
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, keras
import llm_tf.layers  # registers the serializable layers
for line in sys.stdin:
    directory = line.strip()
    try:
        model = keras.saving.load_model(os.path.join(directory, "model.keras"))
        data = np.load(os.path.join(directory, "inputs.npz"))
        names = json.load(open(os.path.join(directory, "names.json")))
        outputs = model([data[n] for n in names] if len(names) > 1 else data[names[0]], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        np.savez(os.path.join(directory, "reloaded.npz"), *[keras.ops.convert_to_numpy(o) for o in outputs])
    except BaseException:
        with open(os.path.join(directory, "error.txt"), "w") as file:
            file.write(traceback.format_exc())
    open(os.path.join(directory, "done"), "w").close()
"""


class _ReloadingProcess:
    """The one Python process (per test session) that reloads saved models; see `_FRESH_PROCESS_SCRIPT`."""

    def __init__(self):
        self.log = tempfile.NamedTemporaryFile(prefix="layer_checks_reload_", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _FRESH_PROCESS_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        )
        atexit.register(self.close)

    def log_tail(self):
        with open(self.log.name, errors="replace") as file:
            return file.read()[-3000:]

    def reload(self, directory, timeout):
        """Asks the process to reload `directory`; returns the error text, or None when it succeeded."""
        self.process.stdin.write(directory + "\n")
        self.process.stdin.flush()
        done = os.path.join(directory, "done")
        deadline = time.monotonic() + timeout
        while not os.path.exists(done):
            if self.process.poll() is not None:
                return f"the reloading process exited ({self.process.returncode}):\n{self.log_tail()}"
            if time.monotonic() > deadline:
                message = f"no reload within {timeout} s:\n{self.log_tail()}"
                self.close()
                return message
            time.sleep(0.01)
        error = os.path.join(directory, "error.txt")
        if os.path.exists(error):
            with open(error) as file:
                return file.read()[-3000:]
        return None

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if os.path.exists(self.log.name):
            os.remove(self.log.name)


_reloading_process = None


def _reload_in_fresh_process(directory, timeout=180):
    global _reloading_process
    if _reloading_process is None or _reloading_process.process.poll() is not None:
        _reloading_process = _ReloadingProcess()
    return _reloading_process.reload(directory, timeout)


def _as_list(inputs):
    return list(inputs) if isinstance(inputs, list | tuple) else [inputs]


def _functional_model(layer, inputs, call_kwargs):
    symbolic = [keras.Input(shape=x.shape[1:], batch_size=None, dtype=str(x.dtype)) for x in inputs]
    outputs = layer(*symbolic, **call_kwargs)
    return keras.Model(symbolic if len(symbolic) > 1 else symbolic[0], outputs)


def _outputs_list(outputs):
    return [ops.convert_to_numpy(o) for o in (outputs if isinstance(outputs, list | tuple) else [outputs])]


# XLA on TensorFlow and JAX; PyTorch's "jit" (torch.compile) is not what these checks are about.
JIT_COMPILE = keras.config.backend() != "torch"


def check_config_round_trip(layer):
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config, "from_config(get_config()) changed the config"
    arguments = [
        name
        for name, parameter in inspect.signature(layer.__class__.__init__).parameters.items()
        if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    ]
    missing = [name for name in arguments if name not in config]
    assert not missing, f"get_config() misses constructor arguments {missing}"
    json.dumps(keras.saving.serialize_keras_object(layer))  # the config must be JSON-serializable


def check_save_load_fresh_process(model, inputs, expected_outputs, atol):
    with tempfile.TemporaryDirectory() as directory:
        model.save(os.path.join(directory, "model.keras"))
        names = [f"input_{i}" for i in range(len(inputs))]
        np.savez(os.path.join(directory, "inputs.npz"), **dict(zip(names, inputs)))
        with open(os.path.join(directory, "names.json"), "w") as f:
            json.dump(names, f)
        error = _reload_in_fresh_process(directory)
        assert error is None, f"reload in a fresh process failed:\n{error}"
        reloaded = np.load(os.path.join(directory, "reloaded.npz"))
        reloaded = [reloaded[f"arr_{i}"] for i in range(len(reloaded.files))]
    assert len(reloaded) == len(expected_outputs)
    for got, expected in zip(reloaded, expected_outputs):
        np.testing.assert_allclose(got, expected, atol=atol, rtol=0)


def check_fit_step(model, inputs):
    outputs = _outputs_list(model(inputs if len(inputs) > 1 else inputs[0]))
    targets = [np.random.default_rng(0).normal(size=o.shape).astype("float32") for o in outputs]
    model.compile(optimizer="adam", loss="mse", jit_compile=JIT_COMPILE)
    history = model.fit(
        inputs if len(inputs) > 1 else inputs[0],
        targets if len(targets) > 1 else targets[0],
        batch_size=len(inputs[0]),
        epochs=1,
        verbose=0,
    )
    loss = history.history["loss"][-1]
    assert np.isfinite(loss), f"fit step (jit_compile={JIT_COMPILE}) gave a non-finite loss {loss}"


def _gradients(layer, loss_of_outputs, inputs, call_kwargs):
    """Gradients of ``loss_of_outputs(layer(*inputs))`` w.r.t. ``layer.trainable_variables``, on any backend."""
    kwargs = dict(call_kwargs, training=True) if _accepts_training(layer) else dict(call_kwargs)
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_of_outputs(layer(*inputs, **kwargs))
        return [ops.convert_to_numpy(g) if g is not None else None for g in tape.gradient(loss, layer.trainable_variables)]
    if backend == "jax":
        import jax

        def loss_fn(trainable, non_trainable):
            outputs, _ = layer.stateless_call(trainable, non_trainable, *inputs, **kwargs)
            return loss_of_outputs(outputs)

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]
        return [np.asarray(g) for g in jax.grad(loss_fn)(trainable, non_trainable)]
    if backend == "torch":
        loss = loss_of_outputs(layer(*inputs, **kwargs))
        loss.backward()
        grads = [v.value.grad for v in layer.trainable_variables]
        return [g.detach().cpu().numpy() if g is not None else None for g in grads]
    raise ValueError(f"no gradient check for the Keras backend {backend!r}")


def check_gradients_nonzero(layer, inputs, call_kwargs):
    rng = np.random.default_rng(1)
    if not layer.built:
        layer(*inputs, **call_kwargs)
    assert layer.trainable_variables, "the layer has no trainable weights to check"

    def loss_of_outputs(outputs):
        outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
        # A random projection of the outputs, so no gradient vanishes by symmetry (e.g. LayerNorm + sum).
        return sum(
            ops.sum(ops.cast(o, "float32") * ops.convert_to_tensor(rng.normal(size=tuple(o.shape)).astype("float32")))
            for o in outputs
            if "float" in keras.backend.standardize_dtype(o.dtype)
        )

    gradients = _gradients(layer, loss_of_outputs, inputs, call_kwargs)
    for variable, gradient in zip(layer.trainable_variables, gradients):
        assert gradient is not None, f"no gradient reaches {variable.path}"
        assert float(np.max(np.abs(gradient))) > 0, f"zero gradient for {variable.path}"


def _accepts_training(layer):
    return "training" in inspect.signature(layer.call).parameters


def check_mixed_bfloat16(layer_factory, inputs, call_kwargs, float_input_scale):
    layer = layer_factory(dtype="mixed_bfloat16")
    scaled = [x * float_input_scale if np.issubdtype(x.dtype, np.floating) else x for x in inputs]
    outputs = _outputs_list(layer(*scaled, **call_kwargs))
    assert layer.compute_dtype == "bfloat16"
    for output in outputs:
        output = output.astype("float32")
        assert np.all(np.isfinite(output)), "mixed_bfloat16 produced NaN/Inf"


def check_mask_propagation(layer_factory, inputs, call_kwargs, mask):
    masked_input = keras.layers.Masking(mask_value=0.0)(inputs[0] * mask[:, :, None])
    outputs = layer_factory()(masked_input, *inputs[1:], **call_kwargs)
    output = outputs[0] if isinstance(outputs, list | tuple) else outputs
    output_mask = keras.backend.get_keras_mask(output) if hasattr(keras.backend, "get_keras_mask") else getattr(
        output, "_keras_mask", None
    )
    assert output_mask is not None, "the Keras mask was dropped"
    np.testing.assert_array_equal(ops.convert_to_numpy(output_mask), mask.astype(bool))


def run_layer_checks(
    layer_factory,
    inputs,
    call_kwargs=None,
    expected_output_shape=None,
    mask=None,
    has_weights=True,
    float_input_scale=1000.0,
    atol=1e-5,
):
    """Run the standard checks on the layer built by ``layer_factory(**kwargs)``.

    Args:
        layer_factory: callable taking optional layer kwargs (``dtype=``) and returning a new layer.
        inputs: one numpy array or a list of them (positional call arguments).
        call_kwargs: non-tensor keyword arguments for the call (e.g. ``use_causal_mask=True``).
        expected_output_shape: if given, the eager output shape must equal it.
        mask: optional ``(batch, sequence)`` 0/1 array; the layer must carry it from its first
            input to its output.
        has_weights: whether gradient checks apply.
        float_input_scale: factor applied to float inputs in the mixed-precision check.
        atol: tolerance of the save/load comparison.
    """
    call_kwargs = call_kwargs or {}
    inputs = _as_list(inputs)
    keras.utils.set_random_seed(0)

    layer = layer_factory()
    eager_outputs = _outputs_list(layer(*inputs, **call_kwargs))
    if expected_output_shape is not None:
        assert eager_outputs[0].shape == tuple(expected_output_shape)
    check_config_round_trip(layer)

    functional_layer = layer_factory()
    model = _functional_model(functional_layer, inputs, call_kwargs)
    symbolic_outputs = model.outputs
    functional_outputs = _outputs_list(model(inputs if len(inputs) > 1 else inputs[0]))
    for symbolic, eager in zip(symbolic_outputs, functional_outputs):
        assert tuple(symbolic.shape[1:]) == eager.shape[1:], "symbolic and eager shapes differ"
        assert keras.backend.standardize_dtype(symbolic.dtype) == str(eager.dtype)
    assert [o.shape for o in functional_outputs] == [o.shape for o in eager_outputs]

    check_save_load_fresh_process(model, inputs, functional_outputs, atol)
    if has_weights:
        check_gradients_nonzero(functional_layer, inputs, call_kwargs)
        check_fit_step(model, inputs)
    check_mixed_bfloat16(layer_factory, inputs, call_kwargs, float_input_scale)
    if mask is not None:
        check_mask_propagation(layer_factory, inputs, call_kwargs, mask)
