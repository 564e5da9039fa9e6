"""News writing and causal pretraining pieces: the prompt format through the tokenizer, strided body scoring, bits
per byte against a hand computation, diversity measures, topic agreement and generation limits."""

import math

import keras
import numpy as np
import pytest

from llm_tf.models import GPT, GPTConfig
from llm_tf.tasks import causal_pretraining, news_writing
from llm_tf.tasks.language_modeling import LMWindowSampler
from llm_tf.text import BPETokenizer

ARTICLES = [
    ("sport", "Claxton hunting first major medal",
     "British hurdler Sarah Claxton is confident she can win her first major medal.\n\nThe 25-year-old has "
     "already smashed the British record over 60m hurdles twice this season."),
    ("tech", "Gadgets galore at the show", "New phones, cameras and music players filled the halls.\n\n\"It is "
     "the biggest show yet,\" said one visitor, who had queued for an hour."),
    ("business", "Ad sales boost Time Warner profit", "Quarterly profits at US media giant TimeWarner jumped 76% "
     "to $1.13bn (£600m) for the three months to December, from $639m year-earlier."),
]


@pytest.fixture(scope="module")
def tokenizer():
    texts = [news_writing.format_article(*article) for article in ARTICLES] * 3
    return BPETokenizer.train(texts, vocabulary_size=400)


def _zero_gpt(vocabulary_size, length=32):
    """A GPT whose every weight is zero: uniform next-token probabilities, loss ln(V) per token exactly."""
    model = GPT(GPTConfig(vocabulary_size=vocabulary_size, max_sequence_length=length, hidden_dim=16, num_layers=1,
                          num_heads=2, intermediate_dim=32, tie_embeddings=True))
    model.set_weights([np.zeros_like(weight) for weight in model.get_weights()])
    return model


def test_prompt_format_round_trips_through_the_tokenizer(tokenizer):
    for topic, title, body in ARTICLES:
        article = news_writing.format_article(topic, title, body)
        prompt = news_writing.format_prompt(topic, title)
        assert article.startswith(prompt) and prompt.endswith("\n\n")
        assert tokenizer.decode(tokenizer.encode(article)) == article
        assert news_writing.parse_prompt(tokenizer.decode(tokenizer.encode(prompt))) == (topic, title)
        # The prompt's tokens are a prefix of the article's: scoring prompt + body separately encoded is exact.
        assert tokenizer.encode(article) == tokenizer.encode(prompt) + tokenizer.encode(body)
    assert news_writing.split_headline("Claxton hunting\n\nBritish hurdler ...\n") == ("Claxton hunting",
                                                                                     "British hurdler ...")
    with pytest.raises(ValueError, match="headline"):
        news_writing.split_headline("only a headline\n")
    with pytest.raises(ValueError, match="topic"):
        news_writing.parse_prompt("title: x\ntopic: y")
    with pytest.raises(ValueError, match="one-line topic"):
        news_writing.format_prompt("sport\nx", "A title")


@pytest.mark.parametrize("length,first,window,stride", [(10, 3, 16, 8), (40, 5, 16, 8), (41, 20, 16, 5),
                                                        (30, 25, 8, 7), (9, 1, 4, 1)])
def test_strided_windows_score_every_body_token_once_with_context(length, first, window, stride):
    ids = list(range(100, 100 + length))
    windows = news_writing.strided_windows(ids, first, window, stride)
    scored = []
    for begin, tokens, weights in windows:
        assert tokens == ids[begin:begin + len(tokens)] and len(tokens) <= window
        for offset in np.flatnonzero(weights):
            assert offset >= 1, "the first token of a window has no context"
            position = begin + offset
            scored.append(position)
            assert offset >= min(position, window - stride), "too little context"
    assert sorted(scored) == list(range(first, length)), "every body token scored exactly once, no prompt token"
    with pytest.raises(ValueError, match="stride"):
        news_writing.strided_windows(ids, first, 8, 8)
    with pytest.raises(ValueError, match="first_scored"):
        news_writing.strided_windows(ids, 0, window, stride)


