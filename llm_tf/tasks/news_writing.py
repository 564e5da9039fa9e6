"""Automatic news writing: a GPT fine-tuned on BBC News to write an article for a requested topic and headline.

The steps of ``experiments/news_writing.py``, in order:

1. :func:`bbc_articles`: each BBC file as ``(topic, title, body)`` (the first line is the headline) on the news
   job's seeded split; :func:`format_article` writes it as ``topic: <topic>\\ntitle: <headline>\\n\\n<body>``.
2. :func:`fine_tune`: ``llm_tf.tasks.language_modeling.train_causal_lm`` on the formatted training articles (each
   followed by end-of-text), from the weights of a causal pretraining run (``--init-from``) or from a random
   initialisation with the same recipe, seed and tokenizer, so the two differ only in where they start.
3. :func:`conditional_scores`: perplexity and bits per byte of each test article's *body* given its topic and
   title line (the prompt's tokens are context, never scored). A body longer than the context is scored with
   strided windows: every body token exactly once, each with at least ``block_size - stride`` tokens of context.
4. :func:`generate_articles`: one article per test headline, with its true topic, for each sampler
   (:data:`SAMPLERS`); :func:`topic_agreement` classifies the generated bodies with a TF-IDF + LinearSVC
   classifier trained on the BBC training bodies; :func:`distinct_n` and :func:`repeated_ngram_rate` measure
   diversity and repetition.

Example:
    >>> format_article("sport", "Claxton hunting first major medal", "British hurdler Sarah Claxton ...")
    'topic: sport\\ntitle: Claxton hunting first major medal\\n\\nBritish hurdler Sarah Claxton ...'
    >>> parse_prompt(format_prompt("tech", "Gadgets galore"))
    ('tech', 'Gadgets galore')
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

import llm_tf.models  # noqa: F401  (registers GPT for keras.saving.load_model)
from llm_tf.checks import check_number, check_positive_int, check_probability
from llm_tf.tasks.language_modeling import CausalLMConfig

#: The samplers compared side by side: name -> ``GPT.generate`` settings.
SAMPLERS = {
    "greedy": {"sampler": "greedy"},
    "top_k_40": {"sampler": "top_k", "top_k": 40},
    "top_p_0.9": {"sampler": "top_p", "top_p": 0.9},
    "temperature_0.8": {"sampler": "temperature", "temperature": 0.8},
    "beam_4": {"sampler": "beam", "num_beams": 4},
}
#: The sampler whose articles are generated for every test headline (the topic-agreement figure).
MAIN_SAMPLER = "top_p_0.9"
MODEL_FILE, TOKENIZER_DIR = "last.keras", "tokenizer"


def format_prompt(topic: str, title: str) -> str:
    """The conditioning text: ``topic: <topic>\\ntitle: <title>\\n\\n`` (the body follows it)."""
    topic, title = str(topic).strip(), " ".join(str(title).split())
    if not topic or "\n" in topic or not title:
        raise ValueError(f"a prompt needs a one-line topic and a non-empty title; got topic={topic!r}, title={title!r}.")
    return f"topic: {topic}\ntitle: {title}\n\n"


GUIDANCE_NEGATIVES = ("title", "blank")


def format_negative_prompt(title: str, negative: str = "title") -> str:
    """The negative prompt of guided decoding (``GPT.generate``'s classifier-free guidance) for headline ``title``.

    Decoding with ``negative_prompt_ids`` set to it and a scale above 1 favours the tokens that the full prompt
    (:func:`format_prompt`) makes likelier than the negative prompt does.

    Args:
        title: the headline.
        negative: ``"title"``: the prompt without its topic line, ``title: <title>\\n\\n`` (topic guidance: only
            the topic line is amplified); ``"blank"``: the blank line that ends every prompt, ``\\n\\n`` (prompt
            guidance, as in Sanchez et al. 2023, "Stay on topic with classifier-free guidance": topic and
            headline are amplified together, the headline being the richer topic signal).
    """
    if negative not in GUIDANCE_NEGATIVES:
        raise ValueError(f"negative must be one of {GUIDANCE_NEGATIVES}; got {negative!r}.")
    title = " ".join(str(title).split())
    if not title:
        raise ValueError("a negative prompt needs a non-empty title.")
    return f"title: {title}\n\n" if negative == "title" else "\n\n"


def format_article(topic: str, title: str, body: str) -> str:
    """One training document: :func:`format_prompt` followed by the body."""
    return format_prompt(topic, title) + body.strip()


def parse_prompt(text: str) -> tuple[str, str]:
    """``(topic, title)`` of a text that starts with :func:`format_prompt`'s two lines.

    Raises:
        ValueError: when the text does not start with ``topic: ...\\ntitle: ...``.
    """
    lines = text.split("\n")
    if len(lines) < 2 or not lines[0].startswith("topic: ") or not lines[1].startswith("title: "):
        raise ValueError(f"expected 'topic: <topic>\\ntitle: <title>' at the start; got {text[:80]!r}.")
    return lines[0][len("topic: "):], lines[1][len("title: "):]


def split_headline(text: str) -> tuple[str, str]:
    """``(headline, body)`` of a BBC article: the first non-empty line, and the rest without its leading blanks."""
    stripped = text.lstrip()
    headline, _, body = stripped.partition("\n")
    if not headline.strip() or not body.strip():
        raise ValueError(f"a BBC article needs a headline line and a body; got {text[:80]!r}.")
    return headline.strip(), body.strip()


def bbc_articles(split) -> list[tuple[str, str, str]]:
    """``(topic, title, body)`` for every text of a ``LabeledTexts`` split of ``load_bbc_news`` (with headlines)."""
    return [(split.class_names[label], *split_headline(text)) for text, label in zip(split.texts, split.labels)]


# ------------------------------------------------------------------------------------------------------------
# Scoring.


def strided_windows(ids: Sequence[int], first_scored: int, window: int, stride: int):
    """Windows over ``ids`` that predict every token from ``first_scored`` on exactly once.

    Args:
        ids: the whole sequence (prompt + body).
        first_scored: the index of the first token to score (>= 1: token 0 has no context).
        window: tokens per window (the model's ``max_sequence_length``).
        stride: new tokens per window after the first, ``1 <= stride < window``; each scored token keeps at least
            ``window - stride`` tokens of context (or all before it).

    Returns:
        A list of ``(begin, tokens, weights)``: ``tokens = ids[begin:begin + len(tokens)]`` and float weights of
        the same length, 1 where that token is scored (predicted from the tokens before it in the window).
    """
    check_positive_int("window", window)
    check_positive_int("stride", stride)
    if stride >= window:
        raise ValueError(f"`stride` must be smaller than `window`; got stride={stride}, window={window}.")
    ids = list(ids)
    n = len(ids)
    if not 1 <= first_scored < n:
        raise ValueError(f"`first_scored` must be in [1, {n}) for a sequence of {n} tokens; got {first_scored}.")
    windows, begin, end, scored_from = [], 0, min(n, window), first_scored
    # The first window ends at `window` even when the prompt is longer, so the prompt always fits as context.
    while True:
        if end <= scored_from:  # a prompt longer than the window: slide until the body starts
            end = min(n, scored_from + 1)
            begin = max(0, end - window)
        positions = np.arange(begin, end)
        weights = ((positions >= scored_from) & (positions > begin)).astype(np.float32)
        windows.append((begin, ids[begin:end], weights))
        if end == n:
            return windows
        scored_from = end
        end = min(n, end + stride)
        begin = max(0, end - window)


def conditional_scores(model, tokenizer, articles: Sequence[tuple[str, str, str]], stride: int | None = None,
                       batch_size: int = 32) -> dict[str, float]:
    """Perplexity and bits per byte of each body given :func:`format_prompt` of its topic and title.

    The prompt and the body are encoded separately (the prompt ends in a blank line, where byte-level BPE
    splits anyway) and concatenated; only body tokens are scored (see :func:`strided_windows`). Bits per byte
    divide the body's total negative log-likelihood (in bits) by its UTF-8 bytes.

    Args:
        model: a ``llm_tf.models.GPT``.
        tokenizer: its tokenizer.
        articles: ``(topic, title, body)`` triples.
        stride: new tokens per window after the first (default: half the context).
        batch_size: windows per ``GPT.score`` call (every call has the same shape: one compilation).

    Returns:
        ``{"loss": nats per body token, "perplexity", "bits_per_byte", "tokens", "bytes", "articles", "windows"}``.
    """
    nats, total_tokens, total_bytes, windows = _body_nats(model, tokenizer, articles, stride, batch_size)
    loss = float(nats.sum()) / total_tokens
    return {"loss": loss, "perplexity": math.exp(loss),
            "bits_per_byte": float(nats.sum()) / (math.log(2) * total_bytes), "tokens": total_tokens,
            "bytes": total_bytes, "articles": len(articles), "windows": windows}


def _body_nats(model, tokenizer, articles, stride, batch_size):
    """``(nats per article, body tokens, body bytes, windows)`` of :func:`conditional_scores`."""
    if not articles:
        raise ValueError("no articles to score.")
    window = model.config.max_sequence_length
    stride = stride or window // 2
    rows, weights, owners = [], [], []
    total_bytes = total_tokens = 0
    for index, (topic, title, body) in enumerate(articles):
        prompt_ids = tokenizer.encode(format_prompt(topic, title))
        body_ids = tokenizer.encode(body.strip())
        if not body_ids:
            raise ValueError(f"article {title!r} has an empty body.")
        total_bytes += len(body.strip().encode("utf-8"))
        total_tokens += len(body_ids)
        for _, tokens, scored in strided_windows(prompt_ids + body_ids, len(prompt_ids), window, stride):
            rows.append(tokens)
            weights.append(scored)
            owners.append(index)
    token_ids = np.zeros((len(rows), window), np.int32)
    mask = np.zeros((len(rows), window), bool)
    weight = np.zeros((len(rows), window), np.float64)
    for index, (tokens, scored) in enumerate(zip(rows, weights)):
        token_ids[index, :len(tokens)] = tokens
        mask[index, :len(tokens)] = True
        weight[index, :len(tokens)] = scored
    if int(weight.sum()) != total_tokens:
        raise AssertionError(f"scored {int(weight.sum())} tokens for {total_tokens} body tokens")
    nats = np.zeros(len(articles))
    for start in range(0, len(rows), batch_size):
        chunk_ids, chunk_mask = token_ids[start:start + batch_size], mask[start:start + batch_size]
        count = len(chunk_ids)
        if count < batch_size:  # pad with one-token rows: the same shape, nothing scored
            chunk_ids = np.concatenate([chunk_ids, np.zeros((batch_size - count, window), np.int32)])
            chunk_mask = np.concatenate([chunk_mask, np.zeros((batch_size - count, window), bool)])
            chunk_mask[count:, 0] = True
        log_probabilities = np.asarray(model.score(chunk_ids, padding_mask=chunk_mask)["log_probabilities"][:count])
        row_nats = -(log_probabilities * weight[start:start + count, 1:]).sum(axis=1)
        np.add.at(nats, owners[start:start + count], row_nats)
    return nats, total_tokens, total_bytes, len(rows)


def topic_sensitivity(model, tokenizer, articles: Sequence[tuple[str, str, str]], max_body_chars: int = 800,
                      stride: int | None = None, batch_size: int = 32) -> dict[str, Any]:
    """Does the model use the topic line? Each body (its first ``max_body_chars`` characters) scored under every topic.

    A model that writes on the requested topic must also find each real body likelier under its own topic than
    under the others: ``topic_by_likelihood_accuracy`` is the share of articles whose true topic gives the lowest
    body loss (strictly: ties count as misses; chance is 1 / number of topics), and the two bits-per-byte figures
    compare the true topic with the mean over the other topics.

    Returns:
        ``{"topics", "articles", "topic_by_likelihood_accuracy", "bits_per_byte_true_topic",
        "bits_per_byte_other_topics"}``.
    """
    check_positive_int("max_body_chars", max_body_chars)
    articles = [(topic, title, body.strip()[:max_body_chars].strip()) for topic, title, body in articles]
    topics = sorted({topic for topic, _, _ in articles})
    if len(topics) < 2:
        raise ValueError(f"topic sensitivity needs articles of at least two topics; got {topics}.")
    table = np.stack([_body_nats(model, tokenizer, [(topic, title, body) for _, title, body in articles], stride,
                                 batch_size)[0] for topic in topics], axis=1)  # (articles, topics) nats
    truth = np.array([topics.index(topic) for topic, _, _ in articles])
    rows = np.arange(len(articles))
    true_nats = table[rows, truth]
    others = table.copy()
    others[rows, truth] = np.inf
    wins = true_nats < others.min(axis=1)
    other_nats = (table.sum(axis=1) - true_nats) / (len(topics) - 1)
    total_bits = math.log(2) * sum(len(body.encode("utf-8")) for _, _, body in articles)
    return {"topics": topics, "articles": len(articles), "topic_by_likelihood_accuracy": float(wins.mean()),
            "bits_per_byte_true_topic": float(true_nats.sum() / total_bits),
            "bits_per_byte_other_topics": float(other_nats.sum() / total_bits)}


# ------------------------------------------------------------------------------------------------------------
# Generation and its measures.


def generate_articles(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, settings: dict,
                      batch_size: int = 16, seed: int = 0, negative_prompts: Sequence[str] | None = None,
                      guidance_scale: float = 1.0) -> tuple[list[str], dict[str, float]]:
    """Continue every prompt (batched, left-padded) until end-of-text or ``max_new_tokens``; returns the bodies.

    Args:
        negative_prompts: one per prompt (e.g. :func:`format_negative_prompt`) for classifier-free guidance
            with ``guidance_scale`` (``GPT.generate``'s ``negative_prompt_ids``); None: plain decoding.

    Returns:
        ``(bodies, speed)``: the generated text after each prompt (cut at end-of-text), and
        ``{"seconds", "new_tokens", "tokens_per_s"}`` (compilation included).

    Raises:
        ValueError: when a prompt leaves no room for ``max_new_tokens`` in the model's context, or the negative
            prompts do not match the prompts one to one.
    """
    check_positive_int("max_new_tokens", max_new_tokens)
    encoded = [tokenizer.encode(prompt) for prompt in prompts]
    negatives = None
    if negative_prompts is not None:
        if len(negative_prompts) != len(prompts):
            raise ValueError(f"one negative prompt per prompt: {len(prompts)} prompts, {len(negative_prompts)} "
                             "negative prompts.")
        negatives = [tokenizer.encode(prompt) for prompt in negative_prompts]
    longest = max(len(ids) for ids in encoded + (negatives or []))
    if longest + max_new_tokens > model.config.max_sequence_length:
        raise ValueError(f"prompt too long: the longest prompt has {longest} tokens, + max_new_tokens="
                         f"{max_new_tokens} exceeds the model's max_sequence_length={model.config.max_sequence_length}.")
    eos = tokenizer.eos_id
    bodies, produced, started = [], 0, time.time()
    for start in range(0, len(encoded), batch_size):
        batch = list(encoded[start:start + batch_size])
        count = len(batch)
        # Every batch has the same shape (rows and prompt width), so the generation loop is compiled once.
        batch += [[eos]] * (batch_size - count)
        guidance = {}
        if negatives is not None:
            negative_batch = list(negatives[start:start + batch_size]) + [[eos]] * (batch_size - count)
            guidance = {"negative_prompt_ids": _left_pad_to(negative_batch, longest),
                        "guidance_scale": guidance_scale}
        output = model.generate(_left_pad_to(batch, longest), max_new_tokens=max_new_tokens, stop_token_ids=eos,
                                seed=seed + start, **settings, **guidance)
        for row in output[:count]:
            new = [int(token) for token in row[longest:]]
            if eos in new:
                new = new[:new.index(eos)]
            produced += len(new)
            bodies.append(tokenizer.decode(new).strip())
    seconds = time.time() - started
    return bodies, {"seconds": round(seconds, 2), "new_tokens": produced,
                    "tokens_per_s": round(produced / seconds, 1) if seconds else None}


def _left_pad_to(batch: Sequence[Sequence[int]], width: int) -> dict[str, np.ndarray]:
    token_ids = np.zeros((len(batch), width), np.int32)
    mask = np.zeros((len(batch), width), bool)
    for index, ids in enumerate(batch):
        token_ids[index, width - len(ids):] = ids
        mask[index, width - len(ids):] = True
    return {"token_ids": token_ids, "padding_mask": mask}


def generation_speed(model, tokenizer, prompt: str, batch_sizes: Sequence[int] = (1, 8), new_tokens: int = 200,
                     settings: dict | None = None, repeats: int = 2) -> dict[str, float]:
    """Tokens/s of ``model.generate`` for each batch size: no stop token, compiled once, best of ``repeats``."""
    settings = settings or SAMPLERS[MAIN_SAMPLER]
    ids = tokenizer.encode(prompt)
    new_tokens = min(new_tokens, model.config.max_sequence_length - len(ids))
    speeds = {}
    for batch_size in batch_sizes:
        batch = np.tile(np.asarray(ids, np.int32), (batch_size, 1))
        model.generate(batch, max_new_tokens=new_tokens, seed=0, **settings)  # compile
        best = math.inf
        for repeat in range(repeats):
            started = time.perf_counter()
            model.generate(batch, max_new_tokens=new_tokens, seed=repeat + 1, **settings)
            best = min(best, time.perf_counter() - started)
        speeds[f"batch_{batch_size}"] = round(batch_size * new_tokens / best, 1)
    speeds["new_tokens"] = new_tokens
    return speeds


def _words(text: str) -> list[str]:
    return text.lower().split()


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n (Li et al., 2016): distinct word n-grams / all word n-grams, pooled over ``texts`` (0 if none)."""
    check_positive_int("n", n)
    grams = [tuple(words[i:i + n]) for words in map(_words, texts) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_ngram_rate(texts: Sequence[str], n: int = 4) -> float:
    """The share of word n-grams that already occurred earlier in the *same* text (pooled; 0 if none)."""
    check_positive_int("n", n)
    repeated = total = 0
    for words in map(_words, texts):
        seen = set()
        for i in range(len(words) - n + 1):
            gram = tuple(words[i:i + n])
            repeated += gram in seen
            seen.add(gram)
            total += 1
    return repeated / total if total else 0.0


def topic_classifier(articles: Sequence[tuple[str, str, str]]):
    """TF-IDF + LinearSVC (``llm_tf.tasks.baselines.make_tfidf_svm``) fit on the bodies of ``articles``."""
    from llm_tf.tasks.baselines import make_tfidf_svm

    classifier = make_tfidf_svm(min_df=2 if len(articles) >= 20 else 1)
    classifier.fit([body for _, _, body in articles], [topic for topic, _, _ in articles])
    return classifier


def topic_agreement(classifier, bodies: Sequence[str], topics: Sequence[str]) -> dict[str, Any]:
    """The share of ``bodies`` the classifier assigns to the requested topic, and the per-topic counts."""
    if len(bodies) != len(topics) or not bodies:
        raise ValueError(f"`bodies` and `topics` must be non-empty and of one length; got {len(bodies)} and "
                         f"{len(topics)}.")
    predicted = classifier.predict([body if body.strip() else "(empty)" for body in bodies])
    agree = [str(p) == str(t) for p, t in zip(predicted, topics)]
    per_topic = {topic: round(float(np.mean([a for a, t in zip(agree, topics) if t == topic])), 4)
                 for topic in sorted(set(topics))}
    return {"agreement": float(np.mean(agree)), "per_topic": per_topic, "predicted": dict(Counter(map(str, predicted)))}


# ------------------------------------------------------------------------------------------------------------
# The run.


@dataclasses.dataclass
class NewsWritingConfig(CausalLMConfig):
    """A news-writing experiment: the fine-tuning recipe, the seeds and the generation settings (``config.json``).

    The model's sizes (``block_size``, ``hidden_dim``, ``num_layers``, ``num_heads``, ``intermediate_dim``,
    ``use_bias``, ``tie_embeddings``) are the pretraining run's: :meth:`with_model_of` copies them, so the
    scratch model has exactly the pretrained one's shape.

    Args:
        init_from: the causal pretraining run directory (``experiments/pretrain.py --objective causal``).
        seeds: one pretrained and one scratch fine-tuning per seed (same seed: same batches, same dropout).
        eval_stride: new tokens per scoring window after the first (default: half the context).
        generate_new_tokens: tokens generated per article (fewer when a prompt leaves less room).
        sampler_articles: test headlines, evenly spaced over the split, generated with every sampler of
            :data:`SAMPLERS` (None: all).
        max_test_articles: score and generate only this many test articles, evenly spaced (smoke runs; None: all).
        generation_batch_size: prompts per ``generate`` call.
        generation_seed: the sampling seed.
        topic_guidance_scales: classifier-free guidance scales at which the first seed's pretrained model also
            writes an article for every test headline with the main sampler (:func:`guided_topic_agreement`;
            empty: none).
        guidance_negative: the negative prompt of those guided articles (:func:`format_negative_prompt`):
            ``"title"`` (topic guidance: the topic line alone is amplified) or ``"blank"`` (prompt guidance:
            topic and headline together). Top-p topic agreement, title / blank, on the fraction-1.0 news run of
            the default pretraining, 300 steps (48.0% unguided): scale 1.5 46.6% / 47.5%, 3 58.3% / 64.1%, 6 71.3% /
            69.5%; at 600 steps (71.7% unguided), scale 6: 95.5% / 91.0%.
        document_start_fraction: every fine-tuning window starts at an article's first token, so its topic and
            title line is in context for every token the model learns to predict (with uniform windows of 256
            tokens over articles of ~560, only about a quarter of the predictions see it). Measured on the default
            pretraining recipe, seed 0, 300 steps: top-p topic agreement 26.9% (0: uniform windows only) -> 37.7%
            (0.5) -> 48.0% (1.0), for +0.006 / +0.018 test bits per byte (windows at article starts never reach
            past an article's first 256 tokens).
        max_iters: 900 fine-tuning steps (~8 passes over the article openings). Measured on the default
            pretraining, seed 0, at 300 / 600 / 900 steps: top-p topic agreement 48.0% / 71.7% / 81.2% (scratch
            27.4% / 70.9% / 86.1%), test bits per byte 1.955 / 1.883 / 1.849 (scratch 2.216 / 2.054 / 1.975):
            longer fine-tuning writes more on topic while the pretrained / scratch ratio rises (0.882 / 0.917 /
            0.936), since the scratch model gains more from each extra step.
    """

    init_from: str = ""
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0, 1])
    eval_stride: int | None = None
    generate_new_tokens: int = 200
    sampler_articles: int | None = 100
    max_test_articles: int | None = None
    generation_batch_size: int = 16
    generation_seed: int = 1234
    topic_guidance_scales: list[float] = dataclasses.field(default_factory=lambda: [3.0, 6.0])
    guidance_negative: str = "title"
    scale_residual_init: bool = True
    document_start_fraction: float = 1.0
    batch_size: int = 16
    dropout: float = 0.1
    max_iters: int = 900
    eval_interval: int = 50
    eval_iters: int = 4
    learning_rate: float = 5e-4
    min_learning_rate: float = 5e-5
    warmup_iters: int = 30
    beta_2: float = 0.95
    steps_per_execution: int = 25
    sample_length: int = 0

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.init_from, str):
            raise ValueError(f"`init_from` must be a run directory path; got init_from={self.init_from!r}.")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"`seeds` must be distinct integers, at least one; got seeds={self.seeds!r}.")
        for name in ("eval_stride", "sampler_articles", "max_test_articles"):
            check_positive_int(name, getattr(self, name), allow_none=True)
        for name in ("generate_new_tokens", "generation_batch_size"):
            check_positive_int(name, getattr(self, name))
        if self.eval_stride is not None and self.eval_stride >= self.block_size:
            raise ValueError(f"`eval_stride` must be smaller than block_size={self.block_size}; got "
                             f"{self.eval_stride}.")
        check_probability("dropout", self.dropout, allow_one=False)
        for scale in self.topic_guidance_scales:
            check_number("topic_guidance_scales", scale, minimum=0)
        if self.guidance_negative not in GUIDANCE_NEGATIVES:
            raise ValueError(f"`guidance_negative` must be one of {GUIDANCE_NEGATIVES}; got "
                             f"{self.guidance_negative!r}.")

    def with_model_of(self, pretrained: dict) -> NewsWritingConfig:
        """This config with the model sizes of a pretraining run's ``config.json`` (``pretrained``)."""
        fields = ("block_size", "hidden_dim", "num_layers", "num_heads", "intermediate_dim", "use_bias",
                  "tie_embeddings")
        return dataclasses.replace(self, **{name: pretrained[name] for name in fields})


