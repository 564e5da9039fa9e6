"""A rule-based English sentence splitter for news articles, summaries and dialogues.

`split_sentences` cuts a text into sentences without changing a character: joining the sentences gives back
the text up to whitespace (tested over all 2,225 BBC News Summary articles). The rules:

1. Every line break ends a sentence (BBC articles put the headline and each paragraph on their own lines;
   SAMSum dialogues put one turn per line, so each turn can be one sentence with `lines_only=True`).
2. Inside a line, a sentence ends after ".", "!" or "?" (or "..."), optionally followed by closing quotes
   or brackets, when whitespace follows and the next sentence starts with a capital letter, a digit or an
   opening quote / bracket.
3. No cut after a known abbreviation ("Mr.", "Dr.", "St.", "Jan.", "Inc.", "vs.", ... see `ABBREVIATIONS`),
   after a single-letter initial ("J. Smith"), or inside a dotted acronym ("U.S. Army"), because the next
   capital there is a name, not a new sentence.
4. Decimals, amounts and web names ("$10.9bn", "1.5%", "Amazon.com") are never cut: no whitespace follows
   their dot.
5. With `fix_glued=True` (for BBC News Summary's summaries) a glued sentence end such as "$10.9bn.For the"
   is first given back its space by `llm_tf.datasets.fix_sentence_spacing` (only spaces are inserted).

Example:
    >>> split_sentences('Profits rose 1.5% to $10.9bn. Mr. Smith said: "It is good." Dr. J. Doe agreed.')
    ['Profits rose 1.5% to $10.9bn.', 'Mr. Smith said: "It is good."', 'Dr. J. Doe agreed.']
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof st sr jr rev gen col lt sgt capt cmdr adm gov sen rep hon messrs mt ft
    no nos vs etc inc ltd co corp plc bros dept est approx fig
    jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)

# A candidate end: terminal punctuation, optional closing quotes/brackets, whitespace, then a sentence start.
_CANDIDATE_END = re.compile(r"""[.!?]+["'\u201d\u2019)\]]*(?=\s+["'\u201c\u2018(\[]*[A-Z0-9])""")
_WORD_BEFORE_DOT = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


def _is_abbreviation(text_before_and_dot: str) -> bool:
    """Whether the text up to and including a final "." ends in an abbreviation, initial or dotted acronym."""
    match = _WORD_BEFORE_DOT.search(text_before_and_dot)
    if match is None:
        return False
    word = match.group(1)
    start = match.start(1)
    if start > 0 and not (text_before_and_dot[start - 1].isspace() or text_before_and_dot[start - 1] in "(\"'"):
        return False  # part of a longer token such as "$10.9bn" (never reached: no letter run) or "x-Mr."
    if "." in word:
        return True  # a dotted acronym such as "U.S." or "a.m."
    if len(word) == 1 and word.isupper():
        return True  # an initial such as "J."
    return word.lower() in ABBREVIATIONS


def _split_line(line: str) -> list[str]:
    sentences, start = [], 0
    for match in _CANDIDATE_END.finditer(line):
        punctuation = match.group(0)
        if punctuation.startswith(".") and len(punctuation.rstrip("\"'\u201d\u2019)]")) == 1:
            if _is_abbreviation(line[: match.start() + 1]):
                continue
        piece = line[start : match.end()].strip()
        if piece:
            sentences.append(piece)
        start = match.end()
    tail = line[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def split_sentences(text: str, *, fix_glued: bool = False, lines_only: bool = False) -> list[str]:
    """Splits a text into sentences (each stripped of surrounding whitespace; empty ones dropped).

    Args:
        text: the text; line breaks always end a sentence.
        fix_glued: first put back the space in glued sentence ends ("$10.9bn.For the" -> "$10.9bn. For the"),
            as BBC News Summary's summary files need.
        lines_only: cut at line breaks only (one sentence per line, e.g. one dialogue turn).

    Returns:
        The sentences in text order; `"".join(text.split()) == "".join("".join(s.split()) for s in result)`.

    Raises:
        ValueError: when `text` is not a string.

    Example:
        >>> split_sentences("Sales rose.It said.", fix_glued=True)
        ['Sales rose.', 'It said.']
    """
    if not isinstance(text, str):
        raise ValueError(f"`text` must be a str; got {type(text).__name__}.")
    if fix_glued:
        from llm_tf.datasets.bbc import fix_sentence_spacing

        text = fix_sentence_spacing(text)
    sentences = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        sentences.extend([line] if lines_only else _split_line(line))
    return sentences


def normalize_sentence(sentence: str) -> str:
    """Lower-cases a sentence and keeps only its letters and digits, one space apart (for exact matching).

    Quotes, punctuation and spacing differences between an article sentence and its copy in a summary (the
    BBC summaries do not keep quotes balanced) disappear.

    Example:
        >>> normalize_sentence('"It is GOOD," he said.')
        'it is good he said'
    """
    return " ".join(re.findall(r"[a-z0-9]+", sentence.lower()))


__all__ = ["ABBREVIATIONS", "normalize_sentence", "split_sentences"]
