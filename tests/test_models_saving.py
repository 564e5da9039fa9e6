"""A trained, compiled model saved as ``.keras`` reloads in a fresh process after ``import llm_tf.models`` alone:
the model classes and everything llm_tf compiles them with (``SelectiveAdamW``, ``WarmupCosineDecay`` /
``NoamSchedule``, ``LabelSmoothedCrossentropy``, ``Perplexity``) are registered by that import, and it comes back
compiled, with its optimizer state — the classifier and masked-LM heads too, whose ``compile`` fills in defaults
(Keras skips an overridden ``compile`` on load unless the model restores it itself)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np

from llm_tf.metrics.keras_metrics import Perplexity
from llm_tf.models import (
    GPT,
    GPTConfig,
    MaskedLM,
    Seq2SeqConfig,
    Seq2SeqTransformer,
    TextClassifier,
    TransformerEncoderConfig,
)
from llm_tf.training import LabelSmoothedCrossentropy, NoamSchedule, WarmupCosineDecay, build_optimizer

_RELOAD = """
import json, sys, warnings
import keras
import numpy as np
import llm_tf.models  # the only llm_tf import
results = {}
for path in sys.argv[1:]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(path)
    inputs = dict(np.load(path + ".inputs.npz"))
    results[path] = {"compiled": model.compiled,
                     "compile_warnings": [str(w.message) for w in caught if "compile()" in str(w.message)],
                     "reduction": model.loss.reduction,
                     "optimizer": type(model.optimizer).__name__,
                     "schedule": type(model.optimizer._learning_rate).__name__,
                     "loss": type(model.loss).__name__,
                     "iterations": int(model.optimizer.iterations.numpy()),
                     "outputs": np.asarray(model(inputs)).tolist()}
print(json.dumps(results))
"""


def test_trained_compiled_models_reload_after_importing_llm_tf_models_only(tmp_path, repo_root):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30, size=(4, 8)).astype("int32")
    gpt = GPT(GPTConfig(vocabulary_size=30, max_sequence_length=8, hidden_dim=16, num_layers=1, num_heads=2,
                        intermediate_dim=32, dropout=0.0))
    gpt.compile(optimizer=build_optimizer(WarmupCosineDecay(1e-3, warmup_steps=2, total_steps=10)),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=[Perplexity()])
    gpt.fit(ids[:, :-1], ids[:, 1:], epochs=1, verbose=0)
    seq2seq = Seq2SeqTransformer(Seq2SeqConfig(vocabulary_size=30, max_sequence_length=8, hidden_dim=16,
                                               num_encoder_layers=1, num_decoder_layers=1, num_heads=2,
                                               intermediate_dim=32, dropout=0.0))
    seq2seq.compile(optimizer=build_optimizer(NoamSchedule(16, warmup_steps=4)), loss=LabelSmoothedCrossentropy(0.1))
    batch = {"encoder_token_ids": ids, "decoder_token_ids": ids[:, ::-1].copy()}
    seq2seq.fit(batch, ids, epochs=1, verbose=0)
    encoder_config = TransformerEncoderConfig(vocabulary_size=30, max_sequence_length=8, hidden_dim=16, num_layers=1,
                                              num_heads=2, intermediate_dim=32, dropout=0.0)
    encoder_inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids, dtype=bool)}
    classifier = TextClassifier(3, pooling="mean", config=encoder_config)
    classifier.compile(optimizer=build_optimizer(WarmupCosineDecay(1e-3, warmup_steps=2, total_steps=10)))
    classifier.fit(encoder_inputs, np.arange(4) % 3, epochs=1, verbose=0)
    mlm = MaskedLM(config=encoder_config)
    mlm.compile(optimizer=build_optimizer(WarmupCosineDecay(1e-3, warmup_steps=2, total_steps=10)))
    mlm_inputs = {**encoder_inputs, "mask_positions": np.array([[1, 3]] * 4, dtype="int32")}
    mlm.fit(mlm_inputs, ids[:, [1, 3]], sample_weight=np.array([[1.0, 0.0]] * 4), epochs=1, verbose=0)

    expected = {}
    models = (("gpt", gpt, {"token_ids": ids}), ("seq2seq", seq2seq, batch),
              ("classifier", classifier, encoder_inputs), ("mlm", mlm, mlm_inputs))
    for name, model, inputs in models:
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        np.savez(path + ".inputs.npz", **inputs)
        expected[path] = (type(model.loss).__name__, model.loss.reduction,
                          type(model.optimizer._learning_rate).__name__, np.asarray(model(inputs)))
    completed = subprocess.run([sys.executable, "-c", _RELOAD, *expected], capture_output=True, text=True,
                               timeout=300, cwd=repo_root, env={**os.environ, "PYTHONPATH": str(repo_root)})
    assert completed.returncode == 0, completed.stderr[-3000:]
    reloaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert len(reloaded) == 4
    for path, (loss_name, reduction, schedule_name, outputs) in expected.items():
        assert reloaded[path]["compiled"], path
        assert reloaded[path]["compile_warnings"] == [], path
        assert reloaded[path]["optimizer"] == "SelectiveAdamW"
        assert reloaded[path]["reduction"] == reduction  # the masked LM's mean over real masks
        assert reloaded[path]["schedule"] == schedule_name
        assert reloaded[path]["loss"] == loss_name
        assert reloaded[path]["iterations"] == 1  # the optimizer state came back with the weights
        np.testing.assert_allclose(np.asarray(reloaded[path]["outputs"]), outputs, atol=1e-5)
