"""GPT: config and presets, forward pass, training, fresh-process reload, cached generation, scoring, errors."""

import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
import pytest

from llm_tf.models import GPT, GPT_PRESETS, GPTConfig
from tests.layer_checks import REPO_ROOT

VOCABULARY = 31
NEW_TOKENS = 8  # one decoding length throughout, so tests share compiled loops


def tiny_config(**overrides):
    values = dict(
        vocabulary_size=VOCABULARY,
        max_sequence_length=40,
        hidden_dim=32,
        num_layers=2,
        num_heads=4,
        intermediate_dim=64,
        # A wide initializer makes the random model's predictions peaked, so decoding paths that differ
        # only by float rounding cannot flip a near-tie.
        initializer_range=0.3,
    )
    values.update(overrides)
    return GPTConfig(**values)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return GPT(tiny_config())


@pytest.fixture(scope="module")
def prompts():
    return np.random.default_rng(0).integers(1, VOCABULARY, size=(3, 6)).astype("int32")


def uncached_greedy(model, prompt_ids, max_new_tokens):
    """Reference decoding: rerun the full forward pass on the growing sequence, take the argmax."""
    sequence = np.asarray(prompt_ids)
    for _ in range(max_new_tokens):
        logits = np.asarray(model(sequence, training=False))[:, -1]
        sequence = np.concatenate([sequence, logits.argmax(-1)[:, None].astype("int32")], axis=1)
    return sequence


# ---- config and presets --------------------------------------------------------------------------------


def test_config_json_round_trip_and_presets():
    config = tiny_config(dropout=0.1, attention_dropout=0.0, activation="relu", tie_embeddings=False)
    assert GPTConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert GPTConfig.from_json(config.to_json()) == config
    assert set(GPT_PRESETS) == {"tiny", "mini", "small", "base"}
    small = GPTConfig.from_preset("small")
    assert (small.num_layers, small.hidden_dim, small.num_heads, small.vocabulary_size) == (
        12,
        768,
        12,
        50257,
    )
    assert small.max_sequence_length == 1024 and small.intermediate_dim == 3072
    assert GPTConfig.from_preset("base").num_layers == 24
    assert GPTConfig.from_preset("tiny", vocabulary_size=65).vocabulary_size == 65


def test_unknown_preset_and_bad_config_raise():
    with pytest.raises(ValueError, match=r"unknown GPT preset 'huge'.*'base'.*'tiny'"):
        GPTConfig.from_preset("huge")
    with pytest.raises(ValueError, match=r"unknown GPT preset"):
        GPT.from_preset("gpt5")
    with pytest.raises(ValueError, match=r"hidden_dim.*divisible.*num_heads"):
        tiny_config(num_heads=5)
    with pytest.raises(ValueError, match=r"activation"):
        tiny_config(activation="swish42")
    with pytest.raises(ValueError, match=r"num_layers=0"):
        tiny_config(num_layers=0)
    with pytest.raises(ValueError, match=r"dropout=1.5"):
        tiny_config(dropout=1.5)
    with pytest.raises(ValueError, match=r"unknown GPTConfig fields \['n_embd'\]"):
        GPTConfig.from_dict({**tiny_config().to_dict(), "n_embd": 3})


# ---- forward pass --------------------------------------------------------------------------------------


def test_forward_shapes_sublayers_and_tied_head(model, prompts):
    logits = model(prompts)
    assert (
        tuple(logits.shape) == (3, 6, VOCABULARY)
        and keras.backend.standardize_dtype(logits.dtype) == "float32"
    )
    assert len(model.blocks) == 2 and model.final_norm is not None and model.lm_head is None
    # Tied head: the logits are the final hidden states times the token table, and no extra weight exists.
    paths = [w.path for w in model.weights]
    assert not any("lm_head" in p for p in paths)
    untied = GPT(tiny_config(tie_embeddings=False))
    assert untied.count_params() == model.count_params() + 32 * VOCABULARY


def test_forward_is_causal(model, prompts):
    changed = prompts.copy()
    changed[:, 4] = (changed[:, 4] + 1) % VOCABULARY
    before, after = np.asarray(model(prompts)), np.asarray(model(changed))
    np.testing.assert_allclose(after[:, :4], before[:, :4], atol=1e-5)
    assert not np.allclose(after[:, 4:], before[:, 4:])


