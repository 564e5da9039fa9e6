"""Corpus BLEU and chrF through sacreBLEU, on detokenized strings, with the reproducibility signature.

sacreBLEU applies its own tokenization (``13a`` by default) to *detokenized* text, which is what makes
scores comparable across papers; never feed it WordPiece/BPE pieces or pre-tokenized text. Each result
carries sacreBLEU's signature string (``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``)
so that a reported number can be reproduced.
"""

from sacrebleu.metrics import BLEU, CHRF

from llm_tf.checks import check_choice, check_non_negative_int
from llm_tf.metrics._inputs import as_reference_lists, as_text_list, check_positive_int


def _reference_streams(reference_lists):
    """Transpose per-hypothesis reference lists into sacreBLEU's reference streams.

    sacreBLEU wants ``streams[r][i]`` = r-th reference of hypothesis i; a hypothesis with fewer
    references than the others gets ``None`` in the missing streams, which sacreBLEU skips.
    """
    num_streams = max(len(alternatives) for alternatives in reference_lists)
    return [
        [alternatives[r] if r < len(alternatives) else None for alternatives in reference_lists]
        for r in range(num_streams)
    ]


def _prepare(hypotheses, references):
    hypotheses = as_text_list("hypotheses", hypotheses)
    reference_lists = as_reference_lists("references", references, len(hypotheses), "hypotheses")
    return hypotheses, _reference_streams(reference_lists)


def corpus_chrf(hypotheses, references, char_order=6, word_order=0, beta=2, lowercase=False):
    """Corpus chrF (character n-gram F-score) with sacreBLEU, on a 0–100 scale.

    Args:
        hypotheses: list of detokenized system outputs, one string per segment. Empty strings are
            valid (they score 0); an empty list is not.
        references: one entry per hypothesis: a reference string, or a list of reference strings when
            a segment has several (their number may vary between segments).
        char_order: character n-gram order (sacreBLEU default 6).
        word_order: word n-gram order; 2 gives chrF++.
        beta: weight of recall relative to precision (2 for chrF2, the standard).
        lowercase: score case-insensitively.

    Returns:
        ``{"score": float, "signature": str}``; ``signature`` is sacreBLEU's, e.g.
        ``"nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"``.

    Raises:
        ValueError: when ``hypotheses`` is empty, the lengths differ, or an item is not a string.

    Example:
        >>> corpus_chrf(["the cat sat on the mat"], ["the cat sat on a mat"])["score"]  # doctest: +ELLIPSIS
        71.3...
    """
    check_positive_int("char_order", char_order)
    check_non_negative_int("word_order", word_order)
    check_positive_int("beta", beta)
    hypotheses, streams = _prepare(hypotheses, references)
    metric = CHRF(char_order=char_order, word_order=word_order, beta=beta, lowercase=lowercase)
    result = metric.corpus_score(hypotheses, streams)
    return {"score": float(result.score), "signature": str(metric.get_signature())}


def corpus_bleu(hypotheses, references, tokenize="13a", lowercase=False, smooth_method="exp", include_chrf=True):
    """Corpus BLEU with sacreBLEU (0–100 scale), plus chrF on the same data.

    Args:
        hypotheses: list of detokenized system outputs, one string per segment. Empty strings are
            valid: they contribute no n-gram matches, so a corpus made only of empty hypotheses scores
            0. An empty list raises ``ValueError``.
        references: one entry per hypothesis: a reference string, or a list of reference strings when
            a segment has several (their number may vary between segments).
        tokenize: sacreBLEU tokenizer (``"13a"``, ``"intl"``, ``"char"``, ``"zh"``, ``"none"``, …).
        lowercase: score case-insensitively.
        smooth_method: ``"exp"`` (sacreBLEU default), ``"floor"``, ``"add-k"`` or ``"none"``.
        include_chrf: also compute chrF (``corpus_chrf`` with its defaults, same ``lowercase``).

    Returns:
        A dict with ``score`` (BLEU), ``signature`` (sacreBLEU's BLEU signature string),
        ``precisions`` (the four n-gram precisions, percent), ``brevity_penalty``, ``hypothesis_length``
        and ``reference_length`` (tokens), and, when ``include_chrf``, ``chrf`` and ``chrf_signature``.

    Raises:
        ValueError: when ``hypotheses`` is empty, the lengths differ, an item is not a string, or an
            option is unknown.

    Example:
        >>> result = corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"])
        >>> round(result["score"], 2), result["signature"]
        (45.48, 'nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0')
    """
    check_choice("smooth_method", smooth_method, sorted(BLEU.SMOOTH_DEFAULTS))
    hypotheses, streams = _prepare(hypotheses, references)
    try:
        metric = BLEU(tokenize=tokenize, lowercase=lowercase, smooth_method=smooth_method)
    except KeyError:
        raise ValueError(
            f"`tokenize` must be a sacreBLEU tokenizer name such as '13a', 'intl', 'char', 'zh' or 'none'; "
            f"got tokenize={tokenize!r}."
        ) from None
    result = metric.corpus_score(hypotheses, streams)
    report = {
        "score": float(result.score),
        "signature": str(metric.get_signature()),
        "precisions": [float(p) for p in result.precisions],
        "brevity_penalty": float(result.bp),
        "hypothesis_length": int(result.sys_len),
        "reference_length": int(result.ref_len),
    }
    if include_chrf:
        chrf = corpus_chrf(hypotheses, [list(refs) for refs in _per_hypothesis(streams)], lowercase=lowercase)
        report["chrf"] = chrf["score"]
        report["chrf_signature"] = chrf["signature"]
    return report


def _per_hypothesis(streams):
    """Inverse of ``_reference_streams``: one list of (non-missing) references per hypothesis."""
    return [[ref for ref in refs if ref is not None] for refs in zip(*streams)]
