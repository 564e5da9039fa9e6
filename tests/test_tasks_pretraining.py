"""Masked-LM pretraining and fine-tuning from it: packing, masking, loading a pretrained encoder, layer decay."""

import json
import os

import keras
import numpy as np
import pytest

from llm_tf.models import TransformerEncoder, TransformerEncoderConfig
from llm_tf.tasks import classification, cli, pretraining
from llm_tf.text import WordPieceTokenizer


def _write_books(root, count=10):
    """A fake Gutenberg folder: book k by author k, each naming a marker word only it uses."""
    folder = root / "gutenberg" / "data"
    folder.mkdir(parents=True)
    surnames = ["Austen", "Bronte", "Carroll", "Dickens", "Eliot", "Fielding", "Gaskell", "Hardy", "Irving", "James"]
    for k in range(count):
        body = "\n\n".join(f"the marker{k} walked to the river and saw marker{k} again ." for _ in range(30))
        text = (f"Title: Book {k}\nAuthor: Writer {surnames[k]}\n\n*** START OF THE PROJECT GUTENBERG EBOOK B{k} ***\n"
                f"{body}\n*** END OF THE PROJECT GUTENBERG EBOOK B{k} ***\n")
        (folder / f"book{k}.txt").write_text(text, encoding="utf-8")
    return root


def test_pack_sequences_keeps_every_token_in_order_and_frames_each_row():
    documents = [np.arange(10, 17), np.arange(20, 23), np.arange(30, 35)]
    packed = pretraining.pack_sequences(documents, 6, cls_id=2, sep_id=3, pad_id=0)
    assert packed.shape[1] == 6 and (packed[:, 0] == 2).all()
    expected = list(range(10, 17)) + [3] + list(range(20, 23)) + [3] + list(range(30, 35))
    rebuilt = []
    for row in packed:
        real = [int(t) for t in row[1:] if t != 0]
        assert real[-1] == 3, "every row closes with [SEP]"
        rebuilt.extend(real[:-1])
    assert rebuilt == expected
    assert (packed[:-1] != 0).all(), "only the last row may hold padding"
    with pytest.raises(ValueError, match="no tokens to pack"):
        pretraining.pack_sequences([np.zeros(0, np.int32)], 8, cls_id=2, sep_id=3)
    with pytest.raises(ValueError, match="sequence_length"):
        pretraining.pack_sequences(documents, 2, cls_id=2, sep_id=3)


def test_packing_never_puts_a_held_out_book_into_training_rows(tmp_path):
    data_dir = _write_books(tmp_path)
    corpus = pretraining.load_pretraining_corpus(str(data_dir), validation_fraction=0.3, split_seed=1)
    assert corpus.validation and corpus.train
    tokenizer = WordPieceTokenizer.train(corpus.train + corpus.validation, vocabulary_size=300)
    markers = {k: tokenizer.token_to_id(f"marker{k}") for k in range(10)}
    assert all(token_id is not None and token_id != tokenizer.unk_id for token_id in markers.values())
    held_out = {k for k in range(10) if any(f"marker{k} " in text for text in corpus.validation)}
    trained = {k for k in range(10) if any(f"marker{k} " in text for text in corpus.train)}
    assert held_out and trained and not held_out & trained
    for split, allowed in (("train", trained), ("validation", held_out)):
        rows = pretraining.pack_sequences(pretraining.encode_documents(tokenizer, getattr(corpus, split)), 16,
                                          cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)
        seen = {k for k, token_id in markers.items() if (rows == token_id).any()}
        assert seen == allowed, (split, seen, allowed)


@pytest.mark.data
@pytest.mark.slow
def test_real_gutenberg_split_shares_no_book_and_no_author(shared_data_dir):
    from llm_tf.datasets import load_gutenberg

    corpus = load_gutenberg(shared_data_dir)
    train_texts = {book.text[:2000] for book in corpus.train}
    assert not any(book.text[:2000] in train_texts for book in corpus.validation)
    assert not {book.group for book in corpus.train} & {book.group for book in corpus.validation}