def test_bits_per_byte_equals_perplexity_converted_with_bytes_per_token(tokenizer):
    """A zero-weight GPT predicts uniformly: perplexity = V and bits/byte = log2(V) * tokens / bytes, by hand."""
    model = _zero_gpt(tokenizer.vocabulary_size)
    scores = news_writing.conditional_scores(model, tokenizer, ARTICLES, stride=12, batch_size=4)
    body_tokens = sum(len(tokenizer.encode(body)) for _, _, body in ARTICLES)
    body_bytes = sum(len(body.encode("utf-8")) for _, _, body in ARTICLES)
    assert (scores["tokens"], scores["bytes"]) == (body_tokens, body_bytes)
    assert scores["windows"] > len(ARTICLES), "the bodies are longer than the 32-token context: strided"
    vocabulary = tokenizer.vocabulary_size
    assert scores["perplexity"] == pytest.approx(vocabulary, rel=1e-5)
    expected = math.log2(vocabulary) / (body_bytes / body_tokens)
    assert scores["bits_per_byte"] == pytest.approx(expected, rel=1e-5)
    assert causal_pretraining.bits_per_byte(math.log(vocabulary), body_tokens, body_bytes) == pytest.approx(expected)
    assert causal_pretraining.bits_per_byte(2.0, 100, 400) == pytest.approx(200 / (400 * math.log(2)))
    rows = causal_pretraining.progress_rows([{"iteration": 0, "val_loss": 2.0, "elapsed_s": 0.0},
                                             {"iteration": 10, "val_loss": 1.0, "elapsed_s": 5.0}],
                                            tokens_per_step=64, bytes_per_token=4.0)
    assert rows[1]["val_bits_per_byte"] == pytest.approx(1.0 / math.log(2) / 4.0)
    assert rows[1]["val_perplexity"] == pytest.approx(math.e) and rows[1]["tokens_per_s"] == pytest.approx(128.0)
    with pytest.raises(ValueError, match="num_bytes"):
        causal_pretraining.bits_per_byte(1.0, 10, 0)


class _TopicAwareModel:
    """A stand-in for a GPT: every scored token costs 0.5 nats when the window's prompt names the article's own
    topic, 1 nat otherwise (it reads the prompt back from the token ids)."""

    def __init__(self, tokenizer, length=256):
        self.config = GPTConfig(vocabulary_size=tokenizer.vocabulary_size, max_sequence_length=length, hidden_dim=8,
                                num_layers=1, num_heads=1, intermediate_dim=8)
        self.tokenizer = tokenizer
        self.topic_of_title = {title: topic for topic, title, _ in ARTICLES}

    def score(self, token_ids, padding_mask):
        log_probabilities = np.full((len(token_ids), token_ids.shape[1] - 1), -1.0)
        for row, (ids, mask) in enumerate(zip(token_ids, padding_mask)):
            try:
                topic, title = news_writing.parse_prompt(self.tokenizer.decode([int(t) for t in ids[mask]]))
            except ValueError:  # a padding row
                continue
            if self.topic_of_title[title] == topic:
                log_probabilities[row] = -0.5
        return {"log_probabilities": log_probabilities}


def test_topic_sensitivity_scores_every_body_under_every_topic(tokenizer):
    bodies_bytes = sum(len(body.encode("utf-8")) for _, _, body in ARTICLES)
    body_tokens = sum(len(tokenizer.encode(body)) for _, _, body in ARTICLES)
    result = news_writing.topic_sensitivity(_TopicAwareModel(tokenizer), tokenizer, ARTICLES, max_body_chars=10_000)
    assert result["topics"] == ["business", "sport", "tech"] and result["articles"] == 3
    assert result["topic_by_likelihood_accuracy"] == 1.0
    assert result["bits_per_byte_true_topic"] == pytest.approx(0.5 * body_tokens / (math.log(2) * bodies_bytes))
    assert result["bits_per_byte_other_topics"] == pytest.approx(1.0 * body_tokens / (math.log(2) * bodies_bytes))
    # A model that ignores the prompt (uniform predictions): no topic is likelier; ties count as misses.
    flat = news_writing.topic_sensitivity(_zero_gpt(tokenizer.vocabulary_size, length=64), tokenizer, ARTICLES,
                                          max_body_chars=60)
    assert flat["topic_by_likelihood_accuracy"] == 0.0
    assert flat["bits_per_byte_true_topic"] == pytest.approx(flat["bits_per_byte_other_topics"], rel=1e-6)
    with pytest.raises(ValueError, match="at least two topics"):
        news_writing.topic_sensitivity(_TopicAwareModel(tokenizer), tokenizer, ARTICLES[:1])


