"""experiments/pretrain.py --objective causal and experiments/news_writing.py: command lines and smoke presets end to
end on the real books and BBC News (library pieces: tests/test_tasks_news_writing.py)."""

import json
import math
import os

import pytest

from experiments import news_writing as experiment
from experiments import pretrain


def test_help_and_presets(capsys):
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main(["--objective", "causal", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--block-size", "--vocabulary-size", "--max-iters", "--sample-prompts", "--add-texts"):
        assert flag in text
    full = pretrain.CAUSAL_PRESETS["full"]
    assert (full.vocabulary_size, full.block_size, full.tie_embeddings, full.weight_decay) == (16000, 256, True, 0.1)
    with pytest.raises(SystemExit) as exit_info:
        experiment.main(["--help"])
    assert exit_info.value.code == 0
    assert "--init-from" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        experiment.main(["--preset", "smoke"])  # no --init-from
    assert "--init-from is required" in capsys.readouterr().err


@pytest.fixture(scope="module")
def pretrained_run(shared_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    results = pretrain.main(["--objective", "causal", "--preset", "smoke", "--data-dir", str(shared_data_dir),
                             "--output-dir", str(root), "--resume", "never"])
    return results, root


@pytest.mark.slow
@pytest.mark.data
def test_causal_pretraining_smoke_reports_bits_per_byte_and_samples(pretrained_run):
    results, _ = pretrained_run
    run_dir = results["run_dir"]
    assert results["status"] == "completed"
    progress = results["progress"]
    assert [row["step"] for row in progress] == [0, 10, 20]
    data = results["data"]
    assert data["validation_documents"] >= 1 and data["train_documents"] >= 1
    for row in progress:
        expected = row["val_loss"] / math.log(2) / data["bytes_per_token"]
        assert row["val_bits_per_byte"] == pytest.approx(expected, rel=1e-3)
    assert progress[-1]["val_loss"] < progress[0]["val_loss"], "pretraining must lower the held-out loss"
    prompts = results["config"]["sample_prompts"]
    assert len(results["samples"]) == len(prompts) and all(s.startswith(p) for s, p in zip(results["samples"], prompts))
    for name in ("pretrain_eval.csv", "pretrain_eval.png", "samples.md", "last.keras", "tokenizer"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    with open(os.path.join(run_dir, "samples.md"), encoding="utf-8") as handle:
        assert "## step 10" in handle.read()


@pytest.mark.slow
@pytest.mark.data
def test_news_writing_smoke_compares_pretrained_and_scratch_and_generates(pretrained_run, shared_data_dir, capsys):
    pretrained, root = pretrained_run
    argv = ["--preset", "smoke", "--init-from", pretrained["run_dir"], "--data-dir", str(shared_data_dir),
            "--output-dir", str(root), "--resume", "never"]
    results = experiment.main(argv)
    run_dir = results["run_dir"]
    bits = results["bits_per_byte"]
    for start in ("pretrained", "scratch"):
        assert 0 < bits[start]["test_bits_per_byte_mean"] < 10
        member = results["members"][f"{start}_seed_0"]
        assert member["test"]["articles"] == 12 and member["status"] == "completed"
    assert bits["ratio_pretrained_to_scratch"] == pytest.approx(
        bits["pretrained"]["test_bits_per_byte_mean"] / bits["scratch"]["test_bits_per_byte_mean"])
    samplers = results["samplers"]
    assert set(samplers) == {f"pretrained/{name}" for name in experiment.SAMPLERS} | {"scratch/top_p_0.9"}
    assert samplers["pretrained/top_p_0.9"]["articles"] == 12 and samplers["pretrained/beam_4"]["articles"] == 4
    for row in samplers.values():
        assert 0 <= row["topic_agreement"] <= 1 and 0 <= row["distinct_2"] <= 1
    assert results["topic_classifier"]["accuracy_on_real_test_bodies"] > 0.8
    for start in ("pretrained", "scratch"):
        sensitivity = results["topic_sensitivity"][start]
        assert sensitivity["articles"] == 12 and len(sensitivity["topics"]) == 5
        assert 0 <= sensitivity["topic_by_likelihood_accuracy"] <= 1
        assert 0 < sensitivity["bits_per_byte_true_topic"] < 10 and 0 < sensitivity["bits_per_byte_other_topics"] < 10
    assert "does the model use the topic line?" in results["summary"]
    assert results["generation_speed"]["batch_1"] > 0 and results["generation_speed"]["batch_8"] > 0
    with open(os.path.join(run_dir, "generated_pretrained_top_p_0.9.jsonl"), encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle]
    assert len(lines) == 12 and lines[0]["prompt"].startswith("topic: ") and lines[0]["test_index"] == 0
    with open(os.path.join(run_dir, "generated_pretrained_beam_4.jsonl"), encoding="utf-8") as handle:
        beam_topics = {json.loads(line)["prompt"].split("\n")[0] for line in handle}
    assert len(beam_topics) > 1, "the sampler subset is spread over the topic-ordered test split"
    with open(os.path.join(run_dir, "examples.md"), encoding="utf-8") as handle:
        assert "Generated, pretrained/top_p_0.9" in handle.read()
    guided = results["topic_guidance"]["3"]
    assert guided["articles"] == 12 and 0 <= guided["topic_agreement"] <= 1 and "bodies" not in guided
    with open(os.path.join(run_dir, "generated_pretrained_top_p_0.9_guidance_3.jsonl"), encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle]
    assert len(lines) == 12 and lines[0]["negative_prompt"].startswith("title: "), "default negative: the title"

    # A finished fine-tuning is reloaded, never trained again (its backup is gone once it completes).
    from llm_tf.tasks import news_writing
    from llm_tf.tasks.runs import member_run_dir

    weights = os.path.join(run_dir, "pretrained_seed_0", "last.keras")
    modified = os.path.getmtime(weights)
    member = member_run_dir(run_dir, "pretrained_seed_0", {})
    config = news_writing.NewsWritingConfig(**{**results["config"], "seed": 0})
    model, reloaded = news_writing.fine_tune(member, config, None, None, None, None)
    assert os.path.getmtime(weights) == modified and reloaded["status"] == "completed"
    assert model.config.max_sequence_length == results["config"]["block_size"]

    capsys.readouterr()
    text = experiment.main(["generate", "--run-dir", run_dir, "--topic", "sport", "--title", "Claxton wins gold",
                            "--max-new-tokens", "8", "--seed", "3"])
    assert text.startswith("topic: sport\ntitle: Claxton wins gold\n\n")
    same = experiment.main(["generate", "--run-dir", run_dir, "--prompt", "topic: sport\\ntitle: Claxton wins gold",
                            "--max-new-tokens", "8", "--seed", "3"])
    assert same == text, "--prompt with \\n escapes is the same prompt as --topic/--title"
    with pytest.raises(SystemExit):
        experiment.main(["generate", "--run-dir", pretrained["run_dir"], "--topic", "sport", "--title", "x"])
    assert "not a finished news_writing run" in capsys.readouterr().err

    guided_text = experiment.main(["generate", "--run-dir", run_dir, "--topic", "sport", "--title", "Claxton wins gold",
                                   "--max-new-tokens", "8", "--seed", "3", "--guidance", "1"])
    assert guided_text == text, "guidance scale 1 is plain decoding"
    title_guided = experiment.main(["generate", "--run-dir", run_dir, "--topic", "sport", "--title",
                                    "Claxton wins gold", "--max-new-tokens", "8", "--seed", "3", "--topic-guidance",
                                    "1", "--guidance-negative", "blank"])
    assert title_guided == text, "--topic-guidance is the old name of --guidance"
    measured = experiment.main(["topic-guidance", "--run-dir", run_dir, "--scales", "2", "--negative", "blank"])
    assert set(measured["scales"]) == {"2"} and measured["scales"]["2"]["articles"] == 12
    assert measured["negative"] == "blank" and measured["scales"]["2"]["negative"] == "blank"
    with open(os.path.join(run_dir, "topic_guidance_blank.json"), encoding="utf-8") as handle:
        assert json.load(handle)["scales"]["2"]["topic_agreement"] == measured["scales"]["2"]["topic_agreement"]
    assert "with guidance (negative prompt: '\\n\\n')" in capsys.readouterr().out