def load_pretrained_gpt(path: str):
    """``(model, tokenizer, config dict)`` of a finished causal pretraining run directory."""
    from llm_tf.tasks.language_modeling import load_lm_run

    if not path:
        raise ValueError("--init-from is required: the causal pretraining run directory to fine-tune "
                         "(python experiments/pretrain.py --objective causal).")
    return load_lm_run(path, checkpoint="last", required=["progress"])


def fine_tune(member, config: NewsWritingConfig, tokenizer, train_documents, validation_documents, strategy,
              initial_weights=None, log_every_n_steps: int = 50, backup_every_n_steps: int | None = None):
    """Train (or resume, or reload when finished) one fine-tuning in ``member``; returns ``(model, results)``.

    A finished member (``results.json`` completed, ``last.keras`` present) is loaded, never trained again: the
    training backup is deleted once a run completes, so training again would start from scratch.
    """
    import keras

    from llm_tf.tasks import language_modeling as lm
    from llm_tf.tasks.runs import finished_results

    finished = finished_results(member, required=["evaluations"])
    if finished is not None and os.path.isfile(member.file(MODEL_FILE)):
        return keras.saving.load_model(member.file(MODEL_FILE), compile=False), finished
    results = lm.train_causal_lm(config, tokenizer, train_documents, validation_documents, member, strategy,
                                 log_every_n_steps=log_every_n_steps, backup_every_n_steps=backup_every_n_steps,
                                 name=os.path.basename(member.path), separator_id=tokenizer.eos_id,
                                 initial_weights=initial_weights, max_full_eval_windows=200)
    from llm_tf import training

    metrics = results.pop("metrics")
    training.write_results(member, metrics, results["train_time_s"], extra={**results, "metrics": metrics})
    return keras.saving.load_model(member.file(MODEL_FILE), compile=False), {**results, "metrics": metrics}


