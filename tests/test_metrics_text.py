"""BLEU/chrF and ROUGE: equal to sacreBLEU's and rouge-score's own numbers; edge cases and bad input."""

import math
import re

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer, scoring
from sacrebleu.metrics import BLEU

from llm_tf.metrics import (
    DEFAULT_ROUGE_TYPES,
    bootstrap_mean_interval,
    corpus_bleu,
    corpus_chrf,
    corpus_rouge,
)

HYPOTHESES = [
    "The cat sat on the mat.",
    "There is a dog in the garden, and it is barking loudly.",
    "He read the book yesterday evening.",
    "A completely unrelated sentence about trains.",
]
REFERENCES = [
    "The cat was sitting on the mat.",
    "A dog is barking loudly in the garden.",
    "Yesterday evening he read the book.",
    "Trains run late on Sundays.",
]


# ---------------------------------------------------------------- BLEU / chrF


def test_corpus_bleu_equals_sacrebleu_with_its_signature():
    result = corpus_bleu(HYPOTHESES, REFERENCES)
    expected = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES])
    assert result["score"] == pytest.approx(expected.score, abs=1e-9)
    assert result["precisions"] == pytest.approx(expected.precisions)
    assert result["brevity_penalty"] == pytest.approx(expected.bp)
    assert (result["hypothesis_length"], result["reference_length"]) == (expected.sys_len, expected.ref_len)
    reference_metric = BLEU()
    reference_metric.corpus_score(HYPOTHESES, [REFERENCES])
    assert result["signature"] == str(reference_metric.get_signature())
    assert f"version:{sacrebleu.__version__}" in result["signature"]
    assert result["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")


def test_corpus_bleu_includes_chrf_equal_to_sacrebleu():
    result = corpus_bleu(HYPOTHESES, REFERENCES)
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score, abs=1e-9)
    assert result["chrf_signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0")
    assert "chrf" not in corpus_bleu(HYPOTHESES, REFERENCES, include_chrf=False)


def test_corpus_chrf_and_chrf_plus_plus_equal_sacrebleu():
    assert corpus_chrf(HYPOTHESES, REFERENCES)["score"] == pytest.approx(
        sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score, abs=1e-9
    )
    chrf_plus_plus = corpus_chrf(HYPOTHESES, REFERENCES, word_order=2)
    assert chrf_plus_plus["score"] == pytest.approx(
        sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES], word_order=2).score, abs=1e-9
    )
    assert "nw:2" in chrf_plus_plus["signature"]


def test_corpus_bleu_options_reach_sacrebleu():
    lowered = [h.upper() for h in HYPOTHESES]
    result = corpus_bleu(lowered, REFERENCES, tokenize="char", lowercase=True, smooth_method="floor")
    expected = sacrebleu.corpus_bleu(lowered, [REFERENCES], tokenize="char", lowercase=True, smooth_method="floor")
    assert result["score"] == pytest.approx(expected.score, abs=1e-9)
    assert "case:lc" in result["signature"] and "tok:char" in result["signature"]
    assert result["score"] > corpus_bleu(lowered, REFERENCES, tokenize="char")["score"]


def test_identical_text_scores_100_and_unrelated_text_scores_low():
    assert corpus_bleu(REFERENCES, REFERENCES)["score"] == pytest.approx(100.0)
    assert corpus_chrf(REFERENCES, REFERENCES)["score"] == pytest.approx(100.0)
    assert corpus_bleu(["zebra quantum violin"], ["the cat sat on the mat"])["score"] < 1.0


def test_multiple_and_variable_numbers_of_references_equal_sacrebleu():
    references = [[REFERENCES[0], "A cat sat on the mat."], [REFERENCES[1]], [REFERENCES[2], "He read it."], REFERENCES[3]]
    streams = [
        [REFERENCES[0], REFERENCES[1], REFERENCES[2], REFERENCES[3]],
        ["A cat sat on the mat.", None, "He read it.", None],
    ]
    result = corpus_bleu(HYPOTHESES, references)
    assert result["score"] == pytest.approx(sacrebleu.corpus_bleu(HYPOTHESES, streams).score, abs=1e-9)
    assert result["signature"].startswith("nrefs:var")
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(HYPOTHESES, streams).score, abs=1e-9)
    # A second reference that matches better can only raise BLEU.
    assert result["score"] >= corpus_bleu(HYPOTHESES, REFERENCES)["score"]


