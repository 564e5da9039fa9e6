"""GPT-2 interop: Hugging Face checkpoints into llm_tf.GPT and back, checked against transformers (PyTorch CPU).

Every parity test prints its measured max |Δ| (run with ``-s`` to see them).
"""

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from safetensors.numpy import load_file, save_file  # noqa: E402

from llm_tf.interop import load_hf_gpt2, save_hf_gpt2  # noqa: E402
from llm_tf.models import GPT, GPTConfig  # noqa: E402
from llm_tf.text import BPETokenizer  # noqa: E402

TOLERANCE = 1e-4
VOCABULARY_SIZE = 101
SEQUENCE_LENGTH = 12
NEW_TOKENS = 20


def randomize(module, seed):
    """Random values for every parameter: HF initializes biases to 0 and LayerNorms to 1/0, which would hide
    a bias or LayerNorm that is mapped wrongly."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for submodule in module.modules():
            if isinstance(submodule, torch.nn.LayerNorm):
                submodule.weight.copy_(1 + 0.1 * torch.randn(submodule.weight.shape, generator=generator))
                submodule.bias.copy_(0.1 * torch.randn(submodule.bias.shape, generator=generator))
        layer_norm_ids = {
            id(p) for m in module.modules() if isinstance(m, torch.nn.LayerNorm) for p in m.parameters()
        }
        for parameter in module.parameters():
            if id(parameter) not in layer_norm_ids:
                parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    return module.eval()


def hf_config(**overrides):
    values = dict(
        vocab_size=VOCABULARY_SIZE,
        n_positions=48,
        n_embd=32,
        n_layer=2,
        n_head=4,
        # Not GPT-2's default 1e-5: a loader that ignored the config's epsilon would fail the bound.
        layer_norm_epsilon=1e-3,
        bos_token_id=None,
        eos_token_id=None,
    )
    values.update(overrides)
    return transformers.GPT2Config(**values)


def padded_batch(seed=0):
    """Right-padded token ids (padding id 0) with their padding mask."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, VOCABULARY_SIZE, size=(3, SEQUENCE_LENGTH)).astype("int32")
    lengths = np.array([SEQUENCE_LENGTH, 7, 3])
    padding_mask = np.arange(SEQUENCE_LENGTH)[None, :] < lengths[:, None]
    return np.where(padding_mask, token_ids, 0).astype("int32"), padding_mask


def hf_logits(hf_model, token_ids, padding_mask):
    with torch.no_grad():
        output = hf_model(
            input_ids=torch.tensor(token_ids, dtype=torch.long),
            attention_mask=torch.tensor(padding_mask.astype("int64")),
        )
    return output.logits.numpy()


def our_logits(model, token_ids, padding_mask):
    return np.asarray(model({"token_ids": token_ids, "padding_mask": padding_mask}, training=False))


def max_real_diff(reference, ours, padding_mask):
    """Max |Δ| over the real (unpadded) positions only: HF computes garbage at padding positions."""
    return float(np.abs(reference - ours)[padding_mask].max())


@pytest.fixture(scope="module")
def hf_gpt2():
    torch.manual_seed(0)
    return randomize(transformers.GPT2LMHeadModel(hf_config()), seed=1)


