"""BERT checkpoints in the Hugging Face format, to and from our encoder family.

``BertModel`` maps onto :class:`~llm_tf.models.TransformerEncoder` with its default (BERT) switches —
post-norm blocks, an embedding LayerNorm, learned positions, token-type embeddings as ``segment_ids`` — and
``BertForSequenceClassification`` onto :class:`~llm_tf.models.TextClassifier` with ``pooling="pooler"``
(``tanh(Dense(first token))`` → dropout → ``Dense(num_labels)``). Every projection is an ``nn.Linear``
(``(out, in)``), so kernels are transposed, and the attention projections are reshaped to per-head
``(d, heads, head_dim)`` (output: ``(heads, head_dim, d)``). On request (``head="masked_lm"``)
``BertForMaskedLM``'s ``cls.predictions`` head maps onto :class:`~llm_tf.models.MaskedLM`.

Names are accepted with or without the ``bert.`` prefix, and old ``LayerNorm.gamma``/``beta`` names too.
The encoder ignores the pre-training heads ``cls.*`` and the pooler ``pooler.dense.*`` (the classifier's).
"""

import re

from llm_tf.checks import check_choice
from llm_tf.interop._common import (
    TensorMapping,
    assign_all,
    check_model_type,
    checkpoint_directory,
    keras_activation,
    read_config,
    read_tensors,
    require_model_setting,
    require_setting,
    strip_prefix,
    warn_unused,
    write_checkpoint,
)

HEADS = ("auto", "encoder", "classifier", "masked_lm")
_PREFIX = "bert."
_KERAS_TO_HF_ACTIVATION = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "silu": "silu"}
# Tensors an encoder never needs: the pre-training heads and the position-id buffer of old checkpoints.
_IGNORED_BY_ENCODER = (r"cls\..*", r"embeddings\.position_ids", r"pooler\.dense\.(weight|bias)")
_IGNORED_BY_CLASSIFIER = (r"cls\..*", r"embeddings\.position_ids")
# The MLM decoder is tied to the word embeddings (checked separately); next-sentence prediction is dropped.
_IGNORED_BY_MASKED_LM = (
    r"cls\.predictions\.decoder\.(weight|bias)",
    r"cls\.seq_relationship\..*",
    r"embeddings\.position_ids",
    r"pooler\.dense\.(weight|bias)",
)


def encoder_config_from_hf(hf_config, source="config.json"):
    """Translate a BERT ``config.json`` dict into a :class:`~llm_tf.models.TransformerEncoderConfig`.

    Args:
        hf_config: the parsed ``config.json`` (``model_type`` ``"bert"``).
        source: where it came from, for error messages.

    Returns:
        A ``TransformerEncoderConfig`` expressing the same architecture.

    Raises:
        ValueError: for settings our encoder cannot express exactly (a causal decoder, cross-attention,
            relative position embeddings, an activation without an exact counterpart).

    Example:

    >>> encoder_config_from_hf({"model_type": "bert", "vocab_size": 100, "hidden_size": 16,
    ...                         "num_hidden_layers": 2, "num_attention_heads": 2}).num_segments
    2
    """
    from llm_tf.models.transformer_encoder import TransformerEncoderConfig

    require_setting(hf_config, "is_decoder", False, False, source, "our encoder attends bidirectionally")
    require_setting(
        hf_config, "add_cross_attention", False, False, source, "our encoder has no cross-attention"
    )
    require_setting(
        hf_config,
        "position_embedding_type",
        "absolute",
        "absolute",
        source,
        "our encoder learns absolute positions",
    )
    return TransformerEncoderConfig(
        vocabulary_size=hf_config.get("vocab_size", 30522),
        max_sequence_length=hf_config.get("max_position_embeddings", 512),
        hidden_dim=hf_config.get("hidden_size", 768),
        num_layers=hf_config.get("num_hidden_layers", 12),
        num_heads=hf_config.get("num_attention_heads", 12),
        intermediate_dim=hf_config.get("intermediate_size", 3072),
        dropout=hf_config.get("hidden_dropout_prob", 0.1),
        attention_dropout=hf_config.get("attention_probs_dropout_prob", 0.1),
        activation=keras_activation(hf_config.get("hidden_act", "gelu"), "hidden_act", source),
        layer_norm_epsilon=hf_config.get("layer_norm_eps", 1e-12),
        norm_first=False,
        use_bias=True,
        num_segments=hf_config.get("type_vocab_size", 2),
        embedding_norm=True,
        final_norm=False,
        position="learned",
        initializer_range=hf_config.get("initializer_range", 0.02),
    )


