"""Sentence splitter, oracle labels, selection, baselines, ROUGE path and the sentence scorer."""

import numpy as np
import pytest

from llm_tf.tasks import summarization as S
from llm_tf.text.sentences import normalize_sentence, split_sentences


def _squash(text):
    return "".join(text.split())


# ---------------------------------------------------------------- splitter


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
        ("J. K. Rowling wrote it. It sold.", ["J. K. Rowling wrote it.", "It sold."]),
        ("The U.S. Army left. Then it rained.", ["The U.S. Army left.", "Then it rained."]),
        ("Profits rose 1.5% to $10.9bn. Sales fell.", ["Profits rose 1.5% to $10.9bn.", "Sales fell."]),
        ('He said: "We won." Then he left.', ['He said: "We won."', "Then he left."]),
        ('"Is it over?" she asked. "Yes!" 2005 was good.', ['"Is it over?" she asked.', '"Yes!"', "2005 was good."]),
        ("Visit Amazon.com today. Or not.", ["Visit Amazon.com today.", "Or not."]),
        ("Headline here\n\nFirst paragraph. Second one.\nNext line", ["Headline here", "First paragraph.",
                                                                   "Second one.", "Next line"]),
        ("It ended in Jan. The year after.", ["It ended in Jan. The year after."]),
        ("no capital. after this", ["no capital. after this"]),
    ],
)
def test_split_sentences_quirks(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_glued_bbc_summary():
    text = 'Profits rose to $10.9bn.For the full year, it grew."We are pleased."Sales in the US.Fell.'
    assert split_sentences(text) == [text]
    assert split_sentences(text, fix_glued=True) == [
        "Profits rose to $10.9bn.", "For the full year, it grew.", '"We are pleased."', "Sales in the US.", "Fell."
    ]


def test_split_sentences_lines_only_and_errors():
    assert split_sentences("Amy: Hi. How are you?\r\nBob: Fine.", lines_only=True) == [
        "Amy: Hi. How are you?", "Bob: Fine."
    ]
    assert split_sentences("  \n ") == []
    with pytest.raises(ValueError, match="text"):
        split_sentences(None)


def test_normalize_sentence():
    assert normalize_sentence('"It is GOOD,"  he said.') == normalize_sentence("it is good he said")
    assert normalize_sentence("A b.") != normalize_sentence("A c.")


@pytest.mark.slow
@pytest.mark.data
def test_splitter_round_trips_every_bbc_article(shared_data_dir):
    from llm_tf.datasets import load_bbc_news_summary

    data = load_bbc_news_summary(shared_data_dir)
    count = 0
    for split in (data.train, data.validation, data.test):
        for article, summary in zip(split.sources, split.targets):
            sentences = split_sentences(article)
            assert _squash(" ".join(sentences)) == _squash(article)
            assert len(sentences) >= 2
            assert _squash(" ".join(split_sentences(summary, fix_glued=True))) == _squash(summary)
            count += 1
    assert count == 2225


# ---------------------------------------------------------------- oracle, selection, ROUGE


ARTICLE = (
    "Firm posts record profit\n\nThe company made $10.9bn in 2004, up 12%. Mr. Lee, the boss, was pleased. "
    "Analysts had expected less. \"We had a great year,\" Mr. Lee said. Shares rose 3% in early trading."
)


def test_oracle_labels_reproduce_a_verbatim_extracted_reference():
    sentences = split_sentences(ARTICLE)
    picked = [1, 4, 5]
    # The summary file glues the sentences and (as BBC summaries do) changes the quoting.
    reference = "".join(sentences[i] for i in picked).replace('"', "")
    document = S.prepare_documents([ARTICLE], [reference])[0]
    assert list(np.flatnonzero(document.labels)) == picked
    assert S.summary_texts([document], [picked])[0] == "\n".join(sentences[i] for i in picked)
    scores = S.rouge_report(S.summary_texts([document], [list(np.flatnonzero(document.labels))]),
                            [document.reference], bootstrap=False)
    assert scores["rouge2"]["fmeasure"] == pytest.approx(1.0)


def test_oracle_labels_fall_back_to_greedy_rouge():
    sentences = ["The cat sat on the mat.", "Rain fell all day in town.", "A dog ran across the park."]
    labels = S.oracle_labels(sentences, ["The cat sat on a mat.", "A dog ran across the park."])
    assert labels.tolist() == [1, 0, 1]
    assert S.greedy_oracle(sentences, "rain fell all day", max_sentences=1) == [1]


def test_reference_against_itself_is_one_through_the_same_path():
    documents = S.prepare_documents([ARTICLE, ARTICLE], ["Analysts had expected less.Shares rose 3%.", "x y z."])
    report = S.rouge_report([d.reference for d in documents], [d.reference for d in documents])
    for rouge_type in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert report[rouge_type]["fmeasure"] == pytest.approx(1.0)
        assert report[rouge_type]["ci"] == pytest.approx((1.0, 1.0))


def test_select_sentences_keeps_article_order_and_budget():
    scores = np.array([0.1, 0.9, 0.5, 0.8, 0.7])
    lengths = np.array([5, 10, 4, 8, 30])
    chosen = S.select_sentences(scores, lengths, budget=22)
    assert chosen == [1, 3]  # 4 (30 words) would overflow: selection stops there
    assert lengths[chosen].sum() <= 22
    assert S.select_sentences(scores, lengths, budget=3) == [1]  # the best sentence is always kept
    assert S.select_sentences(scores, lengths, k=3) == [1, 3, 4]
    assert S.select_sentences(scores, lengths, k=2) == [1, 3]
    assert S.select_sentences([0.2, -np.inf, 0.1], [1, 1, 1], k=3) == [0, 2]
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores, lengths = rng.normal(size=12), rng.integers(1, 30, size=12)
        budget = float(rng.integers(30, 120))
        chosen = S.select_sentences(scores, lengths, budget=budget)
        assert chosen == sorted(chosen) and len(set(chosen)) == len(chosen)
        assert lengths[chosen].sum() <= budget or len(chosen) == 1
    with pytest.raises(ValueError, match="exactly one"):
        S.select_sentences([1.0], [1], budget=2, k=1)


def test_baseline_scorers():
    sentences = ["short one.", "a much longer sentence here.", "mid size one."]
    assert S.summarize([S.Document(sentences, [])], [S.lead_scores(sentences)], k=2) == [[0, 1]]
    assert S.select_sentences(S.longest_scores(sentences), S.sentence_lengths(sentences), k=1) == [1]
    docs = S.prepare_documents(
        ["Cats eat fish. Cats like fish a lot. Dogs bark. Fish swim and cats watch fish."], ["Cats eat fish."]
    )
    ranks = S.textrank_scores(docs[0].sentences, S.fit_idf(docs))
    assert int(np.argmin(ranks)) == 2  # the sentence sharing no word with the others ranks last
    features = S.sentence_features(docs[0].sentences)
    assert features.shape == (4, S.NUM_FEATURES) and features[0, 2] == 1.0 and features[1, 2] == 0.0


def test_learned_ratio_and_lead_k_tuning():
    article = "\n".join(f"Sentence number {i} is here." for i in range(10))
    reference = " ".join(f"Sentence number {i} is here." for i in range(4))
    documents = S.prepare_documents([article] * 3, [reference] * 3)
    assert S.learn_length_ratio(documents) == pytest.approx(0.4)
    best_k, table = S.tune_lead_k(documents, candidates=[2, 4, 6])
    assert best_k == 4 and table[4] == pytest.approx(1.0)


# ---------------------------------------------------------------- scorer


@pytest.mark.slow
def test_scorer_trains_and_ranks_labelled_sentences(tmp_path):
    from llm_tf.training import create_run_dir

    rng = np.random.default_rng(0)
    documents = []
    for _ in range(32):
        sentences = [f"{'gold' if i % 3 == 0 else 'tin'} item {rng.integers(100)} sits here." for i in range(7)]
        document = S.Document(sentences, [s for i, s in enumerate(sentences) if i % 3 == 0])
        document.labels = np.array([int(i % 3 == 0) for i in range(7)], np.int32)
        documents.append(document)
    vocabulary = S.build_vocabulary(documents, max_size=50)
    config = S.ScorerConfig(vocabulary_size=len(vocabulary), max_sentences=8, max_sentence_tokens=8, hidden_dim=16,
                            num_heads=2, intermediate_dim=32, document_layers=1)
    arrays = S.encode_documents(documents, vocabulary, 8, 8)
    assert arrays["token_ids"].shape == (32, 8, 8) and arrays["sentence_mask"].sum() == 32 * 7
    run = create_run_dir("scorer", root=str(tmp_path))
    model, _ = S.train_scorer(arrays, arrays, config, epochs=6, batch_size=8, learning_rate=3e-3, run_dir=run,
                              verbose=0)
    scores = S.predict_scores(model, documents, arrays)
    assert np.isneginf(scores[0][7:]).all() and len(scores[0]) == 7
    chosen = S.summarize(documents, scores, k=3)
    assert sum(chosen == [0, 3, 6] for chosen in chosen) >= 28
    reloaded = S.load_scorer(run.last_model)
    np.testing.assert_allclose(S.predict_scores(reloaded, documents, arrays)[0], scores[0], rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- budget choice and examples.md


def test_choose_budget_picks_the_candidate_with_the_best_validation_rouge2():
    documents = [S.Document([f"Alpha{i} beta{i} gamma{i}." for i in range(6)],
                            ["Alpha0 beta0 gamma0.", "Alpha1 beta1 gamma1."], "a")]
    scores = [np.arange(6, 0, -1, dtype=float)]  # the lead sentences first
    name, budget, table = S.choose_budget(documents, scores, ratio=0.9, fixed_k=(1, 2, 4))
    assert set(table) == {"ratio", "k=1", "k=2", "k=4"}
    assert (name, budget) == ("k=2", {"k": 2})  # exactly the two reference sentences
    assert table["k=2"] == pytest.approx(1.0)
    assert table["k=2"] > max(table["k=1"], table["k=4"], table["ratio"])


def test_write_examples_puts_each_summary_beside_its_reference(tmp_path):
    documents = [S.Document(["First one.", "Second | piped.", "Third."], ["Ref one.", "Ref two."], "doc-7"),
                 S.Document(["Other."], ["Other ref."], "doc-8")]
    path = S.write_examples(str(tmp_path / "examples.md"), documents, [[0, 1], [0]],
                            abstractive=["Made up\nline.", "x"], count=1)
    lines = open(path, encoding="utf-8").read().splitlines()
    assert lines[:4] == ["## doc-7", "", "| model summary | abstractive (beam) | reference |", "|---|---|---|"]
    assert lines[4] == "| First one.<br>Second / piped. | Made up<br>line. | Ref one.<br>Ref two. |"
    assert "doc-8" not in "\n".join(lines)  # count=1
