"""Tokenizers: round trips, special tokens, unknown characters, empty strings, truncation, invalid UTF-8,
save/load, graph mode, foreign vocabularies."""

import json

import numpy as np
import pytest
import tensorflow as tf

from llm_tf.text import BPETokenizer, CharTokenizer, Tokenizer, WordPieceTokenizer, load_tokenizer

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A café in Zürich serves naïve coffee; résumé attached!",
    "Stocks rose 3.5% on Monday, the highest since 2004.",
    'She said: "It\'s a brand-new day" and smiled.',
    "Numbers 12345 and words like jumping, jumped, jumps.",
] * 8


@pytest.fixture(scope="module")
def wordpiece():
    return WordPieceTokenizer.train(CORPUS, vocabulary_size=300, min_frequency=1, progress=False)


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(CORPUS, vocabulary_size=400, min_frequency=1, progress=False)


@pytest.fixture(scope="module")
def char():
    return CharTokenizer.train(CORPUS, progress=False)


# --------------------------------------------------------------------------------------------------
# The shared interface.


@pytest.mark.parametrize("name", ["wordpiece", "bpe", "char"])
def test_special_token_ids_follow_the_convention(name, request):
    tokenizer = request.getfixturevalue(name)
    assert isinstance(tokenizer, Tokenizer)
    assert tokenizer.pad_id == 0
    ids = [tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id]
    assert ids == [0, 1, 2, 3, 4]
    assert tokenizer.bos_id == tokenizer.cls_id and tokenizer.eos_id == tokenizer.sep_id
    assert tokenizer.special_ids == [0, 1, 2, 3, 4]
    assert tokenizer.vocabulary_size == len(tokenizer.vocabulary)
    for role, token in tokenizer.special_tokens.items():
        assert tokenizer.token_to_id(token) == getattr(tokenizer, f"{role}_id")


@pytest.mark.parametrize("name", ["wordpiece", "bpe", "char"])
def test_encode_adds_special_tokens_and_never_reads_them_from_text(name, request):
    tokenizer = request.getfixturevalue(name)
    plain = tokenizer.encode("the dog")
    wrapped = tokenizer.encode("the dog", add_special_tokens=True)
    assert wrapped == [tokenizer.cls_id] + plain + [tokenizer.sep_id]
    literal = tokenizer.encode(tokenizer.special_tokens["cls"])
    assert tokenizer.cls_id not in literal


@pytest.mark.parametrize("name", ["wordpiece", "bpe", "char"])
def test_empty_strings(name, request):
    tokenizer = request.getfixturevalue(name)
    assert tokenizer.encode("") == []
    assert tokenizer.encode("", add_special_tokens=True) == [tokenizer.cls_id, tokenizer.sep_id]
    assert tokenizer.encode(["", "the"])[0] == []
    assert tokenizer.encode([]) == []
    assert tokenizer.decode([]) == ""


@pytest.mark.parametrize("name", ["wordpiece", "bpe", "char"])
def test_truncation_keeps_special_tokens_and_respects_the_side(name, request):
    tokenizer = request.getfixturevalue(name)
    text = "the quick brown fox jumps over the lazy dog"
    full = tokenizer.encode(text)
    assert len(full) > 6
    right = tokenizer.encode(text, add_special_tokens=True, max_length=6)
    left = tokenizer.encode(text, add_special_tokens=True, max_length=6, truncation_side="left")
    assert right == [tokenizer.cls_id] + full[:4] + [tokenizer.sep_id]
    assert left == [tokenizer.cls_id] + full[-4:] + [tokenizer.sep_id]
    assert tokenizer.encode(text, max_length=3) == full[:3]
    assert tokenizer.encode("the", max_length=50) == tokenizer.encode("the")
    with pytest.raises(ValueError, match="max_length"):
        tokenizer.encode(text, add_special_tokens=True, max_length=1)
    with pytest.raises(ValueError, match="truncation_side"):
        tokenizer.encode(text, truncation_side="middle")


