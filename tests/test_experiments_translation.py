"""experiments/translation.py: the command line (the library pieces: tests/test_tasks_seq2seq.py). The smoke preset
end to end on the real Multi30k is checked in tests/test_reproducibility.py, where one smoke run is both the
end-to-end test and the reference that a run killed and resumed must equal."""


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