@pytest.fixture(scope="module")
def real_rows(shared_data_dir):
    corpus = pretraining.load_pretraining_corpus(str(shared_data_dir), max_books=4, max_chars_per_document=40000)
    tokenizer = WordPieceTokenizer.train(corpus.train, vocabulary_size=1200)
    rows = pretraining.pack_sequences(pretraining.encode_documents(tokenizer, corpus.train), 128,
                                      cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)
    return tokenizer, rows


@pytest.mark.data
def test_masking_statistics_on_a_real_batch(real_rows):
    tokenizer, rows = real_rows
    assert len(rows) >= 100
    inputs, positions, ids, weights = pretraining.mask_sequences(
        rows, np.random.default_rng(0), mask_id=tokenizer.mask_id, vocabulary_size=tokenizer.vocabulary_size,
        special_ids=tokenizer.special_ids, mask_rate=0.15, max_predictions=20)
    chosen = weights > 0
    candidates = ~np.isin(rows, tokenizer.special_ids)
    assert abs(chosen.sum() / candidates.sum() - 0.15) < 0.005
    row_index = np.broadcast_to(np.arange(len(rows))[:, None], positions.shape)[chosen]
    position = positions[chosen]
    assert candidates[row_index, position].all(), "a special token was chosen"
    assert (ids[chosen] == rows[row_index, position]).all(), "labels must be the original tokens"
    assert len(set(zip(row_index.tolist(), position.tolist()))) == chosen.sum(), "a position chosen twice"
    replaced = inputs[row_index, position]
    as_mask = (replaced == tokenizer.mask_id).mean()
    kept = (replaced == ids[chosen]).mean()
    random = 1 - as_mask - kept
    assert abs(as_mask - 0.8) < 0.02 and abs(kept - 0.1) < 0.02 and abs(random - 0.1) < 0.02, (as_mask, kept)
    untouched = np.ones_like(rows, bool)
    untouched[row_index, position] = False
    assert (inputs[untouched] == rows[untouched]).all(), "tokens that were not chosen changed"
    assert (ids[~chosen] == 0).all() and (positions[~chosen] == 0).all()


@pytest.mark.data
def test_whole_word_masking_chooses_whole_words(real_rows):
    tokenizer, rows = real_rows
    continuation = pretraining.continuation_token_ids(tokenizer)
    _, positions, _, weights = pretraining.mask_sequences(
        rows, np.random.default_rng(1), mask_id=tokenizer.mask_id, vocabulary_size=tokenizer.vocabulary_size,
        special_ids=tokenizer.special_ids, max_predictions=20, continuation=continuation)
    chosen = np.zeros_like(rows, bool)
    for r in range(len(rows)):
        chosen[r, positions[r][weights[r] > 0]] = True
    follows = np.zeros_like(rows, bool)
    follows[:, 1:] = continuation[rows[:, 1:]] & ~np.isin(rows[:, :-1], tokenizer.special_ids)
    # A continuation is chosen exactly when the token before it is: words are masked whole.
    assert (chosen[:, 1:][follows[:, 1:]] == chosen[:, :-1][follows[:, 1:]]).all()
    assert follows.any() and chosen[follows].any(), "the batch must exercise multi-piece words"
    fraction = chosen.sum() / (~np.isin(rows, tokenizer.special_ids)).sum()
    assert 0.12 < fraction <= 0.15


def _pretraining_run_dir(path, vocabulary_size=50, max_sequence_length=16, norm_first=False):
    """A finished pretraining run's files: backbone.keras and tokenizer/."""
    tokenizer = WordPieceTokenizer([f"[{name}]" for name in ("PAD", "UNK", "CLS", "SEP", "MASK")]
                                   + [f"w{i}" for i in range(vocabulary_size - 5)])
    config = TransformerEncoderConfig(vocabulary_size=vocabulary_size, max_sequence_length=max_sequence_length,
                                      hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32,
                                      norm_first=norm_first, final_norm=norm_first, embedding_norm=not norm_first)
    keras.utils.set_random_seed(3)
    backbone = TransformerEncoder(config, name="backbone")
    os.makedirs(path, exist_ok=True)
    backbone.save(os.path.join(path, pretraining.BACKBONE_FILE))
    tokenizer.save(os.path.join(path, pretraining.TOKENIZER_DIR))
    return backbone, tokenizer


