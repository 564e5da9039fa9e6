"""Autoregressive generation shared by every model: samplers, one beam search, stop tokens, compile-once.

A model plugs in through two things:

* ``step(tokens, step, state) -> (logits, state)``: feeds the token generated at step ``step - 1``
  (int ``(rows,)``) and returns float32 ``(rows, V)`` logits for step ``step`` plus the updated decoding
  state (its key/value caches);
* ``reorder(state, rows) -> state`` (beam search only): gathers the state rows a beam continues from.

The model computes the logits of step 0 itself (a GPT from its prompt in one prefill pass, an
encoder–decoder from its start token) and hands them in as ``first_logits``. :func:`sample_loop` and
:func:`beam_search` then emit ``max_new_tokens`` tokens in one ``ops.while_loop``, ending early once every
row has produced a stop token. A row that stopped keeps its stop token and is padded with ``pad_id``.

Samplers (``sampler=``): ``"greedy"`` (argmax), ``"temperature"`` (sample ``softmax(logits / T)``),
``"top_k"`` (sample among the ``top_k`` most likely), ``"top_p"`` (nucleus: the most likely tokens whose
probability sums to ``top_p``) and ``"beam"`` (beam search with ``num_beams`` beams). Random draws are a
pure function of ``(seed, step, row)``, so a seed reproduces a sample exactly, compiled or not.

**The length penalty** (one, for every model): a hypothesis ``y`` is scored
``log P(y) / lp(|y|)`` with the GNMT penalty ``lp(n) = ((5 + n) / 6) ** length_penalty`` (Wu et al.,
2016), where ``n`` counts generated tokens including the stop token. Beam search ranks its candidates by
this score at every step and returns the best-scoring beam; ``length_penalty=0`` ranks by plain
log-probability, larger values favour longer outputs.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from llm_tf.checks import (
    check_choice,
    check_int,
    check_number,
    check_positive_int,
    check_probability,
    is_int,
)

SAMPLERS = ("greedy", "temperature", "top_k", "top_p", "beam")
# A finite "minus infinity": -inf would turn `-inf - -inf` into NaN.
NEGATIVE_INFINITY = -1e9


# ---- compile once ------------------------------------------------------------------------------------


def compile_once(function, xla=True):
    """Compile ``function`` with XLA on TensorFlow (``tf.function(jit_compile=True)``); other backends run it as is.

    ``xla=False`` makes a TensorFlow graph without XLA instead (TensorFlow's own kernels: its matrix-vector
    product runs on every core, XLA's on one).

    The compiled function retraces only for new input shapes, never for new values. On JAX and PyTorch the
    loop runs eagerly (``ops.while_loop`` still compiles its body on JAX): a cached ``jax.jit`` would freeze
    the weights it first saw, so generating after more training would silently use stale weights.
    """
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=xla)
    return function


class CompiledLoops:
    """One compiled generation loop per key (shapes and sampler settings); counts the traces."""

    def __init__(self):
        self.functions = {}
        self.trace_count = 0

    def __call__(self, key, build, *arguments):
        """Run ``build()``'s function on ``arguments``, compiling it the first time ``key`` is seen."""
        if key not in self.functions:
            function = build()

            def traced(*values):
                self.trace_count += 1
                return function(*values)

            self.functions[key] = compile_once(traced)
        return self.functions[key](*arguments)


# ---- arguments --------------------------------------------------------------------------------------


def check_guidance_scale(guidance_scale, sampler):
    """A classifier-free guidance scale as a float >= 0 (ValueError otherwise, and with beam search)."""
    check_number("guidance_scale", guidance_scale, minimum=0)
    if sampler == "beam":
        raise ValueError("`negative_prompt_ids` (classifier-free guidance) does not work with sampler='beam'.")
    return float(guidance_scale)


def check_max_new_tokens(max_new_tokens, limit, limit_name):
    """``max_new_tokens`` as an int in ``[1, limit]``; ValueError naming the argument otherwise."""
    check_positive_int("max_new_tokens", max_new_tokens)
    if max_new_tokens > limit:
        raise ValueError(
            f"`max_new_tokens` must be at most {limit_name}={limit}; got max_new_tokens={max_new_tokens}."
        )
    return int(max_new_tokens)


def check_seed(seed):
    """An integer seed as a uint32 array (``None`` draws one)."""
    check_int("seed", seed, allow_none=True)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**32))
    return np.asarray(int(seed) % 2**32, dtype="uint32")


