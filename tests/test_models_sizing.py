"""Model sizing: exact parameter counts, training FLOPs per token, the description table and the CLI."""

import dataclasses

import pytest

from llm_tf.models import GPTConfig, count_parameters, describe_config, sizing, training_flops_per_token


def gpt_closed_form(config):
    """GPT parameters written out by hand: embeddings, L blocks, final norm, optional untied head."""
    d, f, V, T, L = (
        config.hidden_dim,
        config.intermediate_dim,
        config.vocabulary_size,
        config.max_sequence_length,
        config.num_layers,
    )
    bias = config.use_bias
    attention = 4 * d * d + (4 * d if bias else 0)
    feed_forward = 2 * d * f + (f + d if bias else 0)
    norms = 2 * 2 * d
    embedding = V * d + (T * d if config.position == "learned" else 0)
    total = embedding + L * (attention + feed_forward + norms)
    total += 2 * d if config.final_norm else 0
    total += 0 if config.tie_embeddings else d * V
    return total, embedding


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tie_embeddings": False},
        {"use_bias": False, "final_norm": False},
        {"position": "sinusoidal", "intermediate_dim": 48},
    ],
)
def test_gpt_counts_match_the_closed_form(overrides):
    config = GPTConfig(
        vocabulary_size=101,
        max_sequence_length=24,
        hidden_dim=16,
        num_layers=3,
        num_heads=4,
        intermediate_dim=64,
    )
    config = dataclasses.replace(config, **overrides)
    total, embedding = gpt_closed_form(config)
    assert count_parameters(config) == total
    assert count_parameters(config, include_embeddings=False) == total - embedding


def test_gpt2_small_has_its_published_size():
    config = GPTConfig.from_preset("small")
    assert count_parameters(config) == 124_439_808  # Hugging Face GPT2LMHeadModel("gpt2")
    assert count_parameters(config, include_embeddings=False) == 85_056_000  # Kaplan et al.: 85M


def test_training_flops_formula():
    config = GPTConfig.from_preset("tiny", vocabulary_size=65, max_sequence_length=64)
    n = count_parameters(config, include_embeddings=False)
    assert training_flops_per_token(config) == 6 * n + 12 * 2 * 128 * 64
    assert training_flops_per_token(config, sequence_length=16) == 6 * n + 12 * 2 * 128 * 16
    every = count_parameters(config)
    assert training_flops_per_token(config, 16, include_embeddings=True) == 6 * every + 12 * 2 * 128 * 16
    with pytest.raises(ValueError, match=r"sequence_length=0"):
        training_flops_per_token(config, 0)


def test_other_families_by_duck_typing():
    seq2seq = pytest.importorskip("llm_tf.models.seq2seq")
    config = seq2seq.Seq2SeqConfig.from_preset("tiny", vocabulary_size=300)
    model = seq2seq.Seq2SeqTransformer(config)
    assert count_parameters(config) == model.count_params()
    assert sizing.num_layers(config) == config.num_encoder_layers + config.num_decoder_layers
    n = count_parameters(config, include_embeddings=False)
    assert n < count_parameters(config)
    expected = 6 * n + 12 * sizing.num_layers(config) * config.hidden_dim * config.max_sequence_length
    assert training_flops_per_token(config) == expected

    encoder = pytest.importorskip("llm_tf.models.transformer_encoder")
    config = encoder.TransformerEncoderConfig.from_preset("tiny", vocabulary_size=500)
    assert count_parameters(config) == encoder.TransformerEncoder(config).count_params()
    embeddings = 500 * 128 + 512 * 128 + config.num_segments * 128
    assert count_parameters(config, include_embeddings=False) == count_parameters(config) - embeddings


def test_unknown_config_type_raises():
    @dataclasses.dataclass
    class Unrelated:
        width: int = 3

    with pytest.raises(ValueError, match=r"GPTConfig, TransformerEncoderConfig or Seq2SeqConfig.*Unrelated"):
        count_parameters(Unrelated())


def test_describe_config_table():
    config = GPTConfig.from_preset("tiny", vocabulary_size=65, max_sequence_length=64)
    text = describe_config(config)
    total = count_parameters(config)
    assert text.splitlines()[0] == "GPTConfig (family gpt)"
    assert f"{total:,}" in text
    assert f"{training_flops_per_token(config):.3e}" in text
    assert "T=64" in text and "T=32" in describe_config(config, sequence_length=32)


def test_cli_prints_every_preset_and_the_chosen_one(capsys):
    assert sizing.main(["--family", "seq2seq", "--preset", "mini", "--vocabulary-size", "1000"]) == 0
    out = capsys.readouterr().out
    for name in ("tiny", "mini *", "small", "base"):
        assert f"\n{name} " in out
    assert "preset 'mini':" in out and "Seq2SeqConfig (family seq2seq)" in out
    assert sizing.main(["--family", "seq2seq", "--vocabulary-size", "1000", "--budget-flops", "1e15"]) == 0
    assert "tokens in budget" in capsys.readouterr().out
    assert sizing.main(["--family", "gpt", "--preset", "huge"]) == 2
    assert "unknown gpt preset 'huge'" in capsys.readouterr().err