def test_empty_hypothesis_strings_are_valid():
    only_empty = corpus_bleu(["", ""], ["a reference sentence here", "another one"])
    assert only_empty["score"] == 0.0 and only_empty["hypothesis_length"] == 0
    assert corpus_chrf([""], ["a reference"])["score"] == 0.0
    mixed = ["", HYPOTHESES[1], HYPOTHESES[2], ""]
    assert corpus_bleu(mixed, REFERENCES)["score"] == pytest.approx(
        sacrebleu.corpus_bleu(mixed, [REFERENCES]).score, abs=1e-9
    )
    assert corpus_bleu(mixed, REFERENCES)["score"] < corpus_bleu(HYPOTHESES, REFERENCES)["score"]


def test_single_sentence_corpus_and_bytes_input():
    result = corpus_bleu([HYPOTHESES[0].encode()], [REFERENCES[0].encode()])
    assert result["score"] == pytest.approx(sacrebleu.corpus_bleu([HYPOTHESES[0]], [[REFERENCES[0]]]).score)
    assert corpus_bleu(np.array(HYPOTHESES[:1]), np.array(REFERENCES[:1]))["score"] == pytest.approx(result["score"])


@pytest.mark.parametrize(
    ("hypotheses", "references", "message"),
    [
        ([], [], "`hypotheses` is empty"),
        (["a b"], ["a b", "c d"], "len(hypotheses)=1 but len(references)=2"),
        ("just one string", ["just one string"], "not a single string"),
        (["a", None], ["a", "b"], r"`hypotheses[1]` must be a string"),
        (["a"], [[]], r"`references[0]` is an empty list"),
        (["a"], [3], "`references[0]` must be a reference string or a list of reference strings"),
    ],
)
def test_bleu_bad_input_raises_value_error_naming_the_argument(hypotheses, references, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        corpus_bleu(hypotheses, references)


def test_bleu_unknown_options_raise_value_error():
    with pytest.raises(ValueError, match="tokenize="):
        corpus_bleu(["a"], ["a"], tokenize="no-such-tokenizer")
    with pytest.raises(ValueError, match="smooth_method="):
        corpus_bleu(["a"], ["a"], smooth_method="magic")
    with pytest.raises(ValueError, match="word_order="):
        corpus_chrf(["a"], ["a"], word_order=-1)


# ---------------------------------------------------------------- ROUGE


def _rouge_score_means(predictions, references, rouge_types, use_stemmer):
    scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)
    per_example = [scorer.score(ref, pred) for pred, ref in zip(predictions, references)]
    return {
        rouge_type: {
            measure: float(np.mean([getattr(s[rouge_type], measure) for s in per_example]))
            for measure in ("precision", "recall", "fmeasure")
        }
        for rouge_type in rouge_types
    }


@pytest.mark.parametrize("use_stemmer", [True, False])
def test_corpus_rouge_means_equal_rouge_score(use_stemmer):
    result = corpus_rouge(HYPOTHESES, REFERENCES, bootstrap=False, use_stemmer=use_stemmer)
    expected = _rouge_score_means(HYPOTHESES, REFERENCES, DEFAULT_ROUGE_TYPES, use_stemmer)
    for rouge_type in DEFAULT_ROUGE_TYPES:
        for measure in ("precision", "recall", "fmeasure"):
            assert result[rouge_type][measure] == pytest.approx(expected[rouge_type][measure], abs=1e-12)
        assert result[rouge_type]["ci"] is None
    assert result["num_examples"] == len(HYPOTHESES)
    assert 0.0 < result["rouge1"]["fmeasure"] < 1.0


def test_rouge_tokens_are_cached_per_text_and_the_cache_stays_bounded():
    from llm_tf.metrics.rouge import _CachedTokenizer

    tokenizer = _CachedTokenizer(use_stemmer=True, max_entries=2)
    reference = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)._tokenizer
    for text in ["The cats were running.", "Dogs barked loudly", "The cats were running.", "Birds sang"]:
        tokens = tokenizer.tokenize(text)
        assert tokens == reference.tokenize(text)
        tokens.append("mutated")  # a caller's change to the list it got must not reach the cache
    assert list(tokenizer._cache) == ["The cats were running.", "Birds sang"]
    assert tokenizer.tokenize("The cats were running.") == ["the", "cat", "were", "run"]
    # Scoring twice (second time from the cache) gives the same report.
    first = corpus_rouge(HYPOTHESES, REFERENCES, bootstrap=False)
    assert corpus_rouge(HYPOTHESES, REFERENCES, bootstrap=False) == first