def _encoder_mappings(encoder):
    """The table of checkpoint names (without ``bert.``) → the encoder's variables."""
    config = encoder.config
    d, intermediate = config.hidden_dim, config.intermediate_dim

    def norm(prefix, layer):
        return [
            TensorMapping(f"{prefix}.LayerNorm.weight", layer.gamma, (d,)),
            TensorMapping(f"{prefix}.LayerNorm.bias", layer.beta, (d,)),
        ]

    def linear(prefix, dense, shape):
        # nn.Linear keeps (out, in): the transpose of the (flattened) Keras kernel.
        return [
            TensorMapping(f"{prefix}.weight", dense.kernel, shape, transposed=True),
            TensorMapping(f"{prefix}.bias", dense.bias, (shape[0],)),
        ]

    rows = [
        TensorMapping(
            "embeddings.word_embeddings.weight",
            encoder.embedding.token_embeddings,
            (config.vocabulary_size, d),
        ),
        TensorMapping(
            "embeddings.position_embeddings.weight",
            encoder.embedding.position_embeddings,
            (config.max_sequence_length, d),
        ),
    ]
    if encoder.segment_embedding is not None:
        rows.append(
            TensorMapping(
                "embeddings.token_type_embeddings.weight",
                encoder.segment_embedding.embeddings,
                (config.num_segments, d),
            )
        )
    rows += norm("embeddings", encoder.embedding_norm)
    for index, block in enumerate(encoder.blocks):
        prefix = f"encoder.layer.{index}"
        attention = block.self_attention
        for part, projection in (
            ("query", attention.query_dense),
            ("key", attention.key_dense),
            ("value", attention.value_dense),
        ):
            rows += linear(f"{prefix}.attention.self.{part}", projection, (d, d))
        rows += linear(f"{prefix}.attention.output.dense", attention.output_dense, (d, d))
        rows += norm(f"{prefix}.attention.output", block.self_attention_norm)
        rows += linear(
            f"{prefix}.intermediate.dense", block.feed_forward.intermediate_dense, (intermediate, d)
        )
        rows += linear(f"{prefix}.output.dense", block.feed_forward.output_dense, (d, intermediate))
        rows += norm(f"{prefix}.output", block.feed_forward_norm)
    return rows


def _classifier_mappings(classifier):
    """The classifier's head rows: the pooler (inside ``bert.``) and ``classifier`` (top level)."""
    d = classifier.config.hidden_dim
    return [
        TensorMapping("pooler.dense.weight", classifier.pooler.kernel, (d, d), transposed=True),
        TensorMapping("pooler.dense.bias", classifier.pooler.bias, (d,)),
        TensorMapping(
            "classifier.weight", classifier.classifier.kernel, (classifier.num_classes, d), transposed=True
        ),
        TensorMapping("classifier.bias", classifier.classifier.bias, (classifier.num_classes,)),
    ]


def _masked_lm_mappings(masked_lm):
    """The MLM head rows (``cls.predictions``); its decoder reuses the word embeddings."""
    d = masked_lm.config.hidden_dim
    return [
        TensorMapping(
            "cls.predictions.transform.dense.weight",
            masked_lm.transform_dense.kernel,
            (d, d),
            transposed=True,
        ),
        TensorMapping("cls.predictions.transform.dense.bias", masked_lm.transform_dense.bias, (d,)),
        TensorMapping("cls.predictions.transform.LayerNorm.weight", masked_lm.transform_norm.gamma, (d,)),
        TensorMapping("cls.predictions.transform.LayerNorm.bias", masked_lm.transform_norm.beta, (d,)),
        TensorMapping("cls.predictions.bias", masked_lm.output_bias, (masked_lm.config.vocabulary_size,)),
    ]


