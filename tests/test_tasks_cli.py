"""llm_tf.tasks.cli: common flags, presets + overrides, seeds, printed configs and tables."""

import argparse
import dataclasses

import pytest

from llm_tf.tasks import cli


@dataclasses.dataclass
class Demo:
    epochs: int = 8
    learning_rate: float = 1e-3
    seeds: list = dataclasses.field(default_factory=lambda: [0, 1, 2])


def test_common_arguments_parse_and_output_dir_is_runs_root():
    parser = cli.add_common_arguments(argparse.ArgumentParser(), ["full", "smoke"])
    args = parser.parse_args(["--preset", "smoke", "--output-dir", "/tmp/x", "--precision", "mixed_bfloat16"])
    assert (args.preset, args.runs_root, args.precision, args.strategy) == ("smoke", "/tmp/x", "mixed_bfloat16", "auto")
    assert parser.parse_args([]).preset == "full" and parser.parse_args([]).runs_root == "runs"
    with pytest.raises(ValueError, match="default_preset"):
        cli.add_common_arguments(argparse.ArgumentParser(), ["full"], default_preset="tiny")
    with pytest.raises(ValueError, match="presets"):
        cli.add_common_arguments(argparse.ArgumentParser(), [])


def test_block_order_arguments_set_one_value_and_leave_it_unset_by_default():
    parser = argparse.ArgumentParser()
    cli.add_block_order_arguments(parser, "pre", "post")
    assert parser.parse_args([]).norm_first is None  # the preset decides
    assert parser.parse_args(["--norm-first"]).norm_first is True
    assert parser.parse_args(["--post-norm"]).norm_first is False


def test_flag_overrides_and_apply_overrides_keep_unset_preset_values():
    overrides = cli.flag_overrides({"epochs": 3, "learning_rate": None, "verbose": 1, "seeds": [4]}, Demo,
                                   skip={"seeds"})
    assert overrides == {"epochs": 3, "learning_rate": None}
    assert cli.apply_overrides(Demo(), overrides) == Demo(epochs=3)
    with pytest.raises(ValueError, match="unknown Demo field"):
        cli.apply_overrides(Demo(), {"no_such_field": 1})
    with pytest.raises(ValueError, match="dataclass"):
        cli.apply_overrides({"epochs": 1}, {})
    assert cli.config_from_dict(Demo, {"epochs": 2}) == Demo(epochs=2)
    with pytest.raises(ValueError, match="unknown Demo field"):
        cli.config_from_dict(Demo, {"epoch": 2})


def test_resolve_seeds():
    assert cli.resolve_seeds(None, None, None, default=[0, 1, 2]) == [0, 1, 2]
    assert cli.resolve_seeds(7, None, None, default=[0]) == [7]
    assert cli.resolve_seeds(4, None, 3, default=[0]) == [4, 5, 6]
    assert cli.resolve_seeds(None, [3, 1], None, default=[0]) == [3, 1]
    with pytest.raises(ValueError, match="num-seeds"):
        cli.resolve_seeds(None, [1], 2, default=[0])
    with pytest.raises(ValueError, match="non-negative"):
        cli.resolve_seeds(None, [-1], None, default=[0])
    with pytest.raises(ValueError, match="distinct"):
        cli.resolve_seeds(None, [1, 1], None, default=[0])


def test_format_table_aligns_columns_and_checks_row_lengths():
    table = cli.format_table(["model", "accuracy"], [["svm", 0.98], ["transformer", 0.5]])
    lines = table.splitlines()
    assert lines[0].startswith("model") and lines[2].endswith("0.9800") and lines[3].endswith("0.5000")
    assert len({line.index("|") for line in (lines[0], lines[2], lines[3])}) == 1
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        cli.format_table(["a", "b"], [["x"]])


def test_default_data_dir_prefers_flag_then_environment(monkeypatch):
    assert cli.default_data_dir("/given") == "/given"
    monkeypatch.setenv("LLM_TF_DATA_DIR", "/from/env")
    assert cli.default_data_dir(None) == "/from/env"


def test_print_config(capsys):
    cli.print_config(Demo(epochs=2), title="demo")
    out = capsys.readouterr().out
    assert out.startswith("demo:\n") and '"epochs": 2' in out


def _classification_parser():
    parser = cli.add_common_arguments(argparse.ArgumentParser(), ["full"])
    return cli.add_classification_arguments(parser, data_formats=["bbc", "folder", "csv"])


def test_classification_flags_override_the_preset_and_infer_the_data_format(tmp_path):
    from llm_tf.tasks.classification import ClassificationConfig

    preset = ClassificationConfig(preset="full", data_format="bbc", seeds=[0, 1, 2])
    parser = _classification_parser()

    def config(*flags):
        return cli.classification_config(vars(parser.parse_args(list(flags))), preset, named_formats=["bbc"])

    assert config().data_format == "bbc" and config().seeds == [0, 1, 2]
    assert config("--seed", "4", "--num-seeds", "2", "--epochs", "3").seeds == [4, 5]
    assert config().attention_dropout is None  # follows --dropout unless given
    assert config("--attention-dropout", "0", "--dropout", "0.2").attention_dropout == 0.0
    (tmp_path / "train").mkdir()
    folder = config("--train-path", str(tmp_path / "train"), "--file-pattern", "*.txt", "--folds", "3")
    assert (folder.data_format, folder.data_path, folder.file_pattern, folder.folds) == (
        "folder", str(tmp_path / "train"), "*.txt", 3)
    table = config("--train-path", "t.csv", "--text-column", "title", "--text-column", "body", "--label-column",
                   "topic", "--no-header", "--jit-compile", "true")
    assert (table.data_format, table.text_column, table.has_header, table.jit_compile) == (
        "csv", ["title", "body"], False, True)
    assert table.data_dir is None
    with pytest.raises(ValueError, match="--data-dir"):
        config("--train-path", str(tmp_path / "train"), "--data-dir", "/data")
    with pytest.raises(ValueError, match="label_column"):
        config("--train-path", "t.csv", "--text-column", "body")
    with pytest.raises(ValueError, match="num-seeds"):
        config("--seeds", "1", "--num-seeds", "2")


def test_experiment_config_base_round_trips_and_rejects_unknown_fields():
    from llm_tf.tasks.classification import ClassificationConfig

    config = ClassificationConfig(data_format="bbc", folds=5, text_column=None)
    assert ClassificationConfig.from_json(config.to_json()) == config
    assert config.recipe()["max_sequence_length"] == 256 and "seeds" not in config.recipe()
    with pytest.raises(ValueError, match="unknown ClassificationConfig field"):
        ClassificationConfig.from_dict({**config.to_dict(), "no_such": 1})
    with pytest.raises(ValueError, match="folds"):
        ClassificationConfig(data_format="bbc", folds=1)
    with pytest.raises(ValueError, match="data_path"):
        ClassificationConfig(data_format="folder")