def test_left_padded_forward_matches_unpadded(model, prompts):
    padded = np.concatenate([np.zeros((3, 3), "int32"), prompts], axis=1)
    mask = np.concatenate([np.zeros((3, 3), bool), np.ones_like(prompts, bool)], axis=1)
    out = np.asarray(model({"token_ids": padded, "padding_mask": mask}))
    np.testing.assert_allclose(out[:, 3:], np.asarray(model(prompts)), atol=1e-4)


def test_logits_are_float32_under_mixed_precision(prompts):
    mixed = GPT(tiny_config(), dtype="mixed_bfloat16")
    logits = mixed(prompts)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32" and np.all(
        np.isfinite(np.asarray(logits))
    )
    assert mixed.blocks[0].compute_dtype == "bfloat16"


@pytest.mark.slow
def test_overfits_a_fixed_batch_with_xla():
    keras.utils.set_random_seed(1)
    config = tiny_config(initializer_range=0.02, max_sequence_length=16)
    gpt = GPT(config)
    data = np.random.default_rng(1).integers(0, VOCABULARY, size=(4, 17)).astype("int32")
    x, y = data[:, :-1], data[:, 1:]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    start = float(loss(y, gpt(x)))
    gpt.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss, jit_compile=True)
    # The same batch 25 times per epoch: 150 steps in 6 epochs, with little per-epoch overhead.
    repeats = 25
    history = gpt.fit(np.tile(x, (repeats, 1)), np.tile(y, (repeats, 1)), batch_size=4, epochs=6, verbose=0)
    final = history.history["loss"][-1]  # the mean over the last 25 steps: an upper bound of the final loss
    assert final < 0.05 * start, f"loss went from {start:.3f} only to {final:.3f}"


_RELOAD_SCRIPT = """
import sys, numpy as np, keras
import llm_tf.models.gpt  # registers GPT
model = keras.saving.load_model(sys.argv[1])
data = np.load(sys.argv[2])
np.savez(sys.argv[3], logits=np.asarray(model(data["ids"])), tied=np.asarray(model.embedding.token_embeddings),
         has_head=np.asarray(model.lm_head is not None))
"""


@pytest.mark.slow
def test_keras_save_load_in_fresh_process(model, prompts):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "gpt.keras")
        model.save(path)
        np.savez(os.path.join(directory, "in.npz"), ids=prompts)
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _RELOAD_SCRIPT,
                path,
                os.path.join(directory, "in.npz"),
                f"{directory}/out.npz",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3"),
        )
        assert result.returncode == 0, result.stderr[-3000:]
        reloaded = np.load(os.path.join(directory, "out.npz"))
        np.testing.assert_allclose(reloaded["logits"], np.asarray(model(prompts)), atol=1e-5, rtol=0)
        np.testing.assert_array_equal(reloaded["tied"], np.asarray(model.embedding.token_embeddings))
        assert not bool(reloaded["has_head"])


def test_eager_call_rejects_bad_token_ids_and_long_sequences(model):
    with pytest.raises(ValueError, match=r"vocabulary_size=31.*token id 31"):
        model(np.array([[1, 31]]))
    with pytest.raises(ValueError, match=r"token id -1"):
        model(np.array([[1, -1]]))
    with pytest.raises(ValueError, match=r"41 tokens.*max_sequence_length=40"):
        model(np.ones((1, 41), "int32"))
    with pytest.raises(ValueError, match=r"token_ids"):
        model({"ids": np.ones((1, 3), "int32")})


# ---- generation ---------------------------------------------------------------------------------------


def test_cached_greedy_equals_uncached_recompute(model, prompts):
    generated = model.generate(prompts, max_new_tokens=NEW_TOKENS)
    assert generated.shape == (3, 6 + NEW_TOKENS) and generated.dtype == np.int32
    np.testing.assert_array_equal(generated, uncached_greedy(model, prompts, NEW_TOKENS))


def test_cached_decoding_matches_for_other_architectures(prompts):
    """The cached decoding step handles every switch: post-norm, no biases, untied head, sinusoidal positions."""
    keras.utils.set_random_seed(2)
    variant = GPT(
        tiny_config(
            norm_first=False,
            use_bias=False,
            tie_embeddings=False,
            final_norm=False,
            position="sinusoidal",
            activation="relu",
        )
    )
    np.testing.assert_array_equal(variant.generate(prompts, 5), uncached_greedy(variant, prompts, 5))