@pytest.fixture(scope="module")
def checkpoint(hf_gpt2, tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf_gpt2")
    hf_gpt2.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def loaded(checkpoint):
    return load_hf_gpt2(checkpoint)


# --------------------------------------------------------------------------------------------------
# Hugging Face → llm_tf


def test_load_matches_transformers_logits_with_padding(hf_gpt2, loaded):
    model, tokenizer = loaded
    assert isinstance(model, GPT) and tokenizer is None
    assert model.config.layer_norm_epsilon == pytest.approx(1e-3)
    assert model.config.activation == "gelu_tanh" and model.config.tie_embeddings
    token_ids, padding_mask = padded_batch()
    reference = hf_logits(hf_gpt2, token_ids, padding_mask)
    diff = max_real_diff(reference, our_logits(model, token_ids, padding_mask), padding_mask)
    print(
        f"\n[interop] GPT-2 HF->llm_tf logits max|diff| = {diff:.3g} (logit scale {np.abs(reference).max():.3g})"
    )
    assert diff <= TOLERANCE


@pytest.mark.slow
def test_greedy_generate_matches_transformers(hf_gpt2, loaded):
    model, _ = loaded
    prompts = [[5, 17, 42, 8, 99], [23, 4], [61, 62, 63]]
    ours = model.generate(prompts, max_new_tokens=NEW_TOKENS)
    # The same prompts left-padded for transformers, which then derives positions from the attention mask.
    width = max(len(prompt) for prompt in prompts)
    input_ids = np.zeros((len(prompts), width), dtype="int64")
    attention_mask = np.zeros_like(input_ids)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = prompt
        attention_mask[row, width - len(prompt) :] = 1
    with torch.no_grad():
        result = hf_gpt2.generate(
            torch.tensor(input_ids),
            attention_mask=torch.tensor(attention_mask),
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            num_beams=1,
            pad_token_id=0,
            output_scores=True,
            return_dict_in_generate=True,
        )
    reference = result.sequences.numpy()[:, width:]
    scores = np.stack([step.numpy() for step in result.scores])
    top_two = np.sort(scores, axis=-1)[..., -2:]
    margin = float((top_two[..., 1] - top_two[..., 0]).min())
    matches = int((ours[:, width:] == reference).sum())
    print(
        f"\n[interop] GPT-2 greedy generate: {matches}/{reference.size} tokens equal "
        f"(smallest top-2 logit margin {margin:.3g})"
    )
    assert reference.shape == (len(prompts), NEW_TOKENS)
    np.testing.assert_array_equal(ours[:, width:], reference)


def test_load_accepts_names_without_prefix_and_sharded_files(hf_gpt2, loaded, tmp_path):
    model, _ = loaded
    token_ids, padding_mask = padded_batch(seed=1)
    expected = our_logits(model, token_ids, padding_mask)
    # GPT2Model writes its names without "transformer." and has no lm_head (tied to wte).
    hf_gpt2.transformer.save_pretrained(tmp_path / "base", max_shard_size="20KB")
    files = sorted(path.name for path in (tmp_path / "base").iterdir())
    assert "model.safetensors.index.json" in files
    names = set(json.loads((tmp_path / "base" / "model.safetensors.index.json").read_text())["weight_map"])
    assert "wte.weight" in names and not any(name.startswith("transformer.") for name in names)
    base_model, _ = load_hf_gpt2(tmp_path / "base" / "config.json")
    np.testing.assert_allclose(our_logits(base_model, token_ids, padding_mask), expected, atol=1e-6)


def test_untied_head_loads_and_exports(tmp_path):
    torch.manual_seed(0)
    hf_model = randomize(transformers.GPT2LMHeadModel(hf_config(tie_word_embeddings=False)), seed=2)
    assert not torch.equal(hf_model.lm_head.weight, hf_model.transformer.wte.weight)
    hf_model.save_pretrained(tmp_path / "hf")
    model, _ = load_hf_gpt2(tmp_path / "hf")
    assert not model.config.tie_embeddings
    token_ids, padding_mask = padded_batch(seed=2)
    ours = our_logits(model, token_ids, padding_mask)
    diff = max_real_diff(hf_logits(hf_model, token_ids, padding_mask), ours, padding_mask)
    save_hf_gpt2(model, tmp_path / "ours")
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "ours").eval()
    back = max_real_diff(hf_logits(reloaded, token_ids, padding_mask), ours, padding_mask)
    print(f"\n[interop] GPT-2 untied head: HF->llm_tf {diff:.3g}, llm_tf->HF {back:.3g}")
    assert diff <= TOLERANCE and back <= TOLERANCE