@pytest.mark.parametrize("name", ["wordpiece", "bpe", "char"])
def test_batch_encode_equals_single_encodes(name, request):
    tokenizer = request.getfixturevalue(name)
    texts = CORPUS[:5]
    assert tokenizer.encode(texts) == [tokenizer.encode(text) for text in texts]
    assert tokenizer.encode(np.array(texts)) == tokenizer.encode(texts)
    assert tokenizer.batch_decode(tokenizer.encode(texts)) == [
        tokenizer.decode(tokenizer.encode(t)) for t in texts
    ]


@pytest.mark.parametrize("name", ["wordpiece", "bpe", "char"])
def test_invalid_utf8_is_replaced_or_rejected(name, request):
    tokenizer = request.getfixturevalue(name)
    broken = b"the \xff\xfe dog"
    assert tokenizer.encode(broken) == tokenizer.encode("the \ufffd\ufffd dog")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        tokenizer.encode(broken, errors="strict")
    assert tokenizer.encode("a\udcffb") == tokenizer.encode("a\ufffdb")
    # Graph mode replaces the same way.
    graph_ids = tokenizer.tf_encode(tf.constant([broken])).to_list()[0]
    assert graph_ids == tokenizer.encode(broken)


@pytest.mark.parametrize("name", ["wordpiece", "bpe", "char"])
def test_save_and_load_give_the_same_tokenizer(name, request, tmp_path):
    tokenizer = request.getfixturevalue(name)
    directory = tokenizer.save(tmp_path / name)
    for loaded in (type(tokenizer).load(directory), load_tokenizer(directory), Tokenizer.load(directory)):
        assert type(loaded) is type(tokenizer)
        assert loaded.vocabulary == tokenizer.vocabulary
        assert loaded.get_config() == tokenizer.get_config()
        assert loaded.encode(CORPUS[:5], add_special_tokens=True) == tokenizer.encode(
            CORPUS[:5], add_special_tokens=True
        )
    other = {"wordpiece": CharTokenizer, "char": BPETokenizer, "bpe": WordPieceTokenizer}[name]
    with pytest.raises(ValueError, match="not a"):
        other.load(directory)


def test_load_reports_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no tokenizer files"):
        load_tokenizer(tmp_path)


@pytest.mark.parametrize("name", ["wordpiece", "bpe", "char"])
@pytest.mark.slow
def test_tf_encode_in_a_dataset_map_matches_encode(name, request):
    tokenizer = request.getfixturevalue(name)
    texts = CORPUS[:5]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(2)
    dataset = dataset.map(lambda batch: tokenizer.tf_encode(batch, add_special_tokens=True, max_length=9))
    graph_ids = [row for batch in dataset for row in batch.to_list()]
    assert graph_ids == tokenizer.encode(texts, add_special_tokens=True, max_length=9)
    for ragged in dataset.take(1):
        assert ragged.dtype == tf.int32
    scalar = tokenizer.tf_encode(tf.constant(texts[0]))
    assert scalar.shape.rank == 1 and scalar.numpy().tolist() == tokenizer.encode(texts[0])
    left = tokenizer.tf_encode(
        tf.constant(texts[:2]), add_special_tokens=True, max_length=5, truncation_side="left"
    )
    assert left.to_list() == tokenizer.encode(
        texts[:2], add_special_tokens=True, max_length=5, truncation_side="left"
    )


def test_bad_arguments_raise_clear_errors(char):
    with pytest.raises(ValueError, match="max_length"):
        char.encode("abc", max_length=0)
    with pytest.raises(ValueError, match="texts"):
        char.encode(3)
    with pytest.raises(ValueError, match=r"ids in \[0,"):
        char.decode([char.vocabulary_size])
    with pytest.raises(ValueError, match="vocabulary_size"):
        WordPieceTokenizer.train(CORPUS, vocabulary_size=3)
    with pytest.raises(ValueError, match="learner"):
        WordPieceTokenizer.train(CORPUS, vocabulary_size=100, learner="sentencepiece")
    with pytest.raises(ValueError, match="vocabulary_size"):
        BPETokenizer.train(CORPUS, vocabulary_size=100)


