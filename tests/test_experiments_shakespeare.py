"""experiments/gpt_shakespeare.py: the smoke preset end to end on the real data, and its building blocks."""

import csv
import dataclasses
import json
import math
import os

import numpy as np
import pytest

from experiments import gpt_shakespeare as experiment


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


# ------------------------------------------------------------------------------------------------------------
# Command line and config.


def test_help_lists_the_recipe_and_common_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        experiment.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--preset", "--data-dir", "--output-dir", "--strategy", "--precision", "--seed", "--max-iters",
                 "--steps-per-execution", "--sample-length"):
        assert flag in text


def test_full_preset_is_the_nanogpt_cpu_recipe_and_round_trips_through_json():
    config = experiment.preset_config("full")
    recipe = (config.num_layers, config.num_heads, config.hidden_dim, config.block_size, config.batch_size,
              config.max_iters, config.learning_rate, config.min_learning_rate, config.warmup_iters,
              config.beta_2, config.weight_decay, config.grad_clip, config.dropout, config.eval_interval,
              config.eval_iters)
    assert recipe == (4, 4, 128, 64, 12, 2000, 1e-3, 1e-4, 100, 0.99, 0.1, 1.0, 0.0, 250, 20)
    assert experiment.ShakespeareConfig.from_json(config.to_json()) == config
    assert experiment._is_recipe(dataclasses.replace(config, seed=3, precision="mixed_bfloat16"))
    assert not experiment._is_recipe(experiment.preset_config("smoke"))
    assert (config.use_bias, config.tie_embeddings, config.decay_embeddings) == (True, False, True)
    args = experiment.build_parser().parse_args(
        ["--preset", "smoke", "--max-iters", "60", "--no-bias", "--tie-embeddings"]
    )
    changed = experiment.config_from_args(args)
    assert (changed.max_iters, changed.use_bias, changed.tie_embeddings, changed.hidden_dim) == (60, False, True, 32)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"max_iters": 2100}, "max_iters"),
        ({"steps_per_execution": 100}, "steps_per_execution"),
        ({"block_size": 0}, "block_size"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"min_learning_rate": 0.01}, "min_learning_rate"),
        ({"hidden_dim": 130}, "hidden_dim"),
        ({"sample_prompt": ""}, "sample_prompt"),
    ],
)
def test_bad_config_values_raise_value_error_naming_the_field(overrides, named):
    with pytest.raises(ValueError, match=named):
        experiment.ShakespeareConfig(**overrides)


def test_unknown_config_field_in_json_is_rejected():
    values = json.loads(experiment.ShakespeareConfig().to_json())
    values["learning_rat"] = 1.0
    with pytest.raises(ValueError, match="learning_rat"):
        experiment.ShakespeareConfig.from_json(json.dumps(values))


# ------------------------------------------------------------------------------------------------------------
# Data.


def test_training_batches_are_shifted_windows_reproducible_per_epoch():
    ids = np.arange(1000, dtype=np.int32) % 65
    config = experiment.ShakespeareConfig(block_size=8, batch_size=3, max_iters=10, eval_interval=5,
                                          steps_per_execution=5, warmup_iters=2, seed=3)
    batches_for_epoch = experiment.training_batches(ids, config)
    first = list(batches_for_epoch(0).as_numpy_iterator())
    again = list(batches_for_epoch(0).as_numpy_iterator())
    other_epoch = list(batches_for_epoch(1).as_numpy_iterator())
    assert len(first) == 5
    inputs, labels = first[0]
    assert set(inputs) == {"token_ids"}  # no padding mask: the GPT then uses its causal mask only
    assert inputs["token_ids"].shape == (3, 8) and labels.shape == (3, 8)
    # ids[i] = i % 65, so every window is consecutive and the labels are the inputs moved by one.
    np.testing.assert_array_equal(labels[:, :-1], inputs["token_ids"][:, 1:])
    np.testing.assert_array_equal((inputs["token_ids"][:, -1] + 1) % 65, labels[:, -1])
    for (x1, _), (x2, _) in zip(first, again):
        np.testing.assert_array_equal(x1["token_ids"], x2["token_ids"])
    assert not all(np.array_equal(a[0]["token_ids"], b[0]["token_ids"]) for a, b in zip(first, other_epoch))