@pytest.mark.slow
def test_generation_traces_once_per_shape(model, prompts):
    model.generate(prompts, max_new_tokens=NEW_TOKENS)
    count = model.generate_trace_count
    model.generate((prompts + 1) % VOCABULARY, max_new_tokens=NEW_TOKENS)
    model.generate(prompts[::-1].copy(), max_new_tokens=NEW_TOKENS)
    assert model.generate_trace_count == count
    model.generate(prompts, max_new_tokens=NEW_TOKENS, sampler="top_k", top_k=3, seed=1)
    count = model.generate_trace_count
    model.generate(
        prompts, max_new_tokens=NEW_TOKENS, sampler="top_k", top_k=3, seed=2
    )  # a new seed is a value
    assert model.generate_trace_count == count
    model.generate(prompts, max_new_tokens=NEW_TOKENS, sampler="top_p", top_p=0.9, temperature=0.8, seed=1)
    count = model.generate_trace_count
    # temperature, top_p and length_penalty are values too; the result follows them (a top_p that keeps only
    # the likeliest token is greedy)
    model.generate(prompts, max_new_tokens=NEW_TOKENS, sampler="top_p", top_p=0.5, temperature=1.3, seed=1)
    nucleus_of_one = model.generate(prompts, max_new_tokens=NEW_TOKENS, sampler="top_p", top_p=1e-6, seed=1)
    assert model.generate_trace_count == count
    np.testing.assert_array_equal(nucleus_of_one, model.generate(prompts, max_new_tokens=NEW_TOKENS))
    model.generate(prompts, NEW_TOKENS, sampler="beam", num_beams=2, length_penalty=0.6)
    count = model.generate_trace_count
    model.generate(prompts, NEW_TOKENS, sampler="beam", num_beams=2, length_penalty=1.5)
    assert model.generate_trace_count == count
    model.generate(prompts[:2], max_new_tokens=NEW_TOKENS)  # a new batch size is a new shape
    assert model.generate_trace_count == count + 1


def test_beam_search_with_one_beam_equals_greedy(model, prompts):
    greedy = model.generate(prompts, max_new_tokens=NEW_TOKENS)
    np.testing.assert_array_equal(model.generate(prompts, NEW_TOKENS, sampler="beam", num_beams=1), greedy)


@pytest.mark.slow
def test_full_width_beam_search_is_exact(model, prompts):
    """With as many beams as tokens, two steps of beam search find the best of all V² continuations."""
    beam = model.generate(prompts[:1], 2, sampler="beam", num_beams=VOCABULARY, length_penalty=0.0)
    first, second = np.meshgrid(np.arange(VOCABULARY), np.arange(VOCABULARY), indexing="ij")
    candidates = np.concatenate(
        [np.repeat(prompts[:1], VOCABULARY**2, axis=0), first.reshape(-1, 1), second.reshape(-1, 1)], axis=1
    ).astype("int32")
    totals = model.score(candidates)["log_probabilities"][:, -2:].sum(axis=1)
    np.testing.assert_array_equal(beam[0], candidates[np.argmax(totals)])


@pytest.mark.slow
def test_sampling_is_reproducible_and_seed_dependent(model, prompts):
    for sampler in ("temperature", "top_k", "top_p"):
        kwargs = dict(sampler=sampler, temperature=2.0, top_k=10, top_p=0.95)
        first = model.generate(prompts, NEW_TOKENS, seed=7, **kwargs)
        np.testing.assert_array_equal(first, model.generate(prompts, NEW_TOKENS, seed=7, **kwargs))
        assert not np.array_equal(first, model.generate(prompts, NEW_TOKENS, seed=8, **kwargs)), sampler


@pytest.mark.slow
def test_degenerate_samplers_equal_greedy(model, prompts):
    greedy = model.generate(prompts, NEW_TOKENS)
    np.testing.assert_array_equal(
        model.generate(prompts, NEW_TOKENS, sampler="top_k", top_k=1, seed=3), greedy
    )
    np.testing.assert_array_equal(
        model.generate(prompts, NEW_TOKENS, sampler="top_p", top_p=1e-6, seed=3), greedy
    )