def _check_tied_decoder(tensors, source):
    """Our MaskedLM ties its output projection to the word embeddings; an untied decoder cannot load."""
    import numpy as np

    decoder = tensors.get("cls.predictions.decoder.weight")
    embeddings = tensors.get("embeddings.word_embeddings.weight")
    if decoder is None or embeddings is None:
        return
    if decoder.shape != embeddings.shape or not np.array_equal(decoder, embeddings):
        raise ValueError(
            f"the tensor 'cls.predictions.decoder.weight' in {source!r} differs from the word embeddings; "
            f"MaskedLM ties its output projection to them (an untied MLM decoder is not supported)."
        )


def _normalized_names(tensors):
    """Strip the ``bert.`` prefix and rename TF-era ``LayerNorm.gamma``/``beta`` to ``weight``/``bias``."""
    tensors = strip_prefix(tensors, _PREFIX)
    renamed = {}
    for name, value in tensors.items():
        name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
        name = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)
        renamed[name] = value
    return renamed


def _choose_head(head, hf_config, tensors):
    check_choice("head", head, HEADS)
    if head != "auto":
        return head
    architectures = hf_config.get("architectures") or []
    if architectures:
        return "classifier" if "BertForSequenceClassification" in architectures else "encoder"
    # No architectures entry: a classifier head in the file is taken for sequence classification.
    return "classifier" if "classifier.weight" in tensors else "encoder"


def load_hf_bert(path, *, head="auto", dtype=None):
    """Load a Hugging Face BERT checkpoint folder into a ``TransformerEncoder``, ``TextClassifier`` or ``MaskedLM``.

    Args:
        path: the checkpoint folder (``config.json`` + ``model.safetensors`` as ``save_pretrained`` writes
            them), or a file inside it.
        head: ``"auto"`` (a :class:`~llm_tf.models.TextClassifier` when ``architectures`` names
            ``BertForSequenceClassification`` — or, without ``architectures``, when the file has
            ``classifier.weight`` — else a :class:`~llm_tf.models.TransformerEncoder`), ``"encoder"``
            (the backbone only, whatever the checkpoint holds), ``"classifier"``, or ``"masked_lm"``
            (a :class:`~llm_tf.models.MaskedLM` from a ``BertForMaskedLM``/``BertForPreTraining``
            checkpoint's ``cls.predictions`` head).
        dtype: optional Keras dtype policy for the model (e.g. ``"mixed_bfloat16"``).

    Returns:
        A :class:`~llm_tf.models.TransformerEncoder` (sequence output ``(batch, sequence, hidden_dim)``,
        the ``last_hidden_state`` of ``BertModel``), a :class:`~llm_tf.models.TextClassifier` with
        ``pooling="pooler"`` whose logits are ``BertForSequenceClassification``'s, or a
        :class:`~llm_tf.models.MaskedLM` whose logits are ``BertForMaskedLM``'s. Token-type ids become
        ``segment_ids``.

    Raises:
        FileNotFoundError: when the folder, its config.json or its safetensors weights are missing.
        ValueError: for another ``model_type``, a bad ``head``, a missing or wrongly shaped tensor (named
            in the message), or a configuration our models cannot express exactly.

    Example:

    >>> classifier = load_hf_bert("checkpoints/bert-sst2")  # doctest: +SKIP
    >>> classifier({"token_ids": ids, "padding_mask": mask, "segment_ids": segments})  # doctest: +SKIP
    """
    from llm_tf.models import MaskedLM, TextClassifier, TransformerEncoder

    directory = checkpoint_directory(path)
    source = str(directory)
    hf_config = read_config(directory)
    check_model_type(hf_config, "bert", directory)
    config = encoder_config_from_hf(hf_config, source)
    tensors = _normalized_names(read_tensors(directory))
    requested_head = head
    head = _choose_head(head, hf_config, tensors)
    model_kwargs = {} if dtype is None else {"dtype": dtype}
    if head == "encoder":
        model = TransformerEncoder(config, **model_kwargs)
        rows = _encoder_mappings(model)
        ignored = _IGNORED_BY_ENCODER
        if requested_head == "encoder":
            # Asked for the backbone alone: a classification head in the file is expected to go unused.
            ignored += (r"classifier\..*",)
    elif head == "masked_lm":
        _check_tied_decoder(tensors, source)
        model = MaskedLM(config=config, **model_kwargs)
        rows = _encoder_mappings(model.backbone) + _masked_lm_mappings(model)
        ignored = _IGNORED_BY_MASKED_LM
    else:
        num_classes = _num_classes(hf_config, tensors, source)
        dropout = hf_config.get("classifier_dropout")
        dropout = config.dropout if dropout is None else dropout
        model = TextClassifier(
            num_classes=num_classes, pooling="pooler", dropout=dropout, config=config, **model_kwargs
        )
        rows = _encoder_mappings(model.backbone) + _classifier_mappings(model)
        ignored = _IGNORED_BY_CLASSIFIER
    assign_all(rows, tensors, source)
    warn_unused(tensors, {row.hf_name for row in rows}, ignored, source)
    return model