def generation_settings(
    sampler, temperature, top_k, top_p, num_beams, length_penalty, stop_token_ids, vocabulary_size
):
    """Check the sampler arguments; returns the hashable settings tuple that keys the compiled loops.

    Only the settings the chosen sampler uses enter the tuple, so unused ones never cause a retrace.
    """
    check_choice("sampler", sampler, list(SAMPLERS))
    check_number("temperature", temperature, minimum=0, exclusive_minimum=True)
    check_positive_int("top_k", top_k, allow_none=True)
    if top_k is not None and top_k > vocabulary_size:
        raise ValueError(f"`top_k` must be at most vocabulary_size={vocabulary_size}; got top_k={top_k}.")
    if top_p is not None:
        check_probability("top_p", top_p, allow_zero=False)
    check_positive_int("num_beams", num_beams)
    check_number("length_penalty", length_penalty, minimum=0)
    if stop_token_ids is None:
        stop_token_ids = ()
    elif is_int(stop_token_ids):
        stop_token_ids = (stop_token_ids,)
    stop_token_ids = tuple(sorted({int(t) for t in stop_token_ids}))
    bad = [t for t in stop_token_ids if not 0 <= t < vocabulary_size]
    if bad:
        raise ValueError(
            f"`stop_token_ids` must hold ids in [0, vocabulary_size={vocabulary_size}); got a token id {bad[0]}."
        )
    return (
        sampler,
        float(temperature) if sampler in ("temperature", "top_k", "top_p") else None,
        (50 if top_k is None else min(int(top_k), vocabulary_size)) if sampler == "top_k" else None,
        (0.9 if top_p is None else float(top_p)) if sampler == "top_p" else None,
        int(num_beams) if sampler == "beam" else None,
        float(length_penalty),
        stop_token_ids,
    )


#: Positions in the settings tuple of the settings that are values, not structure (temperature, top_p,
#: length_penalty): they reach the compiled loop as one float32 vector, so trying another temperature or
#: length penalty reuses the compiled loop instead of compiling a new one (seconds each on a CPU).
_VALUE_SETTINGS = (1, 3, 5)


def compile_key_and_values(settings):
    """Split :func:`generation_settings`'s tuple into the part that keys the compiled loops and the values.

    Returns:
        ``(key, values)``: ``key`` is ``settings`` with each value setting in use replaced by the marker
        ``"value"`` (unused ones stay None), ``values`` a float32 numpy array ``(3,)`` of temperature,
        top_p and length_penalty (0 where unused). :func:`settings_in_graph` puts them back together.

    Example:

    >>> key, values = compile_key_and_values(generation_settings("top_p", 0.8, None, 0.9, 4, 1.0, None, 10))
    >>> key[:4], [round(float(value), 3) for value in values]
    (('top_p', 'value', None, 'value'), [0.8, 0.9, 1.0])
    """
    key = tuple(
        "value" if index in _VALUE_SETTINGS and setting is not None else setting
        for index, setting in enumerate(settings)
    )
    values = np.array([0.0 if settings[i] is None else settings[i] for i in _VALUE_SETTINGS], dtype="float32")
    return key, values


def settings_in_graph(key, values):
    """The settings tuple inside the compiled loop: :func:`compile_key_and_values`'s key, with each value
    setting read from the ``values`` tensor."""
    settings = list(key)
    for slot, index in enumerate(_VALUE_SETTINGS):
        if key[index] is not None:
            settings[index] = values[slot]
    return tuple(settings)


# ---- the length penalty and the samplers -------------------------------------------------------------


def length_penalty_factor(length, alpha):
    """GNMT length penalty ``lp(n) = ((5 + n) / 6) ** alpha`` (Wu et al., 2016).

    Args:
        length: int tensor of hypothesis lengths (generated tokens including the stop token).
        alpha: the exponent (``length_penalty`` of ``generate``), >= 0.

    Example:

    >>> float(length_penalty_factor(7, 1.0))
    2.0
    """
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