def test_top_k_samples_stay_in_the_top_k(model, prompts):
    logits = np.asarray(model(prompts))[:, -1]
    top3 = np.argsort(logits, axis=-1)[:, -3:]
    firsts = np.stack(
        [
            model.generate(prompts, 1, sampler="top_k", top_k=3, temperature=5.0, seed=s)[:, -1]
            for s in range(12)
        ]
    )
    for row in range(len(prompts)):
        assert set(firsts[:, row]) <= set(top3[row])
    assert len({tuple(f) for f in firsts}) > 1  # the draws do vary


def test_padded_prompts_continue_like_unpadded_ones(model, prompts):
    # Each prompt alone, decoded by full recomputation (no padding, no cache).
    alone = [uncached_greedy(model, prompts[i : i + 1, : 3 + i], 6)[0, 3 + i :] for i in range(3)]
    ragged = [list(prompts[i, : 3 + i]) for i in range(3)]
    left = model.generate(ragged, 6)  # a list of lists is left-padded
    assert left.shape == (3, 11)
    right_ids = np.zeros((3, 5), "int32")
    right_mask = np.zeros((3, 5), bool)
    for i in range(3):
        right_ids[i, : 3 + i] = prompts[i, : 3 + i]
        right_mask[i, : 3 + i] = True
    right = model.generate({"token_ids": right_ids, "padding_mask": right_mask}, 6)
    for i in range(3):
        np.testing.assert_array_equal(left[i, 5:], alone[i])
        np.testing.assert_array_equal(right[i, 5:], alone[i])
        np.testing.assert_array_equal(left[i, 5 - (3 + i) : 5], prompts[i, : 3 + i])
    np.testing.assert_array_equal(right, left)  # right padding is moved to the left


@pytest.mark.slow
def test_stop_tokens_end_rows_with_padding(model, prompts):
    greedy = model.generate(prompts, NEW_TOKENS)
    stop = int(greedy[0, 6 + 2])  # row 0's third new token
    stopped = model.generate(prompts, NEW_TOKENS, stop_token_ids=[stop])
    for row in range(3):
        hits = np.flatnonzero(greedy[row, 6:] == stop)
        end = 6 + (hits[0] + 1 if hits.size else NEW_TOKENS)
        np.testing.assert_array_equal(stopped[row, :end], greedy[row, :end])
        assert np.all(stopped[row, end:] == 0)
    beam = model.generate(prompts, NEW_TOKENS, sampler="beam", num_beams=2, stop_token_ids=stop)
    for row in range(3):
        hits = np.flatnonzero(beam[row, 6:] == stop)
        if hits.size:
            assert np.all(beam[row, 6 + hits[0] + 1 :] == 0)


def test_generate_rejects_bad_arguments(model, prompts):
    with pytest.raises(ValueError, match=r"prompt too long.*max_sequence_length=40"):
        model.generate(np.ones((1, 41), "int32"), 1)
    with pytest.raises(ValueError, match=r"prompt_length=30 \+ max_new_tokens=20 = 50 exceeds.*40"):
        model.generate(np.ones((1, 30), "int32"), 20)
    for top_p in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=rf"`top_p` must be a number in \(0, 1\]; got top_p={top_p}"):
            model.generate(prompts, 2, sampler="top_p", top_p=top_p)
    for temperature in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"`temperature` must be a number > 0"):
            model.generate(prompts, 2, sampler="temperature", temperature=temperature)
    with pytest.raises(ValueError, match=r"`top_k` must be a positive integer or None; got top_k=0"):
        model.generate(prompts, 2, sampler="top_k", top_k=0)
    with pytest.raises(ValueError, match=r"vocabulary_size=31.*token id 99"):
        model.generate(np.array([[1, 99]]), 2)
    with pytest.raises(ValueError, match=r"stop_token_ids.*token id 31"):
        model.generate(prompts, 2, stop_token_ids=[31])
    with pytest.raises(ValueError, match=r"`sampler` must be one of"):
        model.generate(prompts, 2, sampler="nucleus")
    with pytest.raises(ValueError, match=r"max_new_tokens"):
        model.generate(prompts, 0)
    with pytest.raises(ValueError, match=r"padding between real tokens"):
        model.generate({"token_ids": prompts, "padding_mask": np.array([[1, 0, 1, 1, 1, 1]] * 3, bool)}, 2)
    with pytest.raises(ValueError, match=r"prompt 0 is empty"):
        model.generate({"token_ids": prompts[:1], "padding_mask": np.zeros((1, 6), bool)}, 2)


# ---- scoring ------------------------------------------------------------------------------------------