@pytest.mark.parametrize("norm_first", [False, True])
def test_init_from_restores_the_pretrained_backbone_exactly(tmp_path, norm_first):
    backbone, _ = _pretraining_run_dir(tmp_path / "run", norm_first=norm_first)
    pretrained = pretraining.load_pretrained_encoder(str(tmp_path / "run"))
    assert pretrained.kind == "pretraining run" and pretrained.tokenizer.vocabulary_size == 50
    classifier = classification.classifier_from_pretrained(pretrained, num_classes=3, dropout=0.3)
    assert classifier.backbone.config.dropout == 0.3
    assert classifier.backbone.config.norm_first is norm_first
    inputs = {"token_ids": np.array([[2, 7, 9, 11, 3, 0]]), "padding_mask": np.array([[1, 1, 1, 1, 1, 0]])}
    expected = backbone(inputs, training=False)
    np.testing.assert_array_equal(np.asarray(classifier.backbone(inputs, training=False)), np.asarray(expected))
    fresh = classification.classifier_from_pretrained(pretrained, num_classes=3)
    np.testing.assert_array_equal(np.asarray(fresh.backbone(inputs)), np.asarray(expected))


def test_a_pretrained_encoder_is_loaded_once_until_its_files_change(tmp_path):
    _pretraining_run_dir(tmp_path / "run")
    first = pretraining.load_pretrained_encoder(str(tmp_path / "run"))
    assert pretraining.load_pretrained_encoder(str(tmp_path / "run") + "/") is first
    backbone, _ = _pretraining_run_dir(tmp_path / "run", norm_first=True)  # rewritten: loaded again
    second = pretraining.load_pretrained_encoder(str(tmp_path / "run"))
    assert second is not first and second.config.norm_first is True


def test_init_from_a_hugging_face_bert_folder(tmp_path):
    from llm_tf.interop import save_hf_bert

    backbone, tokenizer = _pretraining_run_dir(tmp_path / "run")
    save_hf_bert(backbone, str(tmp_path / "hf"), tokenizer=tokenizer)
    pretrained = pretraining.load_pretrained_encoder(str(tmp_path / "hf"))
    assert pretrained.kind == "Hugging Face BERT"
    inputs = {"token_ids": np.array([[2, 7, 9, 3]]), "padding_mask": np.array([[1, 1, 1, 1]])}
    classifier = classification.classifier_from_pretrained(pretrained, num_classes=2)
    np.testing.assert_allclose(np.asarray(classifier.backbone(inputs)), np.asarray(backbone(inputs)), atol=1e-6)


def test_init_from_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        pretraining.load_pretrained_encoder(str(tmp_path / "missing"))
    (tmp_path / "unfinished" / "tokenizer").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="has not finished"):
        pretraining.load_pretrained_encoder(str(tmp_path / "unfinished"))


def test_contradicting_flags_are_clear_errors_and_the_rest_comes_from_the_model(tmp_path):
    from experiments import sentiment

    _pretraining_run_dir(tmp_path / "run", max_sequence_length=16)
    parser = sentiment.build_parser()
    values = vars(parser.parse_args(["--preset", "smoke", "--init-from", str(tmp_path / "run")]))
    config = cli.classification_config(values, sentiment.PRESETS["smoke"], named_formats=("sst2",))
    assert (config.hidden_dim, config.num_layers, config.vocabulary_size) == (16, 2, 50)
    assert config.max_sequence_length == 16  # the preset's 32, capped at the pretrained position table
    for flags, message in ((["--max-sequence-length", "64"], "max_sequence_length=64 .*16 positions"),
                           (["--hidden-dim", "32"], "hidden_dim=32 .*has 16")):
        values = vars(parser.parse_args(["--preset", "smoke", "--init-from", str(tmp_path / "run"), *flags]))
        with pytest.raises(ValueError, match=message):
            cli.classification_config(values, sentiment.PRESETS["smoke"], named_formats=("sst2",))
    # Pre-norm comes from the model too; asking for it on a post-norm model is a contradiction.
    values = vars(parser.parse_args(["--preset", "smoke", "--init-from", str(tmp_path / "run"), "--norm-first"]))
    with pytest.raises(ValueError, match="norm_first=True .*has False"):
        cli.classification_config(values, sentiment.PRESETS["smoke"], named_formats=("sst2",))
    _pretraining_run_dir(tmp_path / "pre_norm", norm_first=True)
    values = vars(parser.parse_args(["--preset", "smoke", "--init-from", str(tmp_path / "pre_norm")]))
    assert cli.classification_config(values, sentiment.PRESETS["smoke"], named_formats=("sst2",)).norm_first is True