def row_uniforms(seed, step, batch_size):
    """One uniform number in (0, 1) per row, a pure function of ``(seed, step, row)``.

    A counter-based integer hash (two rounds of the "lowbias32" mixer) in uint32 arithmetic, so the
    draw is stateless and identical inside and outside compiled code on every backend.
    """

    def wrap(x):
        # Keras's PyTorch backend holds "uint32" in int64, where products and sums do not wrap at 2**32:
        # keeping the low 32 bits gives uint32 arithmetic there too (a no-op on TensorFlow and JAX).
        return ops.bitwise_and(x, np.uint32(0xFFFFFFFF))

    def mix(x):
        x = ops.bitwise_xor(x, ops.right_shift(x, np.uint32(16)))
        x = wrap(ops.multiply(x, np.uint32(0x7FEB352D)))
        x = ops.bitwise_xor(x, ops.right_shift(x, np.uint32(15)))
        x = wrap(ops.multiply(x, np.uint32(0x846CA68B)))
        return ops.bitwise_xor(x, ops.right_shift(x, np.uint32(16)))

    rows = ops.cast(ops.arange(batch_size, dtype="int32"), "uint32")
    x = mix(wrap(ops.cast(seed, "uint32") + wrap(ops.multiply(ops.cast(step, "uint32"), np.uint32(0x9E3779B9)))))
    x = mix(ops.bitwise_xor(x, wrap(ops.multiply(rows + np.uint32(1), np.uint32(0x85EBCA6B)))))
    # The top 24 bits give an exact float32 in [0, 1); the half step keeps it strictly inside (0, 1).
    return (ops.cast(ops.right_shift(x, np.uint32(8)), "float32") + 0.5) / 16777216.0


def _sample_from(probabilities, uniforms):
    """Inverse-CDF sampling: the first index whose cumulative probability reaches ``u · total``."""
    cumulative = ops.cumsum(probabilities, axis=-1)
    threshold = uniforms[:, None] * cumulative[:, -1:]
    index = ops.sum(ops.cast(cumulative < threshold, "int32"), axis=-1)
    return ops.minimum(index, ops.shape(probabilities)[-1] - 1)


def select_tokens(logits, sampler, temperature, top_k, top_p, seed, step):
    """Next token per row from float32 ``logits`` ``(batch, V)`` for the non-beam samplers."""
    if sampler == "greedy" or (sampler == "top_k" and top_k == 1):
        return ops.cast(ops.argmax(logits, axis=-1), "int32")
    logits = logits / temperature
    uniforms = row_uniforms(seed, step, ops.shape(logits)[0])
    if sampler == "temperature":
        return ops.cast(_sample_from(ops.softmax(logits, axis=-1), uniforms), "int32")
    if sampler == "top_p":
        return _sample_top_p(logits, top_p, uniforms)
    values, indices = ops.top_k(logits, top_k)
    return _sample_among(ops.softmax(values, axis=-1), indices, uniforms)


def _sample_among(probabilities, indices, uniforms):
    """Sample a position of ``probabilities`` (rows need not sum to 1) and return its id from ``indices``."""
    choice = _sample_from(probabilities, uniforms)
    return ops.cast(ops.take_along_axis(indices, choice[:, None], axis=-1)[:, 0], "int32")


#: Candidate counts :func:`_sample_top_p` tries before sorting the whole vocabulary.
TOP_P_CANDIDATES = (256, 4096)


def _sample_top_p(logits, top_p, uniforms):
    """Nucleus sampling: the smallest prefix of the sorted tokens whose mass reaches ``top_p``.

    Sorting the whole vocabulary at every step is the expensive part (16 × 16k logits: 49 ms on one
    CPU core, top 256: 2 ms). The nucleus lies inside the ``k`` most likely tokens as soon as their
    probability (under the full softmax) sums to ``top_p``, since every later token then has at least
    ``top_p`` of mass before it. So the ``k`` best are taken for the first ``k`` of
    :data:`TOP_P_CANDIDATES` that covers every row, and the full sort only when none does: the result
    is the full sort's (to float rounding).
    """
    vocabulary_size = logits.shape[-1]
    log_normalizer = ops.logsumexp(logits, axis=-1, keepdims=True)
    sizes = [k for k in TOP_P_CANDIDATES if k < vocabulary_size] + [vocabulary_size]

    def nucleus(probabilities, indices):
        mass_before = ops.cumsum(probabilities, axis=-1) - probabilities
        kept = ops.where(mass_before < top_p, probabilities, ops.zeros_like(probabilities))
        return _sample_among(kept, indices, uniforms)

    def attempt(level):
        values, indices = ops.top_k(logits, sizes[level])
        probabilities = ops.exp(values - log_normalizer)
        if level == len(sizes) - 1:
            return nucleus(probabilities, indices)
        covered = ops.all(ops.sum(probabilities, axis=-1) >= top_p)
        return ops.cond(covered, lambda: nucleus(probabilities, indices), lambda: attempt(level + 1))

    return attempt(0)