def test_bootstrap_interval_equals_rouge_score_bootstrap_aggregator():
    seed, num_samples = 7, 300
    result = corpus_rouge(HYPOTHESES, REFERENCES, num_samples=num_samples, seed=seed)
    scorer = rouge_scorer.RougeScorer(list(DEFAULT_ROUGE_TYPES), use_stemmer=True)
    aggregator = scoring.BootstrapAggregator(confidence_interval=0.95, n_samples=num_samples)
    for prediction, reference in zip(HYPOTHESES, REFERENCES):
        aggregator.add_scores(scorer.score(reference, prediction))
    np.random.seed(seed)
    expected = aggregator.aggregate()
    for rouge_type in DEFAULT_ROUGE_TYPES:
        low, high = result[rouge_type]["ci"]
        assert low == pytest.approx(expected[rouge_type].low.fmeasure, abs=1e-12)
        assert high == pytest.approx(expected[rouge_type].high.fmeasure, abs=1e-12)
        assert low < high


def test_bootstrap_is_reproducible_and_wider_at_higher_confidence():
    first = corpus_rouge(HYPOTHESES, REFERENCES, rouge_types=["rouge1"], num_samples=200, seed=3)
    again = corpus_rouge(HYPOTHESES, REFERENCES, rouge_types=["rouge1"], num_samples=200, seed=3)
    assert first["rouge1"]["ci"] == again["rouge1"]["ci"]
    narrow = corpus_rouge(HYPOTHESES, REFERENCES, rouge_types=["rouge1"], confidence=0.5, num_samples=200, seed=3)
    (narrow_low, narrow_high), (low, high) = narrow["rouge1"]["ci"], first["rouge1"]["ci"]
    assert low <= narrow_low and narrow_high <= high and (high - low) > (narrow_high - narrow_low)


def test_single_sentence_gives_a_degenerate_interval_at_the_score():
    result = corpus_rouge(["the cat sat"], ["the cat sat down"], rouge_types=["rouge1", "rougeL"], num_samples=50)
    expected = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True).score("the cat sat down", "the cat sat")
    assert result["rouge1"]["fmeasure"] == pytest.approx(expected["rouge1"].fmeasure)
    assert result["rouge1"]["ci"] == pytest.approx((expected["rouge1"].fmeasure,) * 2)


def test_empty_prediction_scores_zero_and_multi_reference_uses_best_match():
    result = corpus_rouge(["", "the cat sat"], ["a reference", ["a dog ran", "the cat sat"]], bootstrap=False)
    scorer = rouge_scorer.RougeScorer(list(DEFAULT_ROUGE_TYPES), use_stemmer=True)
    best = scorer.score_multi(["a dog ran", "the cat sat"], "the cat sat")
    for rouge_type in DEFAULT_ROUGE_TYPES:
        assert best[rouge_type].fmeasure == pytest.approx(1.0)
        assert result[rouge_type]["fmeasure"] == pytest.approx((0.0 + best[rouge_type].fmeasure) / 2)


def test_rouge_lsum_uses_one_sentence_per_line():
    prediction = "the cat sat on the mat\nit was happy"
    reference = "it was very happy\nthe cat sat on a mat"
    result = corpus_rouge([prediction], [reference], rouge_types=["rougeL", "rougeLsum"], bootstrap=False)
    expected = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=True).score(reference, prediction)
    assert result["rougeLsum"]["fmeasure"] == pytest.approx(expected["rougeLsum"].fmeasure)
    assert result["rougeL"]["fmeasure"] == pytest.approx(expected["rougeL"].fmeasure)
    # Summary-level LCS matches across the reordered sentences; plain LCS cannot.
    assert result["rougeLsum"]["fmeasure"] > result["rougeL"]["fmeasure"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predictions": [], "references": []}, "`predictions` is empty"),
        ({"predictions": ["a"], "references": ["a", "b"]}, "len(predictions)=1 but len(references)=2"),
        ({"rouge_types": ["rouge0"]}, "rouge0"),
        ({"rouge_types": ["bleu"]}, "bleu"),
        ({"rouge_types": []}, "`rouge_types` is empty"),
        ({"confidence": 1.5}, "confidence=1.5"),
        ({"num_samples": 0}, "num_samples=0"),
    ],
)
def test_rouge_bad_input_raises_value_error(kwargs, message):
    arguments = {"predictions": ["a b"], "references": ["a b"], **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        corpus_rouge(**arguments)


def test_bootstrap_mean_interval_on_columns_and_errors():
    values = np.array([[0.0, 1.0], [1.0, 1.0], [0.5, 1.0], [0.25, 1.0]])
    low, high = bootstrap_mean_interval(values, num_samples=400, seed=1)
    assert low[0] < values[:, 0].mean() < high[0]
    assert low[1] == high[1] == 1.0
    single_low, single_high = bootstrap_mean_interval(values[:, 0], num_samples=400, seed=1)
    assert (single_low, single_high) == (low[0], high[0])
    assert not math.isnan(single_low)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mean_interval([])