# --------------------------------------------------------------------------------------------------
# llm_tf → Hugging Face


def test_export_reloads_in_transformers_with_the_same_logits(checkpoint, loaded, tmp_path):
    model, _ = loaded
    directory = save_hf_gpt2(model, tmp_path / "exported")
    # The same tensor names, shapes and (float32) values as transformers' own save_pretrained.
    theirs, ours = load_file(checkpoint / "model.safetensors"), load_file(directory / "model.safetensors")
    assert sorted(ours) == sorted(theirs)
    for name, value in theirs.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)
    reloaded, info = transformers.GPT2LMHeadModel.from_pretrained(directory, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    token_ids, padding_mask = padded_batch(seed=3)
    ours_logits = our_logits(model, token_ids, padding_mask)
    diff = max_real_diff(hf_logits(reloaded.eval(), token_ids, padding_mask), ours_logits, padding_mask)
    print(f"\n[interop] GPT-2 llm_tf->HF logits max|diff| = {diff:.3g}")
    assert diff <= TOLERANCE


def test_export_of_a_fresh_model_round_trips(tmp_path):
    config = GPTConfig(
        vocabulary_size=60,
        max_sequence_length=16,
        hidden_dim=24,
        num_layers=1,
        num_heads=3,
        intermediate_dim=40,
        activation="gelu",
        layer_norm_epsilon=1e-6,
        dropout=0.1,
        attention_dropout=0.05,
    )
    model = GPT(config)
    save_hf_gpt2(model, tmp_path)
    hf_config_dict = json.loads((tmp_path / "config.json").read_text())
    assert hf_config_dict["activation_function"] == "gelu" and hf_config_dict["attn_pdrop"] == 0.05
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    token_ids = np.random.default_rng(4).integers(0, 60, size=(2, 16)).astype("int32")
    padding_mask = np.ones(token_ids.shape, bool)
    diff = max_real_diff(
        hf_logits(reloaded, token_ids, padding_mask), our_logits(model, token_ids, padding_mask), padding_mask
    )
    print(f"\n[interop] GPT-2 fresh llm_tf model ->HF logits max|diff| = {diff:.3g}")
    assert diff <= TOLERANCE
    again, _ = load_hf_gpt2(tmp_path)
    assert again.config == config


# --------------------------------------------------------------------------------------------------
# Tokenizer


TEXTS = ["Hello world, hello tokenizer!", "naïve café 🙂 and 12345", "  leading spaces and\nnew lines"]


def tiny_byte_level_bpe():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCABULARY_SIZE + 200,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TEXTS * 4 + ["the quick brown fox jumps over the lazy dog"] * 4, trainer)
    return tokenizer


def test_tokenizer_json_next_to_the_checkpoint_loads_as_bpe(hf_gpt2, tmp_path):
    hf_tokenizer = tiny_byte_level_bpe()
    vocabulary_size = hf_tokenizer.get_vocab_size()
    torch.manual_seed(0)
    hf_model = transformers.GPT2LMHeadModel(hf_config(vocab_size=vocabulary_size)).eval()
    hf_model.save_pretrained(tmp_path / "hf")
    hf_tokenizer.save(str(tmp_path / "hf" / "tokenizer.json"))
    model, tokenizer = load_hf_gpt2(tmp_path / "hf")
    assert isinstance(tokenizer, BPETokenizer)
    assert tokenizer.vocabulary_size == vocabulary_size == model.config.vocabulary_size
    reference = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "hf" / "tokenizer.json"))
    expected = [reference(text, add_special_tokens=False)["input_ids"] for text in TEXTS]
    assert tokenizer.encode(TEXTS) == expected
    assert all(len(ids) > 0 for ids in expected)
    assert [tokenizer.decode(ids) for ids in expected] == TEXTS

    # Exported with the tokenizer, the folder opens with AutoTokenizer and gives the same ids.
    save_hf_gpt2(model, tmp_path / "ours", tokenizer=tokenizer)
    exported = transformers.AutoTokenizer.from_pretrained(tmp_path / "ours")
    assert [exported(text, add_special_tokens=False)["input_ids"] for text in TEXTS] == expected
    hf_config_dict = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert hf_config_dict["eos_token_id"] == hf_tokenizer.token_to_id("<|endoftext|>")
    assert hf_config_dict["pad_token_id"] is None  # GPT-2-style vocabularies have no padding token
    with pytest.raises(ValueError, match="must be a BPETokenizer"):
        save_hf_gpt2(model, tmp_path / "bad", tokenizer="gpt2")
    assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------------------------------------------
