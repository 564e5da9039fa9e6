"""GPT's cached, compiled generation: prompts → prefill → :mod:`llm_tf.models.generation`'s loops.

:class:`GPTGeneration` is mixed into :class:`~llm_tf.models.GPT`; it reads the model's ``config``,
``embedding``, ``blocks``, ``final_norm`` and ``lm_head``. The prompt runs once through the readable
blocks (filling their key/value caches); each new token then runs through
:mod:`llm_tf.layers.fast_paths`' single-token step (proved equal to the blocks by its tests).
"""

import numpy as np
from keras import ops

from llm_tf.checks import check_choice, check_token_ids, is_int
from llm_tf.layers import fast_paths
from llm_tf.models import generation


def split_inputs(inputs):
    """GPT inputs (ids, or a dict with 'token_ids' and optional 'padding_mask') as ``(token_ids, padding_mask)``."""
    if isinstance(inputs, dict):
        if "token_ids" not in inputs:
            raise ValueError(f"GPT inputs dict needs a 'token_ids' entry; got keys {sorted(inputs)}.")
        return inputs["token_ids"], inputs.get("padding_mask")
    return inputs, None


def _weights_checksum(weights):
    """Per weight, its column sums weighted by row position, ``r · W`` with ``r_i = i mod 251 + 1``.

    Changes when a value changes: only a change that keeps every column's weighted sum, which no training
    step or weight loading makes in practice, would go unnoticed. A matrix-vector product reads each weight
    once (TensorFlow's own product runs on both cores: GPT-2 small's 475 MiB in 24 ms, against 41 ms for a
    row and a column sum compiled by XLA).
    """
    sums = []
    for weight in weights:
        matrix = ops.cast(weight, "float32")
        matrix = ops.reshape(matrix, (-1, matrix.shape[-1] if len(matrix.shape) else 1))
        ramp = ops.cast(ops.arange(ops.shape(matrix)[0], dtype="int32") % 251 + 1, "float32")
        sums.append(ops.matmul(ramp[None, :], matrix)[0])
    return ops.concatenate(sums)