def load_articles(config: NewsWritingConfig) -> dict[str, list[tuple[str, str, str]]]:
    """BBC News as ``{"train", "validation", "test"}`` lists of ``(topic, title, body)``, the news job's split.

    With ``config.max_test_articles``, the test articles are that many, evenly spaced (the split is ordered by
    topic, so a prefix would hold one or two topics only).
    """
    from llm_tf.datasets import load_bbc_news

    bbc = load_bbc_news(config.data_dir)
    articles = {name: bbc_articles(getattr(bbc, name)) for name in ("train", "validation", "test")}
    if config.max_test_articles is not None and config.max_test_articles < len(articles["test"]):
        keep = np.linspace(0, len(articles["test"]) - 1, config.max_test_articles).round().astype(int)
        articles["test"] = [articles["test"][i] for i in np.unique(keep)]
    return articles


def guided_topic_agreement(model, tokenizer, articles: Sequence[tuple[str, str, str]], classifier,
                           guidance_scales: Sequence[float], new_tokens: int, settings: dict | None = None,
                           batch_size: int = 16, seed: int = 0, negative: str = "title") -> dict[str, dict[str, Any]]:
    """Topic agreement of articles written with guidance, one entry per scale.

    Every ``(topic, title, _)`` of ``articles`` is continued from :func:`format_prompt` with
    ``format_negative_prompt(title, negative)`` as the negative prompt at each scale of ``guidance_scales``
    (classifier-free guidance; 1 = plain decoding at twice the cost), with ``settings`` (default: the main
    sampler, top-p 0.9), and the bodies are classified by ``classifier``.

    Returns:
        ``{"<scale>": {"guidance_scale", "negative", "articles", "topic_agreement", "topic_agreement_per_topic",
        "distinct_2", "repeated_4gram_rate", "mean_words", "seconds", "new_tokens", "tokens_per_s",
        "bodies"}}``.
    """
    settings = SAMPLERS[MAIN_SAMPLER] if settings is None else settings
    prompts = [format_prompt(topic, title) for topic, title, _ in articles]
    negatives = [format_negative_prompt(title, negative) for _, title, _ in articles]
    topics = [topic for topic, _, _ in articles]
    results = {}
    for scale in guidance_scales:
        bodies, speed = generate_articles(model, tokenizer, prompts, new_tokens, settings, batch_size=batch_size,
                                          seed=seed, negative_prompts=negatives, guidance_scale=float(scale))
        agreement = topic_agreement(classifier, bodies, topics)
        results[f"{float(scale):g}"] = {
            "guidance_scale": float(scale), "negative": negative, "articles": len(bodies),
            "topic_agreement": agreement["agreement"], "topic_agreement_per_topic": agreement["per_topic"],
            "distinct_2": distinct_n(bodies, 2),
            "repeated_4gram_rate": repeated_ngram_rate(bodies, 4),
            "mean_words": float(np.mean([len(body.split()) for body in bodies])), **speed, "bodies": bodies,
        }
    return results


