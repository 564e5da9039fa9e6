"""BERT interop: Hugging Face checkpoints into TransformerEncoder / TextClassifier / MaskedLM and back, checked
against transformers (PyTorch CPU). Every parity test prints its measured max |Δ| (run with ``-s``)."""

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from safetensors.numpy import load_file, save_file  # noqa: E402

from llm_tf.interop import load_hf_bert, save_hf_bert  # noqa: E402
from llm_tf.interop._common import read_tensors  # noqa: E402
from llm_tf.models import MaskedLM, TextClassifier, TransformerEncoder, TransformerEncoderConfig  # noqa: E402

TOLERANCE = 1e-4
VOCABULARY_SIZE = 101
SEQUENCE_LENGTH = 12
NUM_LABELS = 3


def randomize(module, seed):
    """Random values for every parameter (HF's init zeroes biases and sets LayerNorms to 1/0, which would hide
    a wrongly mapped bias or LayerNorm)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer_norm_ids = set()
        for submodule in module.modules():
            if isinstance(submodule, torch.nn.LayerNorm):
                submodule.weight.copy_(1 + 0.1 * torch.randn(submodule.weight.shape, generator=generator))
                submodule.bias.copy_(0.1 * torch.randn(submodule.bias.shape, generator=generator))
                layer_norm_ids |= {id(p) for p in submodule.parameters()}
        for parameter in module.parameters():
            if id(parameter) not in layer_norm_ids:
                parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    return module.eval()


def hf_config(**overrides):
    values = dict(
        vocab_size=VOCABULARY_SIZE,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=24,
        # Three token types and a larger epsilon than BERT's 1e-12: both must come from the config.
        type_vocab_size=3,
        layer_norm_eps=1e-3,
        num_labels=NUM_LABELS,
    )
    values.update(overrides)
    return transformers.BertConfig(**values)


def padded_batch(seed=0):
    """Right-padded ids, padding mask and segment ids using all three token types."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, VOCABULARY_SIZE, size=(3, SEQUENCE_LENGTH)).astype("int32")
    lengths = np.array([SEQUENCE_LENGTH, 7, 4])
    padding_mask = np.arange(SEQUENCE_LENGTH)[None, :] < lengths[:, None]
    token_ids = np.where(padding_mask, token_ids, 0).astype("int32")
    segment_ids = np.minimum(np.arange(SEQUENCE_LENGTH)[None, :] // 4, 2) * padding_mask
    return {"token_ids": token_ids, "padding_mask": padding_mask, "segment_ids": segment_ids.astype("int32")}


def hf_outputs(hf_model, inputs):
    with torch.no_grad():
        return hf_model(
            input_ids=torch.tensor(inputs["token_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["padding_mask"].astype("int64")),
            token_type_ids=torch.tensor(inputs["segment_ids"], dtype=torch.long),
        )


def ours(model, inputs):
    return np.asarray(model(inputs, training=False))


def max_real_diff(reference, values, padding_mask):
    """Max |Δ| over real token positions only (HF computes garbage at padding positions)."""
    return float(np.abs(reference - values)[padding_mask].max())


@pytest.fixture(scope="module")
def hf_classifier():
    torch.manual_seed(0)
    return randomize(transformers.BertForSequenceClassification(hf_config()), seed=1)


@pytest.fixture(scope="module")
def checkpoints(hf_classifier, tmp_path_factory):
    """The classifier's folder (names with 'bert.') and its BertModel's folder (names without)."""
    root = tmp_path_factory.mktemp("hf_bert")
    hf_classifier.save_pretrained(root / "classifier")
    hf_classifier.bert.save_pretrained(root / "encoder")
    return root


@pytest.fixture(scope="module")
def encoder(checkpoints):
    return load_hf_bert(checkpoints / "encoder")


@pytest.fixture(scope="module")
def classifier(checkpoints):
    return load_hf_bert(checkpoints / "classifier")


# --------------------------------------------------------------------------------------------------
# Hugging Face → llm_tf


@pytest.mark.slow
def test_encoder_matches_bert_model_hidden_states(hf_classifier, encoder):
    assert type(encoder) is TransformerEncoder
    assert encoder.config.num_segments == 3 and encoder.config.layer_norm_epsilon == pytest.approx(1e-3)
    inputs = padded_batch()
    reference = hf_outputs(hf_classifier.bert, inputs).last_hidden_state.numpy()
    diff = max_real_diff(reference, ours(encoder, inputs), inputs["padding_mask"])
    print(f"\n[interop] BERT HF->llm_tf encoder hidden states max|diff| = {diff:.3g}")
    assert diff <= TOLERANCE


def test_classifier_matches_sequence_classification_logits(hf_classifier, classifier):
    assert type(classifier) is TextClassifier
    assert classifier.pooling == "pooler" and classifier.num_classes == NUM_LABELS
    inputs = padded_batch(seed=1)
    reference = hf_outputs(hf_classifier, inputs).logits.numpy()
    diff = float(np.abs(reference - ours(classifier, inputs)).max())
    print(
        f"\n[interop] BERT HF->llm_tf classifier logits max|diff| = {diff:.3g} (scale {np.abs(reference).max():.3g})"
    )
    assert diff <= TOLERANCE


def test_head_choice(checkpoints, encoder):
    # The classifier checkpoint's backbone alone is the same encoder as BertModel's folder gives.
    backbone = load_hf_bert(checkpoints / "classifier", head="encoder")
    assert type(backbone) is TransformerEncoder
    inputs = padded_batch(seed=2)
    np.testing.assert_array_equal(ours(backbone, inputs), ours(encoder, inputs))
    with pytest.raises(ValueError, match="lacks the tensor 'classifier.weight'"):
        load_hf_bert(checkpoints / "encoder", head="classifier")
    with pytest.raises(ValueError, match="head='pooled'"):
        load_hf_bert(checkpoints / "encoder", head="pooled")


def test_legacy_gamma_beta_names_load(checkpoints, encoder, tmp_path):
    tensors = read_tensors(checkpoints / "classifier")
    renamed = {
        name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): value
        for name, value in tensors.items()
    }
    assert any(name.endswith("LayerNorm.gamma") for name in renamed)
    shutil.copytree(checkpoints / "classifier", tmp_path / "legacy")
    save_file(renamed, tmp_path / "legacy" / "model.safetensors", metadata={"format": "pt"})
    legacy = load_hf_bert(tmp_path / "legacy", head="encoder")
    inputs = padded_batch(seed=3)
    np.testing.assert_array_equal(ours(legacy, inputs), ours(encoder, inputs))


# --------------------------------------------------------------------------------------------------
# llm_tf → Hugging Face


def test_exported_encoder_reloads_as_bert_model(encoder, tmp_path):
    directory = save_hf_bert(encoder, tmp_path)
    reloaded, info = transformers.BertModel.from_pretrained(directory, output_loading_info=True)
    # An encoder has no pooler: transformers initializes it, and says so. Nothing else may be missing.
    assert info["missing_keys"] == {"pooler.dense.weight", "pooler.dense.bias"}
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    inputs = padded_batch(seed=4)
    reference = hf_outputs(reloaded.eval(), inputs).last_hidden_state.numpy()
    diff = max_real_diff(reference, ours(encoder, inputs), inputs["padding_mask"])
    print(f"\n[interop] BERT llm_tf->HF encoder hidden states max|diff| = {diff:.3g}")
    assert diff <= TOLERANCE


def test_exported_classifier_reloads_as_sequence_classification(checkpoints, classifier, tmp_path):
    directory = save_hf_bert(classifier, tmp_path)
    theirs, exported = (
        load_file(checkpoints / "classifier" / "model.safetensors"),
        load_file(directory / "model.safetensors"),
    )
    assert sorted(exported) == sorted(theirs)
    for name, value in theirs.items():
        np.testing.assert_array_equal(exported[name], value, err_msg=name)
    reloaded, info = transformers.BertForSequenceClassification.from_pretrained(
        directory, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert reloaded.config.num_labels == NUM_LABELS
    inputs = padded_batch(seed=5)
    diff = float(np.abs(hf_outputs(reloaded.eval(), inputs).logits.numpy() - ours(classifier, inputs)).max())
    print(f"\n[interop] BERT llm_tf->HF classifier logits max|diff| = {diff:.3g}")
    assert diff <= TOLERANCE


def test_encoder_without_segments_exports_exactly(tmp_path):
    config = TransformerEncoderConfig(
        vocabulary_size=50,
        max_sequence_length=10,
        hidden_dim=16,
        num_layers=1,
        num_heads=2,
        intermediate_dim=24,
        activation="gelu_tanh",
        num_segments=0,
    )
    model = TransformerEncoder(config)
    save_hf_bert(model, tmp_path)
    reloaded = transformers.BertModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.type_vocab_size == 1 and reloaded.config.hidden_act == "gelu_new"
    token_ids = np.random.default_rng(6).integers(1, 50, size=(2, 10)).astype("int32")
    padding_mask = np.ones(token_ids.shape, bool)
    with torch.no_grad():
        reference = reloaded(input_ids=torch.tensor(token_ids, dtype=torch.long)).last_hidden_state.numpy()
    values = ours(model, {"token_ids": token_ids, "padding_mask": padding_mask})
    diff = max_real_diff(reference, values, padding_mask)
    print(f"\n[interop] BERT fresh llm_tf encoder (no segments) ->HF max|diff| = {diff:.3g}")
    assert diff <= TOLERANCE


def test_masked_lm_head_both_ways(tmp_path):
    torch.manual_seed(0)
    hf_model = randomize(transformers.BertForMaskedLM(hf_config()), seed=7)
    hf_model.save_pretrained(tmp_path / "hf")
    masked_lm = load_hf_bert(tmp_path / "hf", head="masked_lm")
    assert type(masked_lm) is MaskedLM
    assert type(load_hf_bert(tmp_path / "hf")) is TransformerEncoder  # "auto" keeps the encoder
    inputs = padded_batch(seed=7)
    values = ours(masked_lm, inputs)
    diff = max_real_diff(hf_outputs(hf_model, inputs).logits.numpy(), values, inputs["padding_mask"])
    save_hf_bert(masked_lm, tmp_path / "ours")
    reloaded, info = transformers.BertForMaskedLM.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    back = max_real_diff(hf_outputs(reloaded.eval(), inputs).logits.numpy(), values, inputs["padding_mask"])
    print(f"\n[interop] BERT masked-LM logits: HF->llm_tf {diff:.3g}, llm_tf->HF {back:.3g}")
    assert diff <= TOLERANCE and back <= TOLERANCE


# --------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_type": "gpt2"}, "model_type='gpt2'"),
        ({"is_decoder": True}, "is_decoder=True"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type='relative_key'"),
        ({"hidden_act": "gelu_10"}, "hidden_act='gelu_10'"),
        ({"intermediate_size": 48}, r"'encoder.layer.0.intermediate.dense.weight'.*\(64, 32\).*\(48, 32\)"),
        ({"id2label": {"0": "a", "1": "b"}}, "id2label names 2 labels"),
    ],
)
def test_bad_configs_raise_value_error(checkpoints, tmp_path, changes, message):
    directory = shutil.copytree(checkpoints / "classifier", tmp_path / "copy")
    config = json.loads((directory / "config.json").read_text())
    config.update(changes)
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        load_hf_bert(directory)


def test_missing_tensor_is_named_and_nothing_is_half_loaded(checkpoints, tmp_path):
    directory = shutil.copytree(checkpoints / "classifier", tmp_path / "copy")
    tensors = load_file(directory / "model.safetensors")
    del tensors["bert.encoder.layer.1.output.LayerNorm.bias"]
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"lacks the tensor 'encoder.layer.1.output.LayerNorm.bias'"):
        load_hf_bert(directory)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hf_bert(tmp_path)


def test_export_rejects_what_bert_cannot_express(tmp_path):
    base = dict(
        vocabulary_size=20,
        max_sequence_length=8,
        hidden_dim=8,
        num_layers=1,
        num_heads=2,
        intermediate_dim=16,
    )
    for field, value in (
        ("norm_first", True),
        ("embedding_norm", False),
        ("final_norm", True),
        ("position", "sinusoidal"),
        ("use_bias", False),
    ):
        with pytest.raises(ValueError, match=f"{field}="):
            save_hf_bert(
                TransformerEncoder(TransformerEncoderConfig(**base, **{field: value})), tmp_path / field
            )
        assert not (tmp_path / field).exists()
    mean_pooling = TextClassifier(num_classes=2, pooling="mean", config=TransformerEncoderConfig(**base))
    with pytest.raises(ValueError, match="pooling='mean'"):
        save_hf_bert(mean_pooling, tmp_path / "mean")
    with pytest.raises(ValueError, match="TransformerEncoder, TextClassifier or MaskedLM"):
        save_hf_bert("bert", tmp_path / "string")


def test_bfloat16_checkpoints_are_widened_to_float32(tmp_path):
    from safetensors.torch import save_file as torch_save_file

    from llm_tf.interop._common import _read_safetensors_with_bfloat16

    values = torch.randn(4, 3).to(torch.bfloat16)
    torch_save_file(
        {"w": values, "b": torch.ones(2)}, str(tmp_path / "model.safetensors"), metadata={"format": "pt"}
    )
    expected = values.float().numpy()
    # read_tensors (numpy may know ml_dtypes' bfloat16 here, TensorFlow being imported) and the fallback
    # reader used where numpy does not know it must both give float32.
    for tensors in (read_tensors(tmp_path), _read_safetensors_with_bfloat16(tmp_path / "model.safetensors")):
        assert tensors["w"].dtype == np.float32 and tensors["b"].dtype == np.float32
        np.testing.assert_array_equal(tensors["w"], expected)
        np.testing.assert_array_equal(tensors["b"], np.ones(2, np.float32))
