"""Tests of the encoder–decoder Transformer: config, forward pass, training, generation, save/load, errors."""

import itertools
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import warnings

import keras
import numpy as np
import pytest

from llm_tf.models import SEQ2SEQ_PRESETS, Seq2SeqConfig, Seq2SeqTransformer

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
VOCABULARY_SIZE = 24
PAD, START, END = 0, 2, 3  # the config defaults
TRAINING_STEPS = 80
SOURCE_LENGTH = TARGET_LENGTH = 7  # longest source (6 tokens) + end / start


def tiny_config(**overrides):
    sizes = dict(
        vocabulary_size=VOCABULARY_SIZE,
        max_sequence_length=10,
        hidden_dim=32,
        num_encoder_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        intermediate_dim=64,
        dropout=0.0,
    )
    return Seq2SeqConfig(**{**sizes, **overrides})


def reversal_batch():
    """Eight sources of 2–6 tokens; each target is its source reversed (a task that needs cross-attention)."""
    rng = np.random.default_rng(0)
    lengths = [2, 3, 4, 5, 6, 6, 4, 3]
    sources = [rng.integers(4, VOCABULARY_SIZE, size=n).tolist() for n in lengths]
    targets = [source[::-1] for source in sources]
    encoder_ids = np.full((len(sources), SOURCE_LENGTH), PAD, "int32")
    decoder_ids = np.full((len(sources), TARGET_LENGTH), PAD, "int32")
    labels = np.full((len(sources), TARGET_LENGTH), PAD, "int32")
    for i, (source, target) in enumerate(zip(sources, targets)):
        encoder_ids[i, : len(source) + 1] = source + [END]
        decoder_ids[i, : len(target) + 1] = [START] + target
        labels[i, : len(target) + 1] = target + [END]
    inputs = {
        "encoder_token_ids": encoder_ids,
        "encoder_padding_mask": encoder_ids != PAD,
        "decoder_token_ids": decoder_ids,
        "decoder_padding_mask": decoder_ids != PAD,
    }
    return inputs, labels, (labels != PAD).astype("float32"), sources


@pytest.fixture(scope="module")
def trained():
    """A tiny model trained to memorize the reversal batch, and its per-step losses."""
    keras.utils.set_random_seed(0)
    model = Seq2SeqTransformer(tiny_config())
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,  # the layer tests cover XLA training; eager-graph training compiles faster
    )
    inputs, labels, weights, _ = reversal_batch()
    losses = [
        float(model.train_on_batch(inputs, labels, sample_weight=weights)) for _ in range(TRAINING_STEPS)
    ]
    return model, losses