# --------------------------------------------------------------------------------------------------
# WordPiece.


def test_wordpiece_round_trip_up_to_bert_normalization(wordpiece):
    text = "The Café in ZÜRICH, résumé!"
    assert wordpiece.decode(wordpiece.encode(text)) == "the cafe in zurich , resume !"
    for text in CORPUS[:5]:
        expected = " ".join(_bert_words(text))
        assert wordpiece.decode(wordpiece.encode(text)) == expected


def _bert_words(text):
    """Reference normalization written independently: NFD, drop accents, lower-case, split off punctuation."""
    import unicodedata

    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn").lower()
    words = []
    for chunk in text.split():
        word = ""
        for character in chunk:
            if unicodedata.category(character).startswith("P") or character in "$%":
                if word:
                    words.append(word)
                words.append(character)
                word = ""
            else:
                word += character
        if word:
            words.append(word)
    return words


def test_wordpiece_unknown_characters_become_unk(wordpiece):
    ids = wordpiece.encode("dog 中 ☃")
    assert ids[1:] == [wordpiece.unk_id, wordpiece.unk_id]
    assert wordpiece.decode(ids) == "dog [UNK] [UNK]"
    assert wordpiece.encode("a" * 150) == [wordpiece.unk_id]  # longer than max_bytes_per_word


def test_wordpiece_splits_unseen_words_into_known_pieces(wordpiece):
    assert "foxes" not in " ".join(CORPUS)
    ids = wordpiece.encode("foxes")
    tokens = [wordpiece.id_to_token(i) for i in ids]
    assert len(tokens) > 1 and all(t.startswith("##") for t in tokens[1:])
    assert wordpiece.unk_id not in ids
    assert wordpiece.decode(ids) == "foxes"


def test_wordpiece_cased_option_keeps_case():
    cased = WordPieceTokenizer.train(CORPUS, vocabulary_size=300, lower_case=False, min_frequency=1)
    assert cased.decode(cased.encode("The quick fox")) == "The quick fox"
    assert cased.encode("The") != cased.encode("the")
    nfkc = WordPieceTokenizer.train(
        CORPUS, vocabulary_size=300, lower_case=False, unicode_normalization="NFKC"
    )
    assert nfkc.decode(nfkc.encode("ﬁve")) == nfkc.decode(nfkc.encode("five"))


def test_wordpiece_loads_a_plain_bert_vocab_file(tmp_path):
    vocab = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "dog", "##s", ",", "."]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = WordPieceTokenizer.load(tmp_path / "vocab.txt")
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == (
        0,
        2,
        3,
        4,
        5,
    )
    assert tokenizer.encode("The dogs, cat.", add_special_tokens=True) == [3, 6, 7, 8, 9, 2, 10, 4]