def run_news_writing(run, config: NewsWritingConfig, strategy, *, log_every_n_steps: int = 50,
                     backup_every_n_steps: int | None = None) -> dict[str, Any]:
    """The whole experiment in ``run``: fine-tune pretrained and scratch per seed, score, generate, measure.

    Writes ``tokenizer/`` (the pretraining run's), one member directory per fine-tuning
    (``pretrained_seed_<s>/``, ``scratch_seed_<s>/``, each resumable), ``generated_<sampler>.jsonl`` and
    ``examples.md``; returns the results (the caller writes ``results.json``).
    """
    import json

    from llm_tf.tasks.runs import mean_and_std, member_run_dir

    pretrained_model, tokenizer, pretrained_config = load_pretrained_gpt(config.init_from)
    config = config.with_model_of(pretrained_config)
    if not os.path.isdir(run.file(TOKENIZER_DIR)):
        tokenizer.save(run.file(TOKENIZER_DIR))
    articles = load_articles(config)
    documents = {name: encode_documents(tokenizer, items) for name, items in articles.items()}
    initial = pretrained_model.get_weights()
    members, scores = {}, {"pretrained": [], "scratch": []}
    models = {}
    for seed in config.seeds:
        for start in ("pretrained", "scratch"):
            name = f"{start}_seed_{seed}"
            member_config = dataclasses.replace(config, seed=seed)
            member = member_run_dir(run, name, {**member_config.to_dict(), "start": start})
            print(f"news_writing: fine-tuning {name}", flush=True)
            model, trained = fine_tune(member, member_config, tokenizer, documents["train"], documents["validation"],
                                       strategy, initial_weights=initial if start == "pretrained" else None,
                                       log_every_n_steps=log_every_n_steps, backup_every_n_steps=backup_every_n_steps)
            test = conditional_scores(model, tokenizer, articles["test"], stride=config.eval_stride)
            print(f"news_writing: {name}: test bits per byte {test['bits_per_byte']:.4f}, perplexity "
                  f"{test['perplexity']:.1f}", flush=True)
            members[name] = {"test": test, "validation_loss": trained["metrics"]["val_loss"],
                             "train_time_s": trained.get("train_time_s"), "status": trained.get("status")}
            scores[start].append(test["bits_per_byte"])
            if seed == config.seeds[0]:
                models[start] = model
    summary = {}
    for start, values in scores.items():
        mean, std = mean_and_std(values)
        summary[start] = {"test_bits_per_byte_mean": mean, "test_bits_per_byte_std": std, "per_seed": values}
    summary["ratio_pretrained_to_scratch"] = summary["pretrained"]["test_bits_per_byte_mean"] / summary["scratch"][
        "test_bits_per_byte_mean"]
    sensitivity = {}
    for start, model in models.items():
        sensitivity[start] = topic_sensitivity(model, tokenizer, articles["test"], stride=config.eval_stride)
        print(f"news_writing: {start}_seed_{config.seeds[0]}: the true topic gives the likeliest body for "
              f"{sensitivity[start]['topic_by_likelihood_accuracy']:.3f} of the test articles; bits per byte "
              f"{sensitivity[start]['bits_per_byte_true_topic']:.4f} under the true topic, "
              f"{sensitivity[start]['bits_per_byte_other_topics']:.4f} under the others", flush=True)
    # Generation: the first seed's models; every test headline with the main sampler, a subset with all of them.
    classifier = topic_classifier(articles["train"])
    real = topic_agreement(classifier, [body for _, _, body in articles["test"]],
                           [topic for topic, _, _ in articles["test"]])
    prompts = [format_prompt(topic, title) for topic, title, _ in articles["test"]]
    topics = [topic for topic, _, _ in articles["test"]]
    longest = max(len(tokenizer.encode(prompt)) for prompt in prompts)
    new_tokens = min(config.generate_new_tokens, config.block_size - longest)
    if new_tokens < 1:
        raise ValueError(f"the longest test prompt has {longest} tokens: no room to generate in block_size="
                         f"{config.block_size}.")
    # The test split is ordered by topic: the sampler subset is spread evenly over it, so every topic is in it.
    count = len(prompts) if config.sampler_articles is None else min(config.sampler_articles, len(prompts))
    subset = np.unique(np.linspace(0, len(prompts) - 1, count).round().astype(int))
    samplers, generated = {}, {}
    for start, model in models.items():
        for sampler, settings in SAMPLERS.items():
            if start == "scratch" and sampler != MAIN_SAMPLER:
                continue
            chosen = np.arange(len(prompts)) if sampler == MAIN_SAMPLER else subset
            bodies, speed = generate_articles(model, tokenizer, [prompts[i] for i in chosen], new_tokens, settings,
                                              batch_size=config.generation_batch_size, seed=config.generation_seed)
            by_article = dict(zip(chosen.tolist(), bodies))
            agreement = topic_agreement(classifier, bodies, [topics[i] for i in chosen])
            key = f"{start}/{sampler}"
            samplers[key] = {"articles": len(chosen), "topic_agreement": agreement["agreement"],
                             "topic_agreement_per_topic": agreement["per_topic"],
                             "topic_agreement_on_sampler_subset": topic_agreement(
                                 classifier, [by_article[i] for i in subset], [topics[i] for i in subset])["agreement"],
                             "distinct_2": distinct_n(bodies, 2), "repeated_4gram_rate": repeated_ngram_rate(bodies, 4),
                             "mean_words": float(np.mean([len(body.split()) for body in bodies])), **speed}
            generated[key] = by_article
            with open(run.file(f"generated_{start}_{sampler}.jsonl"), "w", encoding="utf-8") as file:
                for index, body in by_article.items():
                    file.write(json.dumps({"test_index": index, "prompt": prompts[index], "generated_body": body})
                               + "\n")
            print(f"news_writing: {key}: topic agreement {agreement['agreement']:.3f} over {len(chosen)} articles, "
                  f"distinct-2 {samplers[key]['distinct_2']:.3f}, repeated 4-grams "
                  f"{samplers[key]['repeated_4gram_rate']:.3f}", flush=True)
    guided = guided_topic_agreement(models["pretrained"], tokenizer, articles["test"], classifier,
                                    config.topic_guidance_scales, new_tokens, batch_size=config.generation_batch_size,
                                    seed=config.generation_seed, negative=config.guidance_negative)
    for scale, row in guided.items():
        with open(run.file(f"generated_pretrained_{MAIN_SAMPLER}_guidance_{scale}.jsonl"), "w",
                  encoding="utf-8") as file:
            for index, body in enumerate(row.pop("bodies")):
                file.write(json.dumps({"test_index": index, "prompt": prompts[index],
                                       "negative_prompt": format_negative_prompt(articles["test"][index][1],
                                                                                 config.guidance_negative),
                                       "guidance_scale": row["guidance_scale"], "generated_body": body}) + "\n")
        print(f"news_writing: pretrained/{MAIN_SAMPLER} with guidance {scale} ({config.guidance_negative} as the "
              f"negative prompt): topic agreement "
              f"{row['topic_agreement']:.3f}, distinct-2 {row['distinct_2']:.3f}, repeated 4-grams "
              f"{row['repeated_4gram_rate']:.3f}", flush=True)
    speed = generation_speed(models["pretrained"], tokenizer, prompts[0], new_tokens=new_tokens)
    shown = subset[np.linspace(0, len(subset) - 1, min(3, len(subset))).round().astype(int)]
    write_examples(run.file("examples.md"), [(articles["test"][i], i) for i in shown], generated, new_tokens)
    return {"config": config.to_dict(), "members": members, "bits_per_byte": summary,
            "topic_classifier": {"name": "TF-IDF + LinearSVC on the BBC training bodies",
                                 "accuracy_on_real_test_bodies": real["agreement"]},
            "topic_sensitivity": sensitivity,
            "samplers": samplers, "topic_guidance": guided, "generation_new_tokens": new_tokens,
            "generation_speed": speed,
            "data": {name: len(items) for name, items in articles.items()},
            "pretrained_from": os.path.abspath(config.init_from)}