# Errors


def copy_checkpoint(checkpoint, destination, config_changes=None, drop_tensor=None):
    shutil.copytree(checkpoint, destination)
    if config_changes:
        config = json.loads((destination / "config.json").read_text())
        config.update(config_changes)
        (destination / "config.json").write_text(json.dumps(config))
    if drop_tensor:
        tensors = load_file(destination / "model.safetensors")
        del tensors[drop_tensor]
        save_file(tensors, destination / "model.safetensors", metadata={"format": "pt"})
    return destination


def test_missing_files_raise_file_not_found(checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_hf_gpt2(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hf_gpt2(tmp_path)
    shutil.copy(checkpoint / "config.json", tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_hf_gpt2(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="only a PyTorch/TF weights file"):
        load_hf_gpt2(tmp_path)


def test_unknown_tensors_are_reported_and_known_buffers_are_not(checkpoint, tmp_path):
    directory = shutil.copytree(checkpoint, tmp_path / "copy")
    tensors = load_file(directory / "model.safetensors")
    tensors["score.weight"] = np.ones((2, 32), np.float32)  # e.g. a GPT2ForSequenceClassification head
    tensors["transformer.h.0.attn.bias"] = np.ones((1, 1, 48, 48), np.float32)  # old causal-mask buffer
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
    with pytest.warns(UserWarning, match="does not use: score.weight.$"):
        load_hf_gpt2(directory)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_type": "bert"}, "model_type='bert'"),
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx=True"),
        ({"scale_attn_weights": False}, "scale_attn_weights=False"),
        ({"add_cross_attention": True}, "add_cross_attention=True"),
        ({"activation_function": "quick_gelu"}, "activation_function='quick_gelu'"),
        # The config now claims more positions than the file's wpe holds: the tensor is named.
        ({"n_positions": 64}, r"'wpe.weight'.*\(48, 32\).*\(64, 32\)"),
    ],
)
def test_bad_configs_raise_value_error(checkpoint, tmp_path, changes, message):
    directory = copy_checkpoint(checkpoint, tmp_path / "copy", config_changes=changes)
    with pytest.raises(ValueError, match=message):
        load_hf_gpt2(directory)


def test_missing_tensor_is_named(checkpoint, tmp_path):
    directory = copy_checkpoint(checkpoint, tmp_path / "copy", drop_tensor="transformer.h.1.mlp.c_fc.bias")
    with pytest.raises(ValueError, match=r"lacks the tensor 'h.1.mlp.c_fc.bias'"):
        load_hf_gpt2(directory)


def test_export_rejects_what_gpt2_cannot_express(tmp_path):
    base = dict(
        vocabulary_size=20,
        max_sequence_length=8,
        hidden_dim=8,
        num_layers=1,
        num_heads=2,
        intermediate_dim=16,
    )
    for field, value in (
        ("norm_first", False),
        ("position", "sinusoidal"),
        ("use_bias", False),
        ("final_norm", False),
    ):
        with pytest.raises(ValueError, match=f"{field}="):
            save_hf_gpt2(GPT(GPTConfig(**base, **{field: value})), tmp_path / field)
        assert not (tmp_path / field).exists()
    with pytest.raises(ValueError, match="must be an llm_tf GPT"):
        save_hf_gpt2(object(), tmp_path / "object")