def test_sentiment_full_preset_is_the_measured_recipe_and_a_pretrained_model_decides_its_norm(tmp_path):
    from experiments import sentiment

    full = sentiment.PRESETS["full"]
    assert (full.num_layers, full.hidden_dim, full.norm_first, full.pooling, full.epochs) == (4, 256, True, "max", 2)
    assert (full.dropout, full.classifier_dropout, full.weight_decay, full.learning_rate) == (0.2, 0.5, 0.1, 2e-4)
    parser = sentiment.build_parser()
    # README's flags for the rows measured with the preset before session 33.
    before = cli.classification_config(vars(parser.parse_args(
        ["--post-norm", "--pooling", "mean", "--dropout", "0.1", "--classifier-dropout", "0.1", "--weight-decay",
         "0.01", "--epochs", "3"])), full, named_formats=("sst2",))
    assert (before.norm_first, before.pooling, before.dropout, before.classifier_dropout, before.weight_decay,
            before.epochs) == (False, "mean", 0.1, 0.1, 0.01, 3)
    # The preset's pre-norm is no flag: a post-norm pretrained model overrides it without an error.
    _pretraining_run_dir(tmp_path / "post_norm", max_sequence_length=16)
    values = vars(parser.parse_args(["--init-from", str(tmp_path / "post_norm")]))
    tuned = cli.classification_config(values, full, named_formats=("sst2",))
    assert (tuned.norm_first, tuned.pooling, tuned.hidden_dim) == (False, "max", 16)


def test_continued_pretraining_takes_the_model_and_vocabulary_from_the_run_it_continues(tmp_path):
    source = tmp_path / "source"
    saved = pretraining.PretrainConfig(hidden_dim=64, num_layers=1, num_heads=2, intermediate_dim=128,
                                       vocabulary_size=1000, sequence_length=64, norm_first=False).to_dict()
    (source / "tokenizer").mkdir(parents=True)
    (source / "config.json").write_text(json.dumps(saved), encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"not a finished masked-LM pretraining run: last.keras, "
                                                r"backbone.keras missing"):
        pretraining.continued_config(pretraining.PretrainConfig(continue_from=str(source)))
    for name in ("last.keras", "backbone.keras"):
        (source / name).write_bytes(b"")
    # Unset fields come from the run (the preset's 128-wide, 16k-vocabulary values would not fit its weights).
    config = pretraining.continued_config(pretraining.PretrainConfig(continue_from=str(source), learning_rate=5e-4),
                                          explicit=["learning_rate"])
    assert (config.hidden_dim, config.num_layers, config.vocabulary_size, config.sequence_length,
            config.norm_first, config.learning_rate) == (64, 1, 1000, 64, False, 5e-4)
    assert config.continue_from == str(source)
    # A flag that contradicts the run is an error naming it; one that agrees is fine.
    with pytest.raises(ValueError, match="hidden_dim=128 contradicts the run being continued"):
        pretraining.continued_config(pretraining.PretrainConfig(continue_from=str(source)), explicit=["hidden_dim"])
    assert pretraining.continued_config(pretraining.PretrainConfig(continue_from=str(source), hidden_dim=64),
                                        explicit=["hidden_dim"]).hidden_dim == 64
    # A longer sequence length lengthens the model (train_masked_lm tiles its positions); a shorter one cannot.
    longer = pretraining.PretrainConfig(continue_from=str(source), sequence_length=256, max_predictions=39)
    assert pretraining.continued_config(longer, explicit=["sequence_length"]).sequence_length == 256
    with pytest.raises(ValueError, match="sequence_length=32 contradicts the run being continued"):
        pretraining.continued_config(pretraining.PretrainConfig(continue_from=str(source), sequence_length=32),
                                     explicit=["sequence_length"])
    with pytest.raises(ValueError, match="--no-books.*--add-texts"):
        pretraining.PretrainConfig(books=False)
    with pytest.warns(UserWarning, match="max_predictions=20 caps the masking of 512-token rows.*raise "
                                         "--max-predictions to 77"):
        pretraining.PretrainConfig(sequence_length=512)