def encode_documents(tokenizer, articles: Sequence[tuple[str, str, str]]) -> list[np.ndarray]:
    """Each article as :func:`format_article` encoded (no special tokens; the trainer appends end-of-text)."""
    from llm_tf.tasks.causal_pretraining import encode_texts

    return encode_texts(tokenizer, [format_article(*article) for article in articles])


def write_examples(path: str, articles, generated: dict[str, dict[int, str]], new_tokens: int) -> str:
    """``examples.md``: test prompts, each real body beside what every model/sampler generated for it.

    Args:
        articles: ``((topic, title, body), test_index)`` pairs.
        generated: ``"model/sampler" -> {test_index: generated body}``.
    """
    lines = ["# Generated articles (model output, not BBC text) beside the real ones", "",
             f"At most {new_tokens} new tokens per article; the prompt is the topic and headline of a BBC test "
             "article. Everything under a model/sampler heading was generated by the model."]
    for number, ((topic, title, body), index) in enumerate(articles):
        lines += ["", f"## {number + 1}. topic: {topic} — title: {title}", "", "**Real article (BBC):**", "",
                  "> " + " ".join(body.split()[:120]) + " …"]
        for key, bodies in generated.items():
            if index in bodies:
                lines += ["", f"**Generated, {key}:**", "", "> " + " ".join(bodies[index].split())]
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return path

__all__ = [
    "MAIN_SAMPLER",
    "NewsWritingConfig",
    "SAMPLERS",
    "bbc_articles",
    "conditional_scores",
    "distinct_n",
    "encode_documents",
    "fine_tune",
    "format_article",
    "format_negative_prompt",
    "GUIDANCE_NEGATIVES",
    "format_prompt",
    "generate_articles",
    "generation_speed",
    "guided_topic_agreement",
    "load_articles",
    "load_pretrained_gpt",
    "parse_prompt",
    "run_news_writing",
    "repeated_ngram_rate",
    "split_headline",
    "strided_windows",
    "topic_agreement",
    "topic_classifier",
    "write_examples",
]