def _num_classes(hf_config, tensors, source):
    """The label count: from ``classifier.weight`` (checked against ``id2label`` when the config has one)."""
    if "classifier.weight" not in tensors:
        raise ValueError(
            f"the checkpoint {source!r} lacks the tensor 'classifier.weight' (a sequence-classification "
            f"head); load it with head='encoder' instead."
        )
    num_classes = int(tensors["classifier.weight"].shape[0])
    id2label = hf_config.get("id2label")
    if id2label and len(id2label) != num_classes:
        raise ValueError(
            f"the tensor 'classifier.weight' in {source!r} has {num_classes} rows but config.json's id2label "
            f"names {len(id2label)} labels."
        )
    return num_classes


def hf_config_from_encoder(config, num_labels=None):
    """The BERT ``config.json`` dict for a :class:`~llm_tf.models.TransformerEncoderConfig`.

    Args:
        config: the ``TransformerEncoderConfig``.
        num_labels: for a ``BertForSequenceClassification``: the number of classes (None: ``BertModel``).

    Returns:
        A JSON-serializable dict that ``transformers.BertConfig`` reads. An encoder without segments
        (``num_segments=0``) gets ``type_vocab_size=1`` and an all-zero token-type table, which adds
        nothing — the same outputs.

    Raises:
        ValueError: for settings BERT cannot express (pre-norm blocks, no embedding LayerNorm, a final
            LayerNorm, sinusoidal positions, no biases).

    Example:

    >>> from llm_tf.models import TransformerEncoderConfig
    >>> hf_config_from_encoder(TransformerEncoderConfig.from_preset("tiny"))["hidden_size"]
    128
    """
    require_model_setting(config.norm_first, "norm_first", False, "BERT blocks are post-norm")
    require_model_setting(config.embedding_norm, "embedding_norm", True, "BERT normalizes its embeddings")
    require_model_setting(
        config.final_norm, "final_norm", False, "BERT has no LayerNorm after the last block"
    )
    require_model_setting(config.position, "position", "learned", "BERT learns its position embeddings")
    require_model_setting(config.use_bias, "use_bias", True, "every BERT projection has a bias")
    hf_config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": config.vocabulary_size,
        "max_position_embeddings": config.max_sequence_length,
        "hidden_size": config.hidden_dim,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.intermediate_dim,
        "hidden_act": _KERAS_TO_HF_ACTIVATION[config.activation],
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": (
            config.dropout if config.attention_dropout is None else config.attention_dropout
        ),
        "layer_norm_eps": config.layer_norm_epsilon,
        "type_vocab_size": max(config.num_segments, 1),
        "initializer_range": config.initializer_range,
        "pad_token_id": 0,
        "is_decoder": False,
        "add_cross_attention": False,
        "dtype": "float32",
    }
    if num_labels is not None:
        hf_config["architectures"] = ["BertForSequenceClassification"]
        hf_config["id2label"] = {str(index): f"LABEL_{index}" for index in range(num_labels)}
        hf_config["label2id"] = {f"LABEL_{index}": index for index in range(num_labels)}
    return hf_config