def uncached_greedy(model, encoder_ids, max_length):
    """Reference decoding: re-runs the full decoder over the whole prefix at every step (no caches)."""
    batch = len(encoder_ids)
    decoder_ids = np.full((batch, max_length), START, "int32")
    output = np.full((batch, max_length), PAD, "int32")
    finished = np.zeros(batch, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about the length-1 softmax of the first step
        for step in range(max_length):
            logits = np.array(
                model({"encoder_token_ids": encoder_ids, "decoder_token_ids": decoder_ids[:, : step + 1]})
            )[:, step]
            logits[:, PAD] = -np.inf  # generation never emits padding
            next_tokens = np.where(finished, PAD, logits.argmax(-1))
            output[:, step] = next_tokens
            finished |= next_tokens == END
            if step + 1 < max_length:
                decoder_ids[:, step + 1] = next_tokens
    return output


# ---------------------------------------------------------------------------------------------------
# Config.


def test_presets_and_json_round_trip():
    assert list(SEQ2SEQ_PRESETS) == ["tiny", "mini", "small", "base"]
    base = Seq2SeqConfig.from_preset("base", vocabulary_size=37000)
    assert (base.num_encoder_layers, base.num_decoder_layers, base.hidden_dim) == (6, 6, 512)
    assert (base.num_heads, base.intermediate_dim, base.norm_first, base.position) == (
        8,
        2048,
        False,
        "sinusoidal",
    )
    for name in SEQ2SEQ_PRESETS:
        config = Seq2SeqConfig.from_preset(name, vocabulary_size=1000, dropout=0.2)
        assert config.dropout == 0.2
        assert Seq2SeqConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    widths = [Seq2SeqConfig.from_preset(name, vocabulary_size=10).hidden_dim for name in SEQ2SEQ_PRESETS]
    assert widths == sorted(widths)


def test_unknown_preset_and_missing_vocabulary_raise():
    with pytest.raises(ValueError, match=r"unknown seq2seq preset 'huge'; valid presets are \['base', 'mini', 'small', 'tiny'\]"):
        Seq2SeqConfig.from_preset("huge", vocabulary_size=100)
    with pytest.raises(ValueError, match="vocabulary_size"):
        Seq2SeqConfig.from_preset("tiny")
    with pytest.raises(ValueError, match=r"unknown Seq2SeqConfig fields \['num_layers'\]"):
        Seq2SeqConfig.from_dict({"vocabulary_size": 10, "num_layers": 2})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden_dim": 30}, "hidden_dim=30, num_heads=4"),
        ({"position": "rotary"}, "position='rotary'"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"end_id": 0}, "end_id=0, pad_id=0"),
        ({"start_id": 24}, r"start_id=24"),
        ({"target_vocabulary_size": 3}, r"end_id.*\[0, 3\)"),
        ({"activation": "swish42"}, "activation='swish42'"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


# ---------------------------------------------------------------------------------------------------
# Forward pass.


def test_forward_shapes_and_embedding_tying():
    inputs, *_ = reversal_batch()
    tied = Seq2SeqTransformer(tiny_config())
    logits = tied(inputs)
    assert (
        tuple(logits.shape) == (8, TARGET_LENGTH, VOCABULARY_SIZE)
        and keras.backend.standardize_dtype(logits.dtype) == "float32"
    )
    # Shared vocabulary + tie_embeddings: one token table for encoder input, decoder input and output.
    assert tied.decoder_embedding is tied.encoder_embedding and tied.output_projection is None
    assert sum("token_embeddings" in weight.path for weight in tied.weights) == 1
    assert tied.encoder_final_norm is None  # post-norm: no final LayerNorm

    untied = Seq2SeqTransformer(tiny_config(target_vocabulary_size=11, tie_embeddings=False, norm_first=True))
    decoder_ids = np.minimum(inputs["decoder_token_ids"], 10)
    logits = untied({"encoder_token_ids": inputs["encoder_token_ids"], "decoder_token_ids": decoder_ids})
    assert tuple(logits.shape) == (8, TARGET_LENGTH, 11)
    assert untied.decoder_embedding is not untied.encoder_embedding
    assert tuple(untied.output_projection.kernel.shape) == (32, 11)
    assert untied.encoder_final_norm is not None and untied.decoder_final_norm is not None

    mixed = Seq2SeqTransformer(tiny_config(), dtype="mixed_bfloat16")
    assert keras.backend.standardize_dtype(mixed(inputs).dtype) == "float32"


def test_separate_target_length_with_learned_positions():
    model = Seq2SeqTransformer(tiny_config(max_target_sequence_length=12, position="learned"))
    assert tuple(model.decoder_embedding.position_embeddings.shape) == (12, 32)  # shared layer, longest side
    logits = model(_inputs([[5, 6, 3]], [[2] + [5] * 11]))
    assert tuple(logits.shape) == (1, 12, VOCABULARY_SIZE)
    with pytest.raises(
        ValueError, match="`encoder_token_ids` has 11 tokens, more than max_sequence_length=10"
    ):
        model(_inputs([[5] * 11], [[2]]))
    with pytest.raises(ValueError, match="has 13 tokens, more than max_target_sequence_length=12"):
        model(_inputs([[5, 3]], [[2] * 13]))
    with pytest.raises(ValueError, match="at most max_target_sequence_length=12; got max_new_tokens=13"):
        model.generate([[5, 3]], max_new_tokens=13)


def test_padding_and_future_tokens_do_not_leak():
    keras.utils.set_random_seed(1)
    model = Seq2SeqTransformer(tiny_config())
    inputs, *_ = reversal_batch()
    reference = np.asarray(model(inputs))
    # Garbage under the encoder padding mask changes nothing.
    noisy = dict(inputs)
    noisy["encoder_token_ids"] = np.where(inputs["encoder_padding_mask"], inputs["encoder_token_ids"], 17)
    np.testing.assert_allclose(np.asarray(model(noisy)), reference, atol=1e-5)
    # Changing the last decoder token changes only the last position's logits (causal decoder).
    unmasked = dict(inputs, decoder_padding_mask=np.ones_like(inputs["decoder_padding_mask"]))
    reference = np.asarray(model(unmasked))
    changed_ids = inputs["decoder_token_ids"].copy()
    changed_ids[:, -1] = 9
    after = np.asarray(model(dict(unmasked, decoder_token_ids=changed_ids)))
    np.testing.assert_allclose(after[:, :-1], reference[:, :-1], atol=1e-5)
    assert np.abs(after[:, -1] - reference[:, -1]).max() > 1e-3


# ---------------------------------------------------------------------------------------------------
# Training and generation.


@pytest.mark.slow
def test_overfits_a_fixed_batch(trained):
    _, losses = trained
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.05 * losses[0], (
        f"loss went from {losses[0]:.3f} to {losses[-1]:.3f} in {len(losses)} steps"
    )


@pytest.mark.slow
def test_cached_greedy_equals_uncached_recompute_and_memorized_targets(trained):
    model, _ = trained
    inputs, labels, *_ = reversal_batch()
    cached = model.generate(inputs["encoder_token_ids"], max_new_tokens=TARGET_LENGTH)
    uncached = uncached_greedy(model, inputs["encoder_token_ids"], TARGET_LENGTH)
    np.testing.assert_array_equal(cached, uncached)
    np.testing.assert_array_equal(cached, labels)  # reversed source + end, padded with pad_id


@pytest.mark.slow
def test_beam_search_with_one_beam_equals_greedy(trained):
    model, _ = trained
    inputs, *_ = reversal_batch()
    source, mask = inputs["encoder_token_ids"], inputs["encoder_padding_mask"]
    scores_by_alpha = {}
    for alpha in (0.0, 1.0, 2.5):
        greedy_ids, greedy_scores = model.generate(
            source, max_new_tokens=TARGET_LENGTH, length_penalty=alpha, return_scores=True
        )
        beam_ids, beam_scores = model.generate(
            source, TARGET_LENGTH, sampler="beam", num_beams=1, length_penalty=alpha, return_scores=True,
            encoder_padding_mask=mask,
        )
        np.testing.assert_array_equal(np.asarray(beam_ids), greedy_ids)
        np.testing.assert_allclose(np.asarray(beam_scores), greedy_scores, rtol=1e-5)
        scores_by_alpha[alpha] = greedy_scores
    assert not np.allclose(scores_by_alpha[0.0], scores_by_alpha[2.5]), "the length penalty changes no score"


@pytest.mark.slow
def test_beam_search_finds_the_best_hypothesis_when_the_beam_covers_all():
    """With a 6-token target vocabulary and 3 steps, 21 beams hold every prefix: beam search is exhaustive."""
    keras.utils.set_random_seed(3)
    model = Seq2SeqTransformer(tiny_config(target_vocabulary_size=6, hidden_dim=16, num_heads=2))
    source = np.array([[5, 6, 7, 8, 3, 0], [9, 4, 3, 0, 0, 0]], "int32")
    steps, tokens = 3, range(1, 6)  # any token but padding; a hypothesis ends at END or after 3 tokens
    hypotheses = [
        h
        for n in range(1, steps + 1)
        for h in itertools.product(tokens, repeat=n)
        if END not in h[:-1] and (n == steps or h[-1] == END)
    ]
    decoder_ids = np.array([[START] + list(h[:-1]) + [PAD] * (steps - len(h)) for h in hypotheses], "int32")
    lengths = np.array([len(h) for h in hypotheses])
    log_probabilities = []
    for row in source:
        logits = model(
            {
                "encoder_token_ids": np.repeat(row[None], len(hypotheses), axis=0),
                "decoder_token_ids": decoder_ids,
                "decoder_padding_mask": np.ones_like(decoder_ids, bool),
            }
        )
        per_token = np.asarray(keras.ops.log_softmax(logits, axis=-1))
        log_probabilities.append(
            [sum(per_token[i, t, token] for t, token in enumerate(h)) for i, h in enumerate(hypotheses)]
        )
    log_probabilities = np.array(log_probabilities)
    winners = set()
    for alpha in (0.0, 1.0, 3.0):
        scores = log_probabilities / ((5 + lengths) / 6) ** alpha
        ids, beam_scores = model.generate(
            source, max_new_tokens=steps, sampler="beam", num_beams=21, length_penalty=alpha, return_scores=True
        )
        for b in range(len(source)):
            best = int(np.argmax(scores[b]))
            expected = list(hypotheses[best]) + [PAD] * (steps - lengths[best])
            np.testing.assert_array_equal(ids[b], expected)
            np.testing.assert_allclose(beam_scores[b], scores[b, best], rtol=1e-4)
            winners.add((b, hypotheses[best]))
    assert len(winners) > len(source), "the length penalty should change some winner; pick another seed"


@pytest.mark.slow
def test_generate_accepts_ragged_lists_and_input_dicts_greedy_and_beam(trained):
    model, _ = trained
    inputs, labels, _, sources = reversal_batch()
    ragged = [source + [END] for source in sources]  # unequal lengths, right-padded by generate
    np.testing.assert_array_equal(model.generate(ragged, max_new_tokens=TARGET_LENGTH), labels)
    np.testing.assert_array_equal(model.generate(inputs, max_new_tokens=TARGET_LENGTH, sampler="beam", num_beams=4), labels)


@pytest.mark.slow
def test_save_load_in_a_fresh_process_reproduces_outputs(trained):
    model, _ = trained
    inputs, *_ = reversal_batch()
    expected_logits = np.asarray(model(inputs))
    script = textwrap.dedent(
        """
        import os, sys
        import numpy as np, keras
        from llm_tf.models import Seq2SeqTransformer  # registers the class for loading
        directory = sys.argv[1]
        model = keras.saving.load_model(os.path.join(directory, "model.keras"))
        inputs = dict(np.load(os.path.join(directory, "inputs.npz")))
        assert model.decoder_embedding is model.encoder_embedding, "tied embeddings came back untied"
        np.savez(os.path.join(directory, "outputs.npz"), logits=np.asarray(model(inputs)))
        """
    )
    with tempfile.TemporaryDirectory() as directory:
        model.save(os.path.join(directory, "model.keras"))
        np.savez(os.path.join(directory, "inputs.npz"), **inputs)
        environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run(
            [sys.executable, "-c", script, directory],
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        reloaded = np.load(os.path.join(directory, "outputs.npz"))
        np.testing.assert_allclose(reloaded["logits"], expected_logits, atol=1e-5)


# ---------------------------------------------------------------------------------------------------
# Bad input.


@pytest.fixture(scope="module")
def untrained():
    return Seq2SeqTransformer(tiny_config())


def _inputs(encoder_ids, decoder_ids):
    return {"encoder_token_ids": np.array(encoder_ids), "decoder_token_ids": np.array(decoder_ids)}


@pytest.mark.parametrize(
    "inputs, message",
    [
        (
            _inputs([[5, 24, 3]], [[2, 5]]),
            r"`encoder_token_ids` holds token id 24, outside the vocabulary \[0, 24\)",
        ),
        (_inputs([[5, 6, 3]], [[2, -1]]), r"`decoder_token_ids` holds token id -1"),
        (
            _inputs([[5] * 11], [[2, 5]]),
            r"`encoder_token_ids` has 11 tokens, more than max_sequence_length=10",
        ),
        (
            _inputs([[5, 3]], [[2] * 11]),
            r"`decoder_token_ids` has 11 tokens, more than max_sequence_length=10",
        ),
        (_inputs([5, 3], [[2]]), r"`encoder_token_ids` must have shape \(batch, sequence\)"),
        ({"encoder_token_ids": np.array([[5, 3]])}, r"misses \['decoder_token_ids'\]"),
        (np.array([[5, 3]]), "expects a dict"),
    ],
)
def test_call_rejects_bad_inputs(untrained, inputs, message):
    with pytest.raises(ValueError, match=message):
        untrained(inputs)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"num_beams": 0}, "num_beams=0"),
        ({"num_beams": 2.0}, "num_beams=2.0"),
        ({"max_new_tokens": 11}, r"at most max_sequence_length=10; got max_new_tokens=11"),
        ({"max_new_tokens": 0}, "max_new_tokens=0"),
        ({"sampler": "nucleus"}, "`sampler` must be one of"),
        ({"length_penalty": -1.0}, "length_penalty=-1.0"),
        ({"encoder_token_ids": [[5, 99, 3]]}, r"holds token id 99, outside the vocabulary \[0, 24\)"),
        ({"encoder_token_ids": [[5] * 12]}, "has 12 tokens, more than max_sequence_length=10"),
        (
            {"encoder_padding_mask": np.ones((1, 2), bool)},
            r"`encoder_padding_mask` must be concrete with the ids' shape",
        ),
    ],
)
def test_generate_rejects_bad_arguments(untrained, arguments, message):
    arguments = {"encoder_token_ids": [[5, 6, 3]], **arguments}
    with pytest.raises(ValueError, match=message):
        untrained.generate(**arguments)


@pytest.mark.slow
def test_generation_traces_once_per_shape_and_samples_reproducibly(untrained):
    source = np.array([[5, 6, 7, 3], [8, 9, 3, 0]], "int32")
    untrained.generate(source, 4)
    count = untrained.generate_trace_count
    untrained.generate((source + 1) % 20, 4)  # new values, same shapes: no new trace
    assert untrained.generate_trace_count == count
    first = untrained.generate(source, 4, sampler="top_k", top_k=5, temperature=3.0, seed=1)
    assert untrained.generate_trace_count == count + 1
    np.testing.assert_array_equal(first, untrained.generate(source, 4, sampler="top_k", top_k=5, temperature=3.0, seed=1))
    # temperature and length_penalty are values of the compiled loop, not part of its key
    untrained.generate(source, 4, sampler="top_k", top_k=5, temperature=0.5, length_penalty=2.0, seed=1)
    assert untrained.generate_trace_count == count + 1
    draws = {untrained.generate(source, 4, sampler="temperature", temperature=5.0, seed=s).tobytes() for s in range(6)}
    assert len(draws) > 1, "different seeds should give different samples"
    assert np.all(first[:, 0] != PAD)  # padding is never generated