def test_wordpiece_vocabulary_must_put_padding_first():
    with pytest.raises(ValueError, match="id 0"):
        WordPieceTokenizer(["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "a"])
    with pytest.raises(ValueError, match="not in `vocabulary`"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "a"])


def test_tensorflow_text_learner_produces_a_usable_vocabulary():
    tokenizer = WordPieceTokenizer.train(CORPUS[:5], vocabulary_size=200, learner="tensorflow_text")
    assert tokenizer.vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert tokenizer.decode(tokenizer.encode("The quick brown fox.")) == "the quick brown fox ."


# --------------------------------------------------------------------------------------------------
# BPE.


def test_bpe_round_trip_is_exact_for_any_text(bpe):
    for text in CORPUS[:5] + ["  leading and trailing  ", "emoji 🙂 and 中文 and \x00 control\n\ttabs", "ß"]:
        assert bpe.decode(bpe.encode(text)) == text
    # Bytes never seen in training still encode (byte-level alphabet): no unknown token.
    assert bpe.unk_id not in bpe.encode("☃ Ω")


def test_bpe_compresses_frequent_words(bpe):
    assert len(bpe.encode("the quick brown fox")) < len("the quick brown fox")


def test_bpe_works_as_a_transformers_tokenizer(bpe):
    fast = bpe.to_transformers()
    text = CORPUS[1]
    assert fast(text)["input_ids"] == bpe.encode(text, add_special_tokens=True)
    assert fast.pad_token_id == bpe.pad_id and fast.mask_token_id == bpe.mask_id
    assert fast.decode(bpe.encode(text)) == text


def test_bpe_loads_a_foreign_gpt2_style_tokenizer_json(tmp_path):
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    foreign = HFTokenizer(models.BPE())
    foreign.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    foreign.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    foreign.train_from_iterator(CORPUS, trainer=trainer)
    foreign.save(str(tmp_path / "tokenizer.json"))
    tokenizer = BPETokenizer.load(tmp_path / "tokenizer.json")
    end_of_text = foreign.token_to_id("<|endoftext|>")
    assert tokenizer.bos_id == tokenizer.eos_id == end_of_text
    assert tokenizer.pad_id == 0 and tokenizer.mask_id is None
    assert tokenizer.decode(tokenizer.encode(CORPUS[3])) == CORPUS[3]
    assert tokenizer.encode("a", add_special_tokens=True)[0] == end_of_text
    explicit = BPETokenizer.load(tmp_path / "tokenizer.json", special_tokens={"sep": "<|endoftext|>"})
    assert explicit.cls_id is None and explicit.encode("a", add_special_tokens=True)[-1] == end_of_text


def test_bpe_rejects_a_broken_tokenizer_json(tmp_path):
    (tmp_path / "tokenizer.json").write_text(json.dumps({"not": "a tokenizer"}))
    with pytest.raises(ValueError, match="not a valid tokenizer.json"):
        BPETokenizer.load(tmp_path / "tokenizer.json")


# --------------------------------------------------------------------------------------------------
# Characters.


def test_char_nanogpt_vocabulary_is_the_sorted_characters():
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    tokenizer = CharTokenizer.train(text, special_tokens=False)
    characters = sorted(set(text))
    assert tokenizer.vocabulary == characters
    assert tokenizer.encode(text) == [characters.index(c) for c in text]
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.pad_id == 0 and tokenizer.vocabulary[0] == "\n"  # the documented relaxation
    assert tokenizer.unk_id is None and tokenizer.cls_id is None and tokenizer.mask_id is None
    with pytest.raises(ValueError, match="'Z'"):
        tokenizer.encode("Zebra")
    with pytest.raises(ValueError, match="add_special_tokens"):
        tokenizer.encode("hear", add_special_tokens=True)
    with pytest.raises(tf.errors.InvalidArgumentError):
        tokenizer.tf_encode(tf.constant(["Zebra"]))


def test_char_unknown_characters_map_to_unk_and_decode_as_replacement(char):
    ids = char.encode("dog☃")
    assert ids[-1] == char.unk_id
    assert char.decode(ids) == "dog\ufffd"
    assert char.decode(ids, skip_special_tokens=False) == "dog[UNK]"
    assert char.decode([char.cls_id, *char.encode("ab"), char.sep_id, char.pad_id]) == "ab"


def test_char_round_trip_and_multibyte_characters(char):
    for text in CORPUS[:5]:
        assert char.decode(char.encode(text)) == text
    assert len(char.encode("café")) == 4  # one id per code point, not per byte
    assert char.tf_encode(tf.constant(["café"])).to_list() == [char.encode("café")]


def test_char_vocabulary_size_keeps_the_most_frequent_characters():
    tokenizer = CharTokenizer.train(["aaaa bbb cc d"], vocabulary_size=5 + 3)
    assert tokenizer.characters == [" ", "a", "b"]
    assert tokenizer.encode("cab") == [
        tokenizer.unk_id,
        tokenizer.token_to_id("a"),
        tokenizer.token_to_id("b"),
    ]
    with pytest.raises(ValueError, match="vocabulary_size"):
        CharTokenizer.train(["aaaa bbb cc d"], vocabulary_size=3, special_tokens=False)
    with pytest.raises(ValueError, match="single characters"):
        CharTokenizer(["ab"])
    with pytest.raises(ValueError, match="unique"):
        CharTokenizer(["a", "a"])