def test_score_matches_the_forward_pass(model, prompts):
    scored = model.score(prompts)
    logits = np.asarray(model(prompts), dtype="float64")
    shifted = logits - logits.max(-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    expected = np.take_along_axis(log_softmax[:, :-1], prompts[:, 1:, None], axis=-1)[..., 0]
    np.testing.assert_allclose(scored["log_probabilities"], expected, atol=1e-4)
    np.testing.assert_allclose(scored["perplexity"], np.exp(-expected.mean(axis=1)), rtol=1e-4)
    np.testing.assert_allclose(scored["corpus_perplexity"], np.exp(-expected.mean()), rtol=1e-4)
    # Padding is ignored: a right-padded copy scores its real tokens the same.
    padded = np.concatenate([prompts, np.zeros((3, 2), "int32")], axis=1)
    mask = np.concatenate([np.ones_like(prompts, bool), np.zeros((3, 2), bool)], axis=1)
    np.testing.assert_allclose(model.score(padded, mask)["perplexity"], scored["perplexity"], rtol=1e-4)


# ---- classifier-free guidance ---------------------------------------------------------------------------


def uncached_guided_greedy(model, prompt_rows, negative_rows, scale, max_new_tokens):
    """Reference: full forward passes over both growing sequences, argmax of the guided log-probabilities."""
    def log_softmax(logits):
        shifted = logits - logits.max(-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))

    rows, negatives, new = [list(r) for r in prompt_rows], [list(r) for r in negative_rows], []
    for _ in range(max_new_tokens):
        chosen = []
        for row, negative in zip(rows, negatives):
            conditional = log_softmax(np.asarray(model(np.array([row]), training=False))[0, -1])
            unconditional = log_softmax(np.asarray(model(np.array([negative]), training=False))[0, -1])
            chosen.append(int(np.argmax(unconditional + scale * (conditional - unconditional))))
        for row, negative, token in zip(rows, negatives, chosen):
            row.append(token)
            negative.append(token)
        new.append(chosen)
    return np.array(new).T


def test_guided_greedy_equals_the_uncached_reference_and_scales_0_and_1_are_the_two_prompts(model, prompts):
    negatives = [list(prompts[0, 3:]), list(prompts[1, :2]), list(prompts[2, 1:])]  # shorter, ragged
    guided = model.generate(prompts, NEW_TOKENS, negative_prompt_ids=negatives, guidance_scale=2.5)
    expected = uncached_guided_greedy(model, prompts, negatives, 2.5, NEW_TOKENS)
    np.testing.assert_array_equal(guided[:, -NEW_TOKENS:], expected)
    np.testing.assert_array_equal(guided[:, :-NEW_TOKENS], prompts)  # the prompts are the longer set here
    # Scale 1 decodes the prompts, scale 0 the negative prompts (both rows still run side by side).
    plain = model.generate(prompts, NEW_TOKENS)
    np.testing.assert_array_equal(
        model.generate(prompts, NEW_TOKENS, negative_prompt_ids=negatives, guidance_scale=1.0), plain)
    np.testing.assert_array_equal(
        model.generate(prompts, NEW_TOKENS, negative_prompt_ids=negatives, guidance_scale=0.0)[:, -NEW_TOKENS:],
        model.generate(negatives, NEW_TOKENS)[:, -NEW_TOKENS:])
    assert not np.array_equal(guided, plain)  # the guidance changed something


def test_guided_sampling_is_reproducible_and_bad_guidance_arguments_raise(model, prompts):
    negatives = prompts[:, 2:]
    first = model.generate(prompts, NEW_TOKENS, sampler="top_p", top_p=0.9, seed=3, negative_prompt_ids=negatives,
                           guidance_scale=1.5)
    again = model.generate(prompts, NEW_TOKENS, sampler="top_p", top_p=0.9, seed=3, negative_prompt_ids=negatives,
                           guidance_scale=1.5)
    np.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match="beam"):
        model.generate(prompts, NEW_TOKENS, sampler="beam", negative_prompt_ids=negatives, guidance_scale=2.0)
    with pytest.raises(ValueError, match="guidance_scale"):
        model.generate(prompts, NEW_TOKENS, negative_prompt_ids=negatives, guidance_scale=-1.0)
    with pytest.raises(ValueError, match="one prompt per prompt"):
        model.generate(prompts, NEW_TOKENS, negative_prompt_ids=negatives[:2], guidance_scale=2.0)