def _is_stop(tokens, stop_token_ids):
    if not stop_token_ids:
        return ops.zeros(ops.shape(tokens), dtype="bool")
    stop_ids = ops.convert_to_tensor(np.asarray(stop_token_ids, dtype="int32"))
    return ops.any(ops.equal(tokens[..., None], stop_ids), axis=-1)


def _banned_mask(vocabulary_size, banned_token_ids):
    return ops.convert_to_tensor(np.isin(np.arange(vocabulary_size), list(banned_token_ids)))


# ---- the two loops ----------------------------------------------------------------------------------


def guided_scores(logits, batch_size, guidance_scale):
    """Classifier-free guidance: ``log p_neg + scale * (log p - log p_neg)`` per token.

    Args:
        logits: float32 ``(2 * batch_size, V)``: rows ``[0, batch_size)`` under the prompts, the next
            ``batch_size`` rows under their negative prompts.
        batch_size: the number of prompts.
        guidance_scale: Python float >= 0 (1: the prompts' log-probabilities; 0: the negative prompts').

    Returns:
        float32 ``(batch_size, V)`` scores, used by the samplers as logits.
    """
    log_probabilities = ops.log_softmax(logits, axis=-1)
    conditional, negative = log_probabilities[:batch_size], log_probabilities[batch_size:]
    return negative + guidance_scale * (conditional - negative)


def sample_loop(step, first_logits, state, max_new_tokens, settings, seed, pad_id=0, banned_token_ids=()):
    """Greedy or sampled decoding of ``max_new_tokens`` tokens per row.

    Args:
        step: ``step(tokens, step, state) -> (logits, state)`` (see the module docstring).
        first_logits: float32 ``(batch, V)``, the logits of step 0.
        state: the decoding state ``step`` takes (any nest of tensors).
        max_new_tokens: Python int.
        settings: :func:`generation_settings`'s tuple (not ``"beam"``).
        seed: uint32 scalar tensor.
        pad_id: what follows a stop token.
        banned_token_ids: ids never generated (an encoder–decoder never generates padding).

    Returns:
        ``(tokens (batch, max_new_tokens) int32, scores (batch,) float32)``: the scores are
        ``log P(tokens) / lp(length)`` under the model's (untempered) distribution.
    """
    sampler, temperature, top_k, top_p, _, length_penalty, stop_token_ids = settings
    batch_size, vocabulary_size = first_logits.shape
    banned = _banned_mask(vocabulary_size, banned_token_ids) if banned_token_ids else None

    def choose(logits, index, finished):
        allowed = logits if banned is None else ops.where(banned[None, :], NEGATIVE_INFINITY, logits)
        tokens = select_tokens(allowed, sampler, temperature, top_k, top_p, seed, index)
        tokens = ops.where(finished, pad_id, tokens)
        log_probability = ops.take_along_axis(ops.log_softmax(logits, axis=-1), tokens[:, None], axis=-1)[:, 0]
        return tokens, ops.where(finished, 0.0, log_probability)

    no_row_finished = ops.zeros((batch_size,), "bool")
    tokens, log_probability = choose(first_logits, 0, no_row_finished)
    output = ops.full((batch_size, max_new_tokens), pad_id, "int32")
    output = ops.slice_update(output, [0, 0], tokens[:, None])
    finished = _is_stop(tokens, stop_token_ids)
    lengths = ops.ones((batch_size,), "int32")

    def condition(index, tokens, state, output, finished, log_probability, lengths):
        return ops.logical_and(index < max_new_tokens, ops.logical_not(ops.all(finished)))

    def body(index, tokens, state, output, finished, log_probability, lengths):
        logits, state = step(tokens, index, state)
        tokens, token_log_probability = choose(logits, index, finished)
        lengths = ops.where(finished, lengths, index + 1)
        output = ops.slice_update(output, [0, index], tokens[:, None])
        finished = ops.logical_or(finished, _is_stop(tokens, stop_token_ids))
        return index + 1, tokens, state, output, finished, log_probability + token_log_probability, lengths

    initial = (ops.convert_to_tensor(1, "int32"), tokens, state, output, finished, log_probability, lengths)
    _, _, _, output, _, log_probability, lengths = ops.while_loop(condition, body, initial)
    return output, log_probability / length_penalty_factor(lengths, length_penalty)


