"""experiments/translation.py: the command line and the smoke preset end to end on the real Multi30k (the library
pieces: tests/test_tasks_seq2seq.py; exact resume is llm_tf.training.train's, tested in tests/test_resume.py)."""

import os

import pytest

from experiments import translation as experiment


def test_help_and_presets(capsys):
    with pytest.raises(SystemExit) as exit_info:
        experiment.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--source", "--target", "--max-minutes", "--max-tokens", "--num-beams", "--average-last",
                 "--preset", "--resume", "--output-dir"):
        assert flag in text
    full = experiment.config_from_args(experiment.build_parser().parse_args([]))
    assert (full.source, full.target, full.hidden_dim, full.num_layers, full.dropout, full.label_smoothing) == (
        "en", "de", 128, 4, 0.3, 0.1)
    changed = experiment.config_from_args(experiment.build_parser().parse_args(
        ["--preset", "smoke", "--source", "de", "--target", "en", "--epochs", "3"]))
    assert (changed.source, changed.target, changed.epochs, changed.hidden_dim) == ("de", "en", 3, 32)
    assert full.precision == "float32"  # --precision is part of the saved recipe (a resumed run keeps it)
    bfloat16 = experiment.config_from_args(experiment.build_parser().parse_args(["--precision", "mixed_bfloat16"]))
    assert bfloat16.precision == "mixed_bfloat16"
    assert full.norm_first  # pre-norm unless --post-norm; both are recorded in config.json
    post_norm = experiment.config_from_args(experiment.build_parser().parse_args(["--post-norm"]))
    assert post_norm.norm_first is False
    assert experiment.TranslationConfig.from_dict(post_norm.to_dict()).norm_first is False
    with pytest.raises(ValueError, match="source"):
        experiment.config_from_args(experiment.build_parser().parse_args(["--target", "en"]))


@pytest.mark.slow
@pytest.mark.data
def test_smoke_preset_trains_decodes_and_scores_the_test_set(shared_data_dir, tmp_path):
    argv = ["--preset", "smoke", "--data-dir", str(shared_data_dir), "--output-dir", str(tmp_path), "--resume",
            "never"]
    results = experiment.main(argv)
    run_dir = results["run_dir"]
    assert results["train_status"] == "completed"
    greedy, beam = results["test"]["greedy"], results["test"]["beam3"]
    for scores in (greedy, beam):
        assert scores["bleu_lowercase"] >= scores["bleu"]  # lowercasing only adds matches
        assert "case:mixed" in scores["bleu_signature"] and "case:lc" in scores["bleu_lowercase_signature"]
        assert scores["sentences_per_s"] > 0
    for name in ("summary.md", "bleu_vs_time.png", "cross_attention_1.png", "cross_attention_2.png",
                 "test_greedy.txt", "test_beam3.txt", "best.keras", "tokenizer", "results.json"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    with open(os.path.join(run_dir, "test_greedy.txt")) as handle:
        assert len(handle.read().splitlines()) == 30  # the whole (smoke-sized) test set
    assert [row[0] for row in results["bleu_timeline"]] == [1, 2]  # validation BLEU after every epoch
    assert results["averaged_checkpoints"] == ["epoch_0001.npz", "epoch_0002.npz"]
    with open(os.path.join(run_dir, "summary.md")) as handle:
        summary = handle.read()
    assert "| 10 |" in summary.replace("  ", " ") or "\n 10 |" in summary