def test_strided_scoring_matches_scoring_the_whole_article_in_one_window(tokenizer):
    keras.utils.set_random_seed(3)
    model = GPT(GPTConfig(vocabulary_size=tokenizer.vocabulary_size, max_sequence_length=128, hidden_dim=16,
                          num_layers=1, num_heads=2, intermediate_dim=32))
    topic, title, body = ARTICLES[0]
    prompt_ids, body_ids = tokenizer.encode(news_writing.format_prompt(topic, title)), tokenizer.encode(body)
    assert len(prompt_ids) + len(body_ids) <= 128
    log_probabilities = model.score(np.array([prompt_ids + body_ids]))["log_probabilities"][0]
    expected = -log_probabilities[len(prompt_ids) - 1:].sum() / len(body_ids)
    scores = news_writing.conditional_scores(model, tokenizer, [ARTICLES[0]], batch_size=2)
    assert scores["windows"] == 1 and scores["loss"] == pytest.approx(expected, rel=1e-5)


def test_diversity_measures_by_hand():
    assert news_writing.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert news_writing.distinct_n(["a b", "a b"], 2) == pytest.approx(1 / 2)  # pooled over texts
    assert news_writing.repeated_ngram_rate(["a b c d a b c d"], 4) == pytest.approx(1 / 5)
    assert news_writing.repeated_ngram_rate(["a b c d", "a b c d"], 4) == 0.0  # only within one text
    assert news_writing.distinct_n([""], 2) == 0.0 and news_writing.repeated_ngram_rate(["a b"], 4) == 0.0


def test_topic_agreement_counts_the_requested_topics():
    train = [("sport", "t", "goal match team win cup"), ("sport", "t", "team coach match league"),
             ("tech", "t", "phone software chip computer"), ("tech", "t", "computer internet phone users")] * 3
    classifier = news_writing.topic_classifier(train)
    result = news_writing.topic_agreement(classifier, ["the team won the match", "a new phone chip", "match team"],
                                          ["sport", "tech", "tech"])
    assert result["agreement"] == pytest.approx(2 / 3)
    assert result["per_topic"] == {"sport": 1.0, "tech": 0.5}
    with pytest.raises(ValueError, match="one length"):
        news_writing.topic_agreement(classifier, ["x"], ["sport", "tech"])


def test_generation_stops_at_end_of_text_and_refuses_prompts_that_leave_no_room(tokenizer):
    keras.utils.set_random_seed(0)
    model = GPT(GPTConfig(vocabulary_size=tokenizer.vocabulary_size, max_sequence_length=32, hidden_dim=16,
                          num_layers=1, num_heads=2, intermediate_dim=32))
    prompts = [news_writing.format_prompt("sport", "Win"), news_writing.format_prompt("tech", "New phone")]
    bodies, speed = news_writing.generate_articles(model, tokenizer, prompts, 6, {"sampler": "top_p", "top_p": 0.9},
                                                   batch_size=4, seed=1)
    assert len(bodies) == 2 and speed["new_tokens"] <= 12
    again, _ = news_writing.generate_articles(model, tokenizer, prompts, 6, {"sampler": "top_p", "top_p": 0.9},
                                              batch_size=4, seed=1)
    assert again == bodies, "a fixed seed reproduces the articles"
    with pytest.raises(ValueError, match="prompt too long"):
        news_writing.generate_articles(model, tokenizer, prompts, 31, {"sampler": "greedy"})