def test_sentiment_on_bad_user_data_fails_before_making_a_run_directory(tmp_path):
    from experiments import sentiment

    runs_root = tmp_path / "runs"
    common = ["--preset", "smoke", "--data-format", "csv", "--no-header", "--text-column", "1", "--label-column", "0",
              "--output-dir", str(runs_root)]
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        sentiment.main([*common, "--data-path", str(tmp_path / "absent.csv")])
    (tmp_path / "train.csv").write_text("1,a fine film\n2,a dull film\n" * 10, encoding="utf-8")
    (tmp_path / "test.csv").write_text("1,fine\n3,neither\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\['3'\] have no training example"):
        sentiment.main([*common, "--data-path", str(tmp_path / "train.csv"), "--test-path", str(tmp_path / "test.csv")])
    assert not runs_root.exists(), "a command that failed on its data must not leave a run directory behind"

@pytest.mark.slow
def test_layer_decay_scales_each_variables_first_adam_step(tmp_path):
    from llm_tf.training import build_optimizer

    _pretraining_run_dir(tmp_path / "run")
    model = classification.classifier_from_pretrained(pretraining.load_pretrained_encoder(str(tmp_path / "run")), 2)
    rates = classification.layerwise_learning_rates(model, 0.5)
    assert rates["backbone/block_1/feed_forward/output/kernel"] == 0.5
    assert rates["backbone/block_0/feed_forward/output/kernel"] == 0.25
    assert rates["backbone/embedding/token_embeddings"] == 0.125
    assert rates[model.classifier.kernel.path] == 1.0
    optimizer = build_optimizer(1e-2, weight_decay=0.0, global_clipnorm=None, epsilon=1e-12,
                                learning_rate_multipliers=rates)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    before = {v.path: np.array(v) for v in model.trainable_variables}
    inputs = {"token_ids": np.array([[2, 7, 9, 3]] * 4), "padding_mask": np.ones((4, 4), "int32")}
    model.train_on_batch(inputs, np.array([0, 1, 0, 1]))
    checked = 0
    for variable in model.trainable_variables:
        # Skipped: key biases (softmax is shift-invariant, so their gradient is ~0) and the token table (sparse rows).
        if "key/bias" in variable.path or "token_embeddings" in variable.path:
            continue
        step = np.abs(np.array(variable) - before[variable.path])
        # Adam's first step moves a weight by lr * factor * |g| / (|g| + eps): lr * factor wherever g is not tiny.
        np.testing.assert_allclose(np.median(step[step > 0]), 1e-2 * rates[variable.path], rtol=1e-3,
                                   err_msg=variable.path)
        checked += 1
    assert checked >= 30
    config = optimizer.get_config()
    assert config["learning_rate_multipliers"] == rates
    with pytest.raises(ValueError, match="layer_decay"):
        classification.layerwise_learning_rates(model, 1.5)