class GPTGeneration:
    """Generation methods of :class:`~llm_tf.models.GPT` (a mixin)."""

    @property
    def generate_trace_count(self):
        """How many times a generation loop was traced (compiled); one per new shape or sampler setting."""
        return self._generation_loops.trace_count

    def generate(
        self,
        prompt_ids,
        max_new_tokens,
        sampler="greedy",
        temperature=1.0,
        top_k=None,
        top_p=None,
        num_beams=4,
        length_penalty=1.0,
        stop_token_ids=None,
        seed=None,
        padding_mask=None,
        weight_dtype="float32",
        negative_prompt_ids=None,
        guidance_scale=1.0,
    ):
        """Continue each prompt by ``max_new_tokens`` tokens with a key/value cache.

        The whole prompt is run in one pass (prefill) that fills the per-block caches and scores
        only its last position; then a compiled while-loop (:mod:`llm_tf.models.generation`) emits one
        token per step. The loop is compiled with XLA once per (batch size, total length
        ``prompt_length + max_new_tokens``, sampler, ``top_k``, ``num_beams``, stop tokens): calling again with
        the same shapes and settings does not trace again (see :attr:`generate_trace_count`), and neither does a
        new ``temperature``, ``top_p`` or ``length_penalty`` (values of the compiled loop).

        Prompts of different lengths go in one batch padded with id 0, either as a list of lists
        (left-padded here) or with a ``padding_mask``; left- and right-padded batches are both
        accepted (right padding is moved to the left). Each row is positioned as if unpadded, so a
        padded prompt gives the same continuation as the same prompt alone.

        Args:
            prompt_ids: int ``(batch, prompt_length)`` or ``(prompt_length,)`` array, a list of
                lists of ids (ragged allowed), or a dict with ``"token_ids"`` and ``"padding_mask"``.
            max_new_tokens: number of tokens to add (positive int).
            sampler: ``"greedy"``, ``"temperature"``, ``"top_k"``, ``"top_p"`` or ``"beam"`` (see
                :mod:`llm_tf.models.generation`).
            temperature: softmax temperature (> 0) of the sampling samplers.
            top_k: number of candidates for ``"top_k"`` (default 50, at most the vocabulary size).
            top_p: probability mass for ``"top_p"`` in (0, 1] (default 0.9).
            num_beams: beams for ``"beam"`` (1 reproduces greedy decoding).
            length_penalty: exponent ``alpha >= 0`` of the GNMT length penalty of beam search
                (``score = log P / ((5 + length) / 6) ** alpha``; 0 = raw log-probability).
            stop_token_ids: an id or ids that end a sequence; the stop token is kept, later
                positions of that row are padding (0), and the loop ends once every row stopped.
            seed: integer seed of the sampling samplers; the random draw of step ``s`` depends only
                on ``(seed, s, row)``, so a seed reproduces a sample exactly. ``None`` draws one.
            padding_mask: ``(batch, prompt_length)``, True for real prompt tokens (contiguous).
            weight_dtype: weights read by each new token's step: ``"float32"`` (the model's values:
                equal to its forward pass up to float rounding), or weight-only ``"bfloat16"`` /
                ``"float16"`` / ``"int8"`` (per-output-channel scales) for the projections of every block
                and the output head, with activations, accumulation and the key/value caches in float32
                (see :mod:`llm_tf.layers.fast_paths`); the prompt's prefill always uses float32. float16
                reads the same bytes as bfloat16 with an 8× finer rounding (|weights| above 65504 are
                clipped, below 6.1e-5 stored as 0). Packed weights (bfloat16, float16, int8, and float32 at
                up to :attr:`PACKED_FLOAT32_MAX_ROWS` rows) are made once and cached while the model's
                weights are unchanged; they cost extra memory (float32: the size of the model, bfloat16 and
                float16 half, int8 a quarter). At batch 1 on a CPU (GPT-2 small, 2 cores) bfloat16 /
                float16 / int8 run 1.7× / 1.6× / 2.2× faster than float32; at batch 8 float32 is faster.
                Their quality cost on a trained model (logit differences, perplexity, greedy agreement) is
                measured by ``benchmarks/weight_only_decoding.py`` and recorded in docs/measurements.md.
            negative_prompt_ids: prompts for classifier-free guidance (Sanchez et al. 2023, "Stay on topic with
                classifier-free guidance"), one per prompt, in any form ``prompt_ids`` takes (e.g. the prompt
                without the condition to stress). Each step scores the next token under both prompts and
                samples from ``log p_neg + guidance_scale * (log p - log p_neg)`` (log-softmaxed; the samplers'
                temperature / top-k / top-p then apply to these scores): a scale of 1 is plain decoding of
                ``prompt_ids``, 0 decoding of the negative prompts, above 1 pushes away from what the negative
                prompt predicts. Both prompt sets are decoded in one batch of twice the rows (about twice the
                cost per token). Not with ``sampler="beam"``.
            guidance_scale: the scale above (a float >= 0); used only with ``negative_prompt_ids``.

        Returns:
            int32 numpy array ``(batch, prompt_length + max_new_tokens)``: the (left-padded) prompt
            followed by the new tokens. With ``negative_prompt_ids``, the prompts are left-padded to the
            wider of the two prompt arrays.

        Example:

        >>> model = GPT(GPTConfig.from_preset("tiny", vocabulary_size=100, max_sequence_length=32))
        >>> model.generate([[5, 6, 7], [8, 9]], max_new_tokens=3, sampler="top_k", top_k=5, seed=1).shape
        (2, 6)
        """
        settings = generation.generation_settings(
            sampler, temperature, top_k, top_p, num_beams, length_penalty, stop_token_ids,
            self.config.vocabulary_size,
        )
        check_choice("weight_dtype", weight_dtype, fast_paths.WEIGHT_DTYPES)
        token_ids, prompt_mask = self._prepare_prompts(prompt_ids, padding_mask)
        guidance = None
        if negative_prompt_ids is not None:
            guidance = generation.check_guidance_scale(guidance_scale, settings[0])
            negative_ids, negative_mask = self._prepare_prompts(negative_prompt_ids, None)
            if negative_ids.shape[0] != token_ids.shape[0]:
                raise ValueError(
                    f"`negative_prompt_ids` must hold one prompt per prompt: {token_ids.shape[0]} prompts, "
                    f"{negative_ids.shape[0]} negative prompts."
                )
            # Both sets in one batch (prompts first). Both are left-padded already, so widening the narrower one
            # with padding on the left keeps them so; a batch of fixed-width arrays keeps one compiled loop.
            width = max(token_ids.shape[1], negative_ids.shape[1])

            def widen(array):
                return np.pad(array, ((0, 0), (width - array.shape[1], 0)))

            token_ids = np.concatenate([widen(token_ids), widen(negative_ids)]).astype("int32")
            prompt_mask = np.concatenate([widen(prompt_mask), widen(negative_mask)])
        prompt_length = token_ids.shape[1]
        if is_int(max_new_tokens) and max_new_tokens > 0:
            if prompt_length + max_new_tokens > self.config.max_sequence_length:
                raise ValueError(
                    f"prompt too long: prompt_length={prompt_length} + max_new_tokens={max_new_tokens} = "
                    f"{prompt_length + max_new_tokens} exceeds the model's max_sequence_length="
                    f"{self.config.max_sequence_length}."
                )
        max_new_tokens = generation.check_max_new_tokens(
            max_new_tokens, self.config.max_sequence_length, "max_sequence_length"
        )
        total_length = prompt_length + max_new_tokens
        packed_dtype, packed = self._decoding_weights(
            weight_dtype, token_ids.shape[0] * (settings[4] if settings[0] == "beam" else 1)
        )
        key, values = generation.compile_key_and_values(settings)
        output = self._generation_loops(
            key + (total_length, packed_dtype, guidance),
            lambda: lambda ids, mask, seed, values, packed: self._generate_graph(
                ids, mask, seed, total_length, generation.settings_in_graph(key, values), packed, guidance
            ),
            token_ids,
            prompt_mask,
            generation.check_seed(seed),
            values,
            packed,
        )
        return np.asarray(ops.convert_to_numpy(output), dtype="int32")

    def decode_logits(self, token_ids, prompt_length, weight_dtype="float32"):
        """Teacher-forced logits through the generation path: what :meth:`generate` would see.

        The first ``prompt_length`` tokens of each row are prefilled, then the remaining tokens are fed
        one by one through the cached single-token step (with ``weight_dtype``'s weights), as if
        :meth:`generate` had produced them. With ``"float32"`` this equals the forward pass
        (``model(token_ids)[:, prompt_length - 1 : -1]``, to float rounding); with ``"bfloat16"``,
        ``"float16"`` or ``"int8"`` it measures their error on real text (logit differences, perplexity).

        Args:
            token_ids: int ``(batch, length)`` without padding, ``length <= max_sequence_length``.
            prompt_length: ``1 <= prompt_length < length``.
            weight_dtype: see :meth:`generate`.

        Returns:
            float32 numpy ``(batch, length - prompt_length, V)``: row ``t`` is the distribution of token
            ``prompt_length + t`` given the tokens before it.
        """
        check_choice("weight_dtype", weight_dtype, fast_paths.WEIGHT_DTYPES)
        token_ids, _ = self._prepare_prompts(token_ids, None)
        length = token_ids.shape[1]
        if not (is_int(prompt_length) and 1 <= prompt_length < length):
            raise ValueError(
                f"`prompt_length` must be an int in [1, {length - 1}] for {length} tokens; got {prompt_length!r}."
            )
        packed_dtype, packed = self._decoding_weights(weight_dtype, token_ids.shape[0])
        output = self._generation_loops(
            ("decode_logits", int(prompt_length), length, packed_dtype),
            lambda: lambda ids, packed: self._decode_logits_graph(ids, int(prompt_length), packed),
            token_ids,
            packed,
        )
        return np.asarray(ops.convert_to_numpy(output), dtype="float32")

    def _decode_logits_graph(self, token_ids, prompt_length, packed):
        batch_size, length = token_ids.shape
        prompt_mask = ops.ones((batch_size, prompt_length), dtype="bool")
        logits, caches, key_mask, lengths = self._prefill(token_ids[:, :prompt_length], prompt_mask, length)
        weights, packed_head = self._step_weights(packed)
        steps = length - prompt_length
        output = ops.zeros((batch_size, steps, self.config.vocabulary_size), dtype="float32")
        output = ops.slice_update(output, [0, 0, 0], logits[:, None, :])

        def body(index, caches, output):
            slot = prompt_length + index - 1
            token = ops.take(token_ids, slot, axis=1)
            logits, caches = self._decode_step(token, lengths + index - 1, caches, key_mask, slot, weights, packed_head)
            return index + 1, caches, ops.slice_update(output, [0, index, 0], logits[:, None, :])

        initial = (ops.convert_to_tensor(1, "int32"), caches, output)
        _, _, output = ops.while_loop(lambda index, caches, output: index < steps, body, initial)
        return output

    #: Up to this many decoding rows (batch × beams), float32 decoding also reads packed ``(out, in)`` rows
    #: (a copy of the weights, cached) as the left operand of one matrix product, which XLA runs faster
    #: than the kernels' ``(batch, in) · (in, out)`` (GPT-2 small, 128 + 128 tokens, Xeon, 2 cores: 44 vs 35
    #: tokens/s at batch 1, 61 vs 59 at 2, 158 vs 124 at 8, 241 vs 203 at 32, 252 vs 244 at 64).
    PACKED_FLOAT32_MAX_ROWS = 64

    def _packed_dtype(self, weight_dtype, rows):
        """Which packed weights a decoding loop over ``rows`` rows reads (None: the layers' own kernels)."""
        if weight_dtype != "float32":
            return weight_dtype
        return "float32" if rows <= self.PACKED_FLOAT32_MAX_ROWS else None

    def _decoding_weights(self, weight_dtype, rows):
        """``(packed dtype or None, packed weights or None)`` for a decoding loop over ``rows`` rows."""
        packed_dtype = self._packed_dtype(weight_dtype, rows)
        return packed_dtype, None if packed_dtype is None else self._packed_decode_weights(packed_dtype)

    def _step_weights(self, packed):
        """Inside a compiled loop: the single-token step's ``(block weights, packed head or None)``."""
        if packed is None:  # the layers' kernels, prepared inside the graph so they are always current
            return fast_paths.decode_weights(self.blocks, self.config.use_bias), None
        return packed

    def _packed_decode_weights(self, weight_dtype):
        """The decoding weights packed in ``weight_dtype``, cached while the model's weights are unchanged.

        They are packed outside the compiled loop and handed to it as arguments, so XLA receives the
        ``(out, in)`` rows as they lie in memory (packed inside, it cancels the transposes into a layout
        it reads column-wise). Packing GPT-2 small takes 0.1-0.3 s; a checksum of every weight (one read,
        ~24 ms) tells whether the cached copy is still current, e.g. after more training or
        ``load_weights``.
        """
        if self._weights_checksum is None:
            self._weights_checksum = generation.compile_once(_weights_checksum, xla=False)
        checksum = np.asarray(ops.convert_to_numpy(self._weights_checksum([w.value for w in self.weights])))
        cached = self._packed_weights.get(weight_dtype)
        if cached is not None and np.array_equal(cached[0], checksum):
            return cached[1]
        packed = (
            fast_paths.decode_weights(self.blocks, self.config.use_bias, weight_dtype),
            fast_paths.output_rows(self.lm_head, self.embedding.token_embeddings, weight_dtype),
        )
        # One packed copy per dtype in use (float32 rows: the model's size again, bfloat16 / float16 half,
        # int8 a quarter); stale copies of other dtypes are dropped.
        self._packed_weights = {
            dtype: entry for dtype, entry in self._packed_weights.items() if np.array_equal(entry[0], checksum)
        }
        self._packed_weights[weight_dtype] = (checksum, packed)
        return packed

    def _prepare_prompts(self, prompt_ids, padding_mask):
        """Prompts as a left-padded int32 ``(batch, length)`` array plus its bool mask (checked eagerly)."""
        if isinstance(prompt_ids, dict):
            if padding_mask is not None:
                raise ValueError(
                    "give the padding mask either in the `prompt_ids` dict or as `padding_mask`."
                )
            prompt_ids, padding_mask = split_inputs(prompt_ids)
        if (
            isinstance(prompt_ids, list | tuple)
            and prompt_ids
            and isinstance(prompt_ids[0], list | tuple | np.ndarray)
        ):
            rows = [np.asarray(row).reshape(-1) for row in prompt_ids]
            if padding_mask is not None:
                raise ValueError(
                    "`padding_mask` cannot be combined with a list of prompts (they are padded here)."
                )
            length = max(len(row) for row in rows)
            token_ids = np.zeros((len(rows), length), dtype="int64")
            mask = np.zeros((len(rows), length), dtype=bool)
            for index, row in enumerate(rows):
                if len(row):
                    token_ids[index, length - len(row) :] = row
                    mask[index, length - len(row) :] = True
            prompt_ids, padding_mask = token_ids, mask
        token_ids = np.asarray(ops.convert_to_numpy(prompt_ids))
        if token_ids.ndim == 1:
            token_ids = token_ids[None, :]
            padding_mask = None if padding_mask is None else np.asarray(padding_mask).reshape(1, -1)
        if token_ids.ndim != 2 or token_ids.shape[1] == 0 or token_ids.shape[0] == 0:
            raise ValueError(
                f"`prompt_ids` must be a non-empty (batch, prompt_length) array; got shape {token_ids.shape}."
            )
        check_token_ids(token_ids, self.config.vocabulary_size, "prompt_ids")
        if token_ids.shape[1] > self.config.max_sequence_length:
            raise ValueError(
                f"prompt too long: {token_ids.shape[1]} tokens exceed the model's max_sequence_length="
                f"{self.config.max_sequence_length}."
            )
        if padding_mask is None:
            return token_ids.astype("int32"), np.ones(token_ids.shape, dtype=bool)
        mask = np.asarray(ops.convert_to_numpy(padding_mask)).astype(bool)
        if mask.shape != token_ids.shape:
            raise ValueError(
                f"`padding_mask` must have the shape of `prompt_ids` {token_ids.shape}; got {mask.shape}."
            )
        left_padded_ids = np.zeros_like(token_ids, dtype="int32")
        left_padded_mask = np.zeros_like(mask)
        length = token_ids.shape[1]
        for index, row_mask in enumerate(mask):
            real = np.flatnonzero(row_mask)
            if real.size == 0:
                raise ValueError(f"prompt {index} is empty: its `padding_mask` row has no real token.")
            if real[-1] - real[0] + 1 != real.size:
                raise ValueError(
                    f"prompt {index} has padding between real tokens; `padding_mask` must mark one "
                    f"contiguous run of real tokens per row (left or right padding)."
                )
            left_padded_ids[index, length - real.size :] = token_ids[index, real]
            left_padded_mask[index, length - real.size :] = True
        return left_padded_ids, left_padded_mask

    @property
    def _head_shape(self):
        return (self.config.num_heads, self.config.head_dim)

    def _prefill(self, token_ids, prompt_mask, total_length):
        """Run the prompt once, filling fresh caches; returns last-position logits and the decoding state.

        Returns:
            ``(logits (batch, V), caches, key_mask (batch, total_length), lengths (batch,))`` where
            ``lengths`` counts the real prompt tokens (the position of the first new token).
        """
        batch_size, prompt_length = token_ids.shape
        dtype = self.blocks[0].compute_dtype
        caches = [
            ops.zeros((batch_size, 2, total_length) + self._head_shape, dtype=dtype) for _ in self.blocks
        ]
        key_mask = ops.concatenate(
            [prompt_mask, ops.ones((batch_size, total_length - prompt_length), dtype="bool")], axis=1
        )
        counts = ops.cumsum(ops.cast(prompt_mask, "int32"), axis=1)
        hidden = self.embedding(token_ids, positions=ops.maximum(counts - 1, 0))
        for index, block in enumerate(self.blocks):
            hidden, caches[index] = block(
                hidden,
                padding_mask=key_mask,
                self_attention_cache=caches[index],
                cache_index=0,
                training=False,
            )
        # Only the last position's logits are needed: project one vector per row, not the whole prompt.
        logits = self._decode_logits(hidden[:, -1, :])
        # Re-lay the caches once for the decoding steps: keys as (batch·heads, head_dim, length) and values
        # as (batch·heads, length, head_dim), the operand layouts of the two attention matrix products, so
        # a step updates each cache in place and multiplies it without any reshaping copy.
        num_heads, head_dim = self._head_shape
        flat = batch_size * num_heads
        caches = [
            (
                ops.reshape(ops.transpose(cache[:, 0], (0, 2, 3, 1)), (flat, head_dim, total_length)),
                ops.reshape(ops.transpose(cache[:, 1], (0, 2, 1, 3)), (flat, total_length, head_dim)),
            )
            for cache in caches
        ]
        return logits, caches, key_mask, counts[:, -1]

    def _decode_logits(self, hidden, packed_head=None, loop_zero=0):
        return fast_paths.last_token_logits(
            self.final_norm, self.lm_head, self.embedding.token_embeddings, hidden, packed_head, loop_zero
        )

    def _decode_step(self, token, position, caches, key_mask, cache_index, weights, packed_head=None):
        """One new token per row at ``position`` (batch,), its keys/values written at slot ``cache_index``.

        Args:
            token: int ``(batch,)``.
            position: int ``(batch,)``, the position embedding index of each row's token.
            caches: per block ``(keys (batch·heads, head_dim, length), values (batch·heads, length,
                head_dim))`` as :meth:`_prefill` returns them.
            key_mask: bool ``(batch, length)``, False at prompt padding.
            cache_index: scalar slot of this step.
            weights: :func:`llm_tf.layers.fast_paths.decode_weights`.
            packed_head: :func:`llm_tf.layers.fast_paths.output_rows` (None: the float32 head).

        Returns:
            ``(logits (batch, V), caches)``.
        """
        hidden = self.embedding(token[:, None], positions=position[:, None])[:, 0]
        length = ops.shape(key_mask)[1]
        # Which slots this step may attend to: real tokens up to and including its own. Built once per
        # step for all blocks, as an additive bias (batch·heads, 1, length).
        visible = ops.logical_and(key_mask, (ops.arange(length, dtype="int32") <= cache_index)[None, :])
        bias = ops.repeat(ops.where(visible, 0.0, -1e9), self.config.num_heads, axis=0)[:, None, :]
        new_caches = []
        for block, (keys, values), block_weights in zip(self.blocks, caches, weights):
            hidden, keys, values = fast_paths.decode_block_step(
                block, hidden, keys, values, bias, cache_index, block_weights, self.config.num_heads
            )
            new_caches.append((keys, values))
        return self._decode_logits(hidden, packed_head, ops.minimum(cache_index, 0)), new_caches

    def _generate_graph(self, token_ids, prompt_mask, seed, total_length, settings, packed=None, guidance=None):
        """The traced body of :meth:`generate`: prefill, then :func:`generation.decode` over cached steps.

        With ``guidance`` (a scale), the rows are the prompts followed by their negative prompts; the caches
        keep every row, and each step's logits are combined into one row per prompt
        (:func:`generation.guided_scores`) before the sampler sees them.
        """
        batch_size, prompt_length = token_ids.shape
        logits, caches, key_mask, lengths = self._prefill(token_ids, prompt_mask, total_length)
        weights, packed_head = self._step_weights(packed)
        num_heads = self.config.num_heads

        def reorder(caches, rows):
            # Caches hold (rows·heads, ...): gather whole rows, keeping each row's heads together.
            def take(cache):
                shape = ops.shape(cache)
                per_row = ops.reshape(cache, (shape[0] // num_heads, num_heads) + tuple(shape[1:]))
                return ops.reshape(ops.take(per_row, rows, axis=0), (-1,) + tuple(shape[1:]))

            return [(take(keys), take(values)) for keys, values in caches]

        if settings[0] == "beam":  # one row per beam, each a copy of its prompt's
            rows = ops.repeat(ops.arange(batch_size, dtype="int32"), settings[4])
            caches = reorder(caches, rows)
            logits, key_mask, lengths = (ops.take(t, rows, axis=0) for t in (logits, key_mask, lengths))

        def step(tokens, index, caches):
            # The token generated at step index - 1 sits at position lengths + index - 1, cache slot
            # prompt_length + index - 1.
            return self._decode_step(
                tokens, lengths + index - 1, caches, key_mask, prompt_length + index - 1, weights, packed_head
            )

        if guidance is None:
            decode_step = step
        else:  # the same step on both halves, combined into one row per prompt
            batch_size //= 2

            def decode_step(tokens, index, caches):
                logits, caches = step(ops.concatenate([tokens, tokens], axis=0), index, caches)
                return generation.guided_scores(logits, batch_size, guidance), caches

            logits = generation.guided_scores(logits, batch_size, guidance)

        new_tokens, _ = generation.decode(
            decode_step, reorder, logits, caches, batch_size, total_length - prompt_length, settings, seed
        )
        return ops.concatenate([token_ids[:batch_size], new_tokens], axis=1)