def test_topic_guided_articles_match_plain_decoding_at_scale_1_and_change_above(tokenizer):
    assert news_writing.format_negative_prompt("  Win \n big ") == "title: Win big\n\n"
    assert news_writing.format_negative_prompt("Win big", "blank") == "\n\n"
    assert news_writing.format_prompt("sport", "Win big").endswith(news_writing.format_negative_prompt("Win big")), (
        "the title negative is the prompt without its topic line")
    with pytest.raises(ValueError, match="title"):
        news_writing.format_negative_prompt(" ")
    with pytest.raises(ValueError, match="negative must be one of"):
        news_writing.format_negative_prompt("Win big", "topic")
    with pytest.raises(ValueError, match="guidance_negative"):
        news_writing.NewsWritingConfig(guidance_negative="none").validate()
    keras.utils.set_random_seed(0)
    model = GPT(GPTConfig(vocabulary_size=tokenizer.vocabulary_size, max_sequence_length=40, hidden_dim=16,
                          num_layers=1, num_heads=2, intermediate_dim=32, initializer_range=0.3))
    articles = [(topic, title, "") for topic, title, _ in ARTICLES]
    prompts = [news_writing.format_prompt(topic, title) for topic, title, _ in articles]
    negatives = [news_writing.format_negative_prompt(title) for _, title, _ in articles]
    plain, _ = news_writing.generate_articles(model, tokenizer, prompts, 6, {"sampler": "greedy"}, batch_size=2)
    same, _ = news_writing.generate_articles(model, tokenizer, prompts, 6, {"sampler": "greedy"}, batch_size=2,
                                             negative_prompts=negatives, guidance_scale=1.0)
    assert same == plain
    with pytest.raises(ValueError, match="one negative prompt per prompt"):
        news_writing.generate_articles(model, tokenizer, prompts, 6, {"sampler": "greedy"},
                                       negative_prompts=negatives[:1])

    class Constant:  # a "classifier" that always says sport
        def predict(self, bodies):
            return np.array(["sport"] * len(bodies))

    guided = news_writing.guided_topic_agreement(model, tokenizer, articles, Constant(), [1.0, 4.0], 6,
                                                 settings={"sampler": "greedy"}, batch_size=2)
    assert set(guided) == {"1", "4"} and guided["1"]["bodies"] == plain
    assert guided["4"]["bodies"] != plain, "a large scale changes the greedy articles"
    blank = news_writing.guided_topic_agreement(model, tokenizer, articles, Constant(), [1.0, 4.0], 6,
                                                settings={"sampler": "greedy"}, batch_size=2, negative="blank")
    assert blank["1"]["bodies"] == plain and blank["4"]["negative"] == "blank"
    assert blank["4"]["bodies"] != guided["4"]["bodies"], "the negative prompt matters above scale 1"
    for row in guided.values():
        assert row["articles"] == 3 and row["topic_agreement"] == pytest.approx(1 / 3)  # one sport article


def test_packed_causal_windows_never_mix_training_and_held_out_documents():
    train_documents = [np.arange(10, 30), np.arange(30, 45)]
    held_out_documents = [np.arange(100, 140)]
    train = LMWindowSampler(train_documents, 8, separator_id=2)
    held_out = LMWindowSampler(held_out_documents, 8, separator_id=2)
    train_inputs, train_labels = train.random_windows(200, seed=0)
    held_inputs, held_labels = held_out.random_windows(200, seed=0)
    assert set(np.unique(np.concatenate([train_inputs, train_labels]))) <= set(range(10, 45)) | {2}
    assert set(np.unique(np.concatenate([held_inputs, held_labels]))) <= set(range(100, 140)) | {2}
    assert 2 in train.stream and list(train.stream[20:22]) == [2, 30], "end-of-text between documents"


def test_configs_name_the_bad_value():
    with pytest.raises(ValueError, match="seeds"):
        news_writing.NewsWritingConfig(seeds=[0, 0])
    with pytest.raises(ValueError, match="eval_stride"):
        news_writing.NewsWritingConfig(eval_stride=256)
    with pytest.raises(ValueError, match="objective"):
        causal_pretraining.CausalPretrainConfig(objective="masked")
    with pytest.raises(ValueError, match="sample_prompts"):
        causal_pretraining.CausalPretrainConfig(sample_prompts=[""])
    config = news_writing.NewsWritingConfig().with_model_of(
        {"block_size": 64, "hidden_dim": 32, "num_layers": 1, "num_heads": 2, "intermediate_dim": 64,
         "use_bias": False, "tie_embeddings": True})
    assert (config.block_size, config.hidden_dim, config.use_bias) == (64, 32, False)
    with pytest.raises(ValueError, match="init-from"):
        news_writing.load_pretrained_gpt("")


def test_last_block_self_attention_weights_are_causal_distributions():
    from llm_tf.tasks.language_modeling import self_attention_weights

    keras.utils.set_random_seed(1)
    model = GPT(GPTConfig(vocabulary_size=50, max_sequence_length=12, hidden_dim=16, num_layers=2, num_heads=4,
                          intermediate_dim=32))
    weights = self_attention_weights(model, [3, 4, 5, 6, 7])
    assert weights.shape == (4, 5, 5)
    assert np.allclose(weights.sum(axis=-1), 1.0, atol=1e-5) and np.allclose(np.triu(weights, k=1), 0.0)
    assert np.allclose(weights[:, 0, 0], 1.0), "the first token can only attend to itself"
    with pytest.raises(ValueError, match="1..12 ids"):
        self_attention_weights(model, list(range(13)))