def test_sequential_windows_cover_the_split_without_overlap():
    inputs, labels = experiment.sequential_windows(np.arange(11), 3)
    assert inputs.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert labels.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_character_data_matches_nanogpt(shared_data_dir):
    config = experiment.ShakespeareConfig(data_dir=str(shared_data_dir))
    tokenizer, train_ids, val_ids = experiment.load_character_data(config)
    assert tokenizer.vocabulary_size == 65
    assert (len(train_ids), len(val_ids)) == (1_003_854, 111_540)
    assert tokenizer.decode(train_ids[:14].tolist()) == "First Citizen:"
    assert int(train_ids.min()) >= 0 and int(train_ids.max()) == 64


def test_missing_data_raises_file_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_TF_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="tiny_shakespeare"):
        experiment.load_character_data(experiment.ShakespeareConfig(data_dir=str(tmp_path)))


def test_too_few_characters_raise_value_error(shared_data_dir):
    config = experiment.ShakespeareConfig(data_dir=str(shared_data_dir), max_characters=300)
    with pytest.raises(ValueError, match="max_characters"):
        experiment.load_character_data(config)


def test_scaled_residual_init_touches_only_the_residual_output_projections():
    config = experiment.ShakespeareConfig(block_size=16, hidden_dim=64, num_layers=2, num_heads=2,
                                          intermediate_dim=256, scale_residual_init=True)
    scaled = experiment.build_model(config, 65)
    plain = experiment.build_model(dataclasses.replace(config, scale_residual_init=False), 65)
    expected = 0.02 / math.sqrt(2 * 2)
    for block in scaled.blocks:
        for dense in (block.self_attention.output_dense, block.feed_forward.output_dense):
            assert float(np.std(np.asarray(dense.kernel))) == pytest.approx(expected, rel=0.1)
        assert float(np.std(np.asarray(block.feed_forward.intermediate_dense.kernel))) == pytest.approx(0.02, rel=0.1)
    for block in plain.blocks:
        assert float(np.std(np.asarray(block.feed_forward.output_dense.kernel))) == pytest.approx(0.02, rel=0.1)


# ------------------------------------------------------------------------------------------------------------
# Sampling.


def _tiny_gpt(context=6):
    import keras

    from llm_tf.models import GPT, GPTConfig

    keras.utils.set_random_seed(1)
    return GPT(GPTConfig(vocabulary_size=11, max_sequence_length=context, hidden_dim=16, num_layers=1,
                         num_heads=2, intermediate_dim=32, initializer_range=0.5))


def test_sliding_window_sampling_matches_a_cropped_context_reference():
    model = _tiny_gpt(context=6)
    prompt = [3, 1, 4]
    # A near-zero temperature turns sampling into argmax; the reference crops to the last 6 tokens each step.
    sampled = experiment.sample_characters(model, prompt, 9, temperature=1e-4, seed=0, jit_compile=False)
    tokens = list(prompt)
    for _ in range(9):
        logits = np.asarray(model(np.array([tokens[-6:]], np.int32)))[0, -1]
        tokens.append(int(np.argmax(logits)))
    assert sampled == tokens[len(prompt):]


def test_sampling_is_reproducible_per_seed_and_respects_top_k():
    model = _tiny_gpt(context=6)

    def sample(seed, temperature=1.5, top_k=None):
        # Plain graphs here (the smoke test samples with XLA): five compilations would cost seconds.
        return experiment.sample_characters(model, [2], 12, temperature=temperature, top_k=top_k, seed=seed,
                                            jit_compile=False)

    first, again, other = sample(5), sample(5), sample(6)
    assert first == again and len(first) == 12 and first != other
    assert all(0 <= token < 11 for token in first)
    assert sample(9, top_k=1) == sample(1, temperature=1e-4)
    with pytest.raises(ValueError, match="prompt_ids"):
        experiment.sample_characters(model, [], 3)
    with pytest.raises(ValueError, match="top_k"):
        experiment.sample_characters(model, [1], 3, top_k=0)