def save_hf_bert(model, path, *, tokenizer=None):
    """Write a ``TransformerEncoder``, ``TextClassifier`` or ``MaskedLM`` as a Hugging Face BERT checkpoint.

    A :class:`~llm_tf.models.TransformerEncoder` becomes a ``BertModel`` checkpoint (without pooler
    weights, which it does not have: ``from_pretrained`` initializes the pooler and reports it missing;
    ``last_hidden_state`` is unaffected); a :class:`~llm_tf.models.TextClassifier` with
    ``pooling="pooler"`` becomes a ``BertForSequenceClassification`` one and a
    :class:`~llm_tf.models.MaskedLM` a ``BertForMaskedLM`` one. Names are written as ``save_pretrained``
    writes them.

    Args:
        model: the model (BERT switches: post-norm, embedding LayerNorm, learned positions, biases, no
            final norm).
        path: the output folder (created if needed; files in it are overwritten).
        tokenizer: optional llm_tf tokenizer saved next to the weights with its own ``save`` (a
            ``WordPieceTokenizer`` writes BERT's ``vocab.txt``).

    Returns:
        The folder as a ``pathlib.Path``.

    Raises:
        ValueError: when ``model`` is none of the three, is a classifier without BERT's pooler, or uses a
            setting BERT cannot express.

    Example:

    >>> save_hf_bert(classifier, "exported/bert-sst2")  # doctest: +SKIP
    >>> transformers.BertForSequenceClassification.from_pretrained("exported/bert-sst2")  # doctest: +SKIP
    """
    import numpy as np

    from llm_tf.models import MaskedLM, TextClassifier, TransformerEncoder

    head_rows = []
    if isinstance(model, TextClassifier):
        if model.pooling != "pooler":
            raise ValueError(
                f"cannot export a TextClassifier with pooling={model.pooling!r}: "
                f"BertForSequenceClassification pools with BERT's pooler (expected pooling='pooler')."
            )
        encoder = model.backbone
        hf_config = hf_config_from_encoder(encoder.config, num_labels=model.num_classes)
        hf_config["classifier_dropout"] = model.dropout
        prefix = _PREFIX
        head_rows = _classifier_mappings(model)
    elif isinstance(model, MaskedLM):
        encoder = model.backbone
        hf_config = hf_config_from_encoder(encoder.config)
        hf_config["architectures"] = ["BertForMaskedLM"]
        hf_config["tie_word_embeddings"] = True
        prefix = _PREFIX
        head_rows = _masked_lm_mappings(model)
    elif isinstance(model, TransformerEncoder):
        encoder = model
        hf_config = hf_config_from_encoder(encoder.config)
        prefix = ""
    else:
        raise ValueError(
            f"`model` must be an llm_tf TransformerEncoder, TextClassifier or MaskedLM; "
            f"got {type(model).__name__}."
        )
    if tokenizer is not None:
        from llm_tf.text import Tokenizer

        if not isinstance(tokenizer, Tokenizer):
            raise ValueError(f"`tokenizer` must be an llm_tf Tokenizer; got {type(tokenizer).__name__}.")
    tensors = {prefix + row.hf_name: row.to_hf() for row in _encoder_mappings(encoder)}
    if encoder.segment_embedding is None:
        # BERT always adds a token-type embedding; a single all-zero row adds nothing.
        tensors[prefix + "embeddings.token_type_embeddings.weight"] = np.zeros(
            (1, encoder.config.hidden_dim), dtype=np.float32
        )
    for row in head_rows:
        # The pooler lives inside `bert.`; the classifier and MLM heads sit at the top level.
        name = prefix + row.hf_name if row.hf_name.startswith("pooler.") else row.hf_name
        tensors[name] = row.to_hf()
    directory = write_checkpoint(path, hf_config, tensors)
    if tokenizer is not None:
        tokenizer.save(directory)
    return directory