def test_length_bucketed_batches_cover_each_example_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 30, size=400)
    token_ids = np.zeros((400, 32), np.int32)
    for i, length in enumerate(lengths):
        token_ids[i, :length] = 5 + i % 7
    labels = np.arange(400) % 2
    batches = list(classification.length_bucketed_batches(token_ids, labels, 16, np.random.default_rng(1)))
    assert len(batches) == 25
    seen = sum(int(batch[0]["padding_mask"].numpy().sum()) for batch in batches)
    assert seen == int(lengths.sum())
    padded = sum(batch[0]["token_ids"].shape[0] * batch[0]["token_ids"].shape[1] for batch in batches)
    assert padded < 0.6 * 400 * 32
    again = list(classification.length_bucketed_batches(token_ids, labels, 16, np.random.default_rng(1)))
    assert all((a[0]["token_ids"].numpy() == b[0]["token_ids"].numpy()).all() for a, b in zip(batches, again))


@pytest.mark.slow
@pytest.mark.data
def test_pretrain_then_finetune_smokes_on_real_data(tmp_path, shared_data_dir):
    data_dir = str(shared_data_dir)
    from experiments import pretrain, sentiment

    result = pretrain.main(["--preset", "smoke", "--output-dir", str(tmp_path), "--data-dir", data_dir])
    run_dir = result["run_dir"]
    assert os.path.isfile(os.path.join(run_dir, "backbone.keras"))
    assert os.path.isfile(os.path.join(run_dir, "pretrain_eval.png"))
    progress = result["progress"]
    assert [row["step"] for row in progress] == [0, 6, 12]
    assert progress[-1]["val_loss"] < progress[0]["val_loss"], "pretraining must lower the held-out MLM loss"
    # A second phase on the BBC training articles alone (task-adaptive pretraining), continued from that run:
    # it starts from that model (its first held-out loss is the run's last) with that vocabulary, unchanged.
    continued = pretrain.main(["--preset", "smoke", "--output-dir", str(tmp_path), "--data-dir", data_dir,
                               "--continue-from", run_dir, "--no-books", "--add-texts", "bbc", "--max-steps", "6",
                               "--eval-every-n-steps", "6"])
    assert continued["data"]["sources"] == {"train": {"gutenberg": 0, "bbc": 1779}, "validation": {"gutenberg": 1}}
    assert continued["progress"][0]["val_loss"] == pytest.approx(progress[-1]["val_loss"], rel=1e-5)
    assert [row["step"] for row in continued["progress"]] == [0, 6]
    for name in ("vocab.txt",):
        assert (open(os.path.join(continued["run_dir"], "tokenizer", name), "rb").read()
                == open(os.path.join(run_dir, "tokenizer", name), "rb").read())
    # Continued on rows twice as long: the model is lengthened (positions tiled), and so is the saved backbone.
    longer = pretrain.main(["--preset", "smoke", "--output-dir", str(tmp_path), "--data-dir", data_dir,
                            "--continue-from", continued["run_dir"], "--no-books", "--add-texts", "bbc",
                            "--sequence-length", "256", "--max-predictions", "39", "--batch-size", "8",
                            "--max-steps", "2", "--eval-every-n-steps", "2", "--max-eval-sequences", "16"])
    assert longer["config"]["sequence_length"] == 256
    backbone = keras.saving.load_model(os.path.join(longer["run_dir"], "backbone.keras"))
    assert backbone.config.max_sequence_length == 256
    scratch = sentiment.main(["--preset", "smoke", "--output-dir", str(tmp_path), "--data-dir", data_dir])
    tuned = sentiment.main(["--preset", "smoke", "--output-dir", str(tmp_path), "--data-dir", data_dir,
                            "--init-from", continued["run_dir"], "--layer-decay", "0.8"])
    for outcome in (scratch, tuned):
        accuracy = outcome["metrics"]["test_accuracy_mean"]
        assert accuracy > 0.55, "the smoke model must beat chance (0.51) on SST-2 dev"
        seed = outcome["transformer"]["per_seed"][0]
        assert seed["misclassified"] and seed["misclassified"][0]["true"] != seed["misclassified"][0]["predicted"]
    with open(os.path.join(tuned["run_dir"], "config.json")) as file:
        saved = json.load(file)
    assert saved["init_from"] == continued["run_dir"] and saved["hidden_dim"] == 64 and saved["vocabulary_size"] == 1000
    assert tuned["tokenizer"]["learned_on"] == "pretrained model's"