# ------------------------------------------------------------------------------------------------------------
# The smoke preset end to end.


@pytest.mark.data
def test_smoke_preset_trains_evaluates_samples_and_writes_the_run_directory(shared_data_dir, tmp_path):
    results = experiment.main(
        ["--preset", "smoke", "--data-dir", str(shared_data_dir), "--output-dir", str(tmp_path), "--resume", "never"]
    )
    run_dir = results["run_dir"]
    assert os.path.dirname(run_dir) == os.path.join(str(tmp_path), "gpt_shakespeare")
    for name in ("config.json", "metrics.csv", "best.keras", "last.keras", "results.json",
                 "training_curves.png", "eval_losses.csv", "eval_losses.png", "sample.txt", "summary.txt",
                 "tokenizer"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert os.listdir(os.path.join(run_dir, "tensorboard"))
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as file:
        saved = experiment.config_from_dict(experiment.ShakespeareConfig, json.load(file))
    assert saved.preset == "smoke" and saved.max_iters == 40

    # Evaluations at iterations 0, 20, 40; at 0 the loss is that of a near-uniform guess over 65 characters.
    rows = _read_csv(os.path.join(run_dir, "eval_losses.csv"))
    assert [int(row["iteration"]) for row in rows] == [0, 20, 40]
    first, last = (float(rows[0]["val_loss"]), float(rows[0]["train_loss"])), float(rows[-1]["val_loss"])
    assert all(abs(value - math.log(65)) < 0.3 for value in first)
    assert last < first[0] - 0.3
    # The table's val_loss after each interval is the val_loss that fit logged (the same fixed windows).
    epochs = _read_csv(os.path.join(run_dir, "metrics.csv"))
    assert len(epochs) == 2
    for epoch_row, eval_row in zip(epochs, rows[1:]):
        assert float(epoch_row["val_loss"]) == pytest.approx(float(eval_row["val_loss"]), abs=2e-3)

    with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as file:
        saved_results = json.load(file)
    metrics = saved_results["metrics"]
    assert metrics["val_loss"] == pytest.approx(last)
    assert metrics["final_iteration"] == 40
    # The whole-split loss (a separate code path) agrees with the fixed windows' estimate.
    assert metrics["full_val_loss"] == pytest.approx(last, abs=0.25)
    assert saved_results["num_parameters"] == results["num_parameters"] > 10_000
    assert saved_results["status"] == "completed" and saved_results["total_wall_time_s"] > 0
    assert saved_results["meets_target"] is None  # the 1.85 target is for the full recipe only
    # Two compiled calls of 20 steps: the first (with compilation) is left out of the ms/step figure.
    assert len(saved_results["execution_seconds"]) == 2 and saved_results["ms_per_step"] > 0
    # last.keras is the trained model: reloaded, it gives the final validation loss on the same windows.
    import keras

    reloaded = keras.saving.load_model(os.path.join(run_dir, "last.keras"))
    _, _, val_ids = experiment.load_character_data(saved)
    inputs, labels = experiment.fixed_eval_windows(val_ids, saved, 1)
    assert experiment.LossEvaluator(reloaded, jit_compile=False)(inputs, labels) == pytest.approx(last, abs=1e-4)
    with open(os.path.join(run_dir, "sample.txt"), encoding="utf-8") as file:
        sample = file.read()
    assert len(sample) == 80 and sample == saved_results["sample"]
    with open(os.path.join(run_dir, "tokenizer", os.listdir(os.path.join(run_dir, "tokenizer"))[0]),
              encoding="utf-8") as file:
        assert file.read()