def beam_search(
    step, reorder, first_logits, state, batch_size, max_new_tokens, settings, pad_id=0, banned_token_ids=()
):
    """Beam search: ``num_beams`` hypotheses per row, ranked by the GNMT-normalized score at every step.

    Beams are flattened into the rows: row ``b * num_beams + k`` is beam ``k`` of source ``b``;
    ``first_logits`` ``(batch · num_beams, V)`` and ``state`` already hold every beam (all copies of
    the source's). Only beam 0 starts live; the others start as finished, hopeless placeholders, so the
    first step picks ``num_beams`` distinct tokens. A finished hypothesis continues only with ``pad_id``
    at no cost, so its score stays fixed while it is in the beam.

    Returns:
        ``(tokens (batch, max_new_tokens) int32, scores (batch,) float32)`` of the best beam.
    """
    _, _, _, _, num_beams, length_penalty, stop_token_ids = settings
    rows = batch_size * num_beams
    vocabulary_size = first_logits.shape[-1]
    banned = _banned_mask(vocabulary_size, banned_token_ids) if banned_token_ids else None
    padding_only = ops.where(ops.arange(vocabulary_size) == pad_id, 0.0, NEGATIVE_INFINITY)
    beam_offsets = ops.arange(batch_size, dtype="int32")[:, None] * num_beams

    def advance(index, logits, state, sequences, finished, scores, lengths):
        log_probabilities = ops.log_softmax(logits, axis=-1)
        if banned is not None:
            log_probabilities = ops.where(banned[None, :], NEGATIVE_INFINITY, log_probabilities)
        log_probabilities = ops.where(finished[:, None], padding_only[None, :], log_probabilities)
        candidate_scores = scores[:, None] + log_probabilities
        candidate_lengths = ops.where(finished, lengths, index + 1)
        normalized = candidate_scores / length_penalty_factor(candidate_lengths, length_penalty)[:, None]
        _, best = ops.top_k(ops.reshape(normalized, (batch_size, num_beams * vocabulary_size)), num_beams)
        best = ops.cast(best, "int32")
        parent_rows = ops.reshape(beam_offsets + best // vocabulary_size, (rows,))
        tokens = ops.reshape(best % vocabulary_size, (rows,))
        flat_best = ops.reshape(beam_offsets * vocabulary_size + best, (rows,))
        scores = ops.take(ops.reshape(candidate_scores, (-1,)), flat_best, axis=0)
        lengths = ops.take(candidate_lengths, parent_rows, axis=0)
        finished = ops.take(finished, parent_rows, axis=0)
        sequences = ops.slice_update(ops.take(sequences, parent_rows, axis=0), [0, index], tokens[:, None])
        finished = ops.logical_or(finished, _is_stop(tokens, stop_token_ids))
        return tokens, reorder(state, parent_rows), sequences, finished, scores, lengths

    placeholder = ops.arange(rows) % num_beams > 0
    sequences = ops.full((rows, max_new_tokens), pad_id, "int32")
    scores = ops.where(placeholder, NEGATIVE_INFINITY, 0.0)
    lengths = ops.zeros((rows,), "int32")
    tokens, state, sequences, finished, scores, lengths = advance(
        0, first_logits, state, sequences, placeholder, scores, lengths
    )

    def condition(index, tokens, state, sequences, finished, scores, lengths):
        return ops.logical_and(index < max_new_tokens, ops.logical_not(ops.all(finished)))

    def body(index, tokens, state, sequences, finished, scores, lengths):
        logits, state = step(tokens, index, state)
        return (index + 1,) + advance(index, logits, state, sequences, finished, scores, lengths)

    initial = (ops.convert_to_tensor(1, "int32"), tokens, state, sequences, finished, scores, lengths)
    _, _, _, sequences, _, scores, lengths = ops.while_loop(condition, body, initial)
    final = ops.reshape(scores / length_penalty_factor(lengths, length_penalty), (batch_size, num_beams))
    best_beam = ops.cast(ops.argmax(final, axis=-1), "int32")
    best_scores = ops.take_along_axis(final, best_beam[:, None], axis=1)[:, 0]
    return ops.take(sequences, beam_offsets[:, 0] + best_beam, axis=0), best_scores


def decode(step, reorder, first_logits, state, batch_size, max_new_tokens, settings, seed, **kwargs):
    """:func:`beam_search` for ``sampler="beam"``, else :func:`sample_loop` (``first_logits``/``state`` per beam row)."""
    if settings[0] == "beam":
        return beam_search(step, reorder, first_logits, state, batch_size, max_new_tokens, settings, **kwargs)
    return sample_loop(step, first_logits, state, max_new_tokens, settings, seed, **kwargs)
