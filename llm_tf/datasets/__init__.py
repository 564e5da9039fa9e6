"""Dataset loaders: the project's real datasets and a user's own folders and CSV files.

Every loader reads from its `data_dir` argument, else `$LLM_TF_DATA_DIR`, else `~/.cache/llm_tf/datasets`
(layout as in the project's shared/data, e.g. `<data_dir>/bbc_news/bbc/<class>/NNN.txt`). Missing files are
downloaded from the dataset's public source with `keras.utils.get_file` and verified (sha256 per file, or a
digest of an archive's files); offline (or `download=False`, or `LLM_TF_OFFLINE=1`) a `FileNotFoundError`
names the expected files and the variable to set. Importing this package does not import TensorFlow.

| loader | returns |
|---|---|
| `load_bbc_news` | `ClassificationSplits` train/validation/test (stratified 80/10/10, seed 42), 5 topics |
| `load_bbc_news_summary` | `PairSplits` of (article, summary), the same split by file |
| `load_sst2` | `ClassificationSplits` train / validation (GLUE dev) |
| `load_sst2_splits` | SST-2 as the sentiment job splits it: test = GLUE dev, validation carved from train |
| `load_tiny_shakespeare` | `TextSplits(train, validation)` strings, 90/10 by position |
| `load_multi30k` | `PairSplits` en->de (or de->en) train / validation / test (test2016) |
| `load_samsum` | `PairSplits` dialogue->summary validation / test |
| `load_gutenberg` | `GutenbergCorpus` of cleaned `Book`s, split by book |
| `load_text_folder` | `LabeledTexts` from `<path>/<label>/<file>` (any file name; call `.split(...)`) |
| `load_csv` | `LabeledTexts` from chosen text column(s) / label column of a CSV or TSV |
| `load_classification_splits` | `ClassificationSplits` from a dataset's own train/validation/test folders or CSVs |
"""

from llm_tf.datasets._files import DATA_DIR_ENV, resolve_data_dir
from llm_tf.datasets.bbc import BBC_CLASS_NAMES, fix_sentence_spacing, load_bbc_news, load_bbc_news_summary
from llm_tf.datasets.generic import (
    column_index,
    cross_validation_folds,
    load_classification_splits,
    load_csv,
    load_labeled,
    load_text_folder,
    read_texts,
    sort_class_names,
    stratified_folds,
    stratified_subset,
)
from llm_tf.datasets.gutenberg import Book, GutenbergCorpus, load_gutenberg, strip_gutenberg_boilerplate
from llm_tf.datasets.multi30k import load_multi30k
from llm_tf.datasets.samsum import load_samsum
from llm_tf.datasets.sst2 import SST2_CLASS_NAMES, load_sst2, load_sst2_splits
from llm_tf.datasets.tiny_shakespeare import load_tiny_shakespeare
from llm_tf.datasets.types import (
    ClassificationSplits,
    LabeledTexts,
    PairSplits,
    TextPairs,
    TextSplits,
    stratified_split_indices,
)

__all__ = [
    "BBC_CLASS_NAMES",
    "Book",
    "ClassificationSplits",
    "DATA_DIR_ENV",
    "GutenbergCorpus",
    "LabeledTexts",
    "PairSplits",
    "SST2_CLASS_NAMES",
    "TextPairs",
    "TextSplits",
    "fix_sentence_spacing",
    "column_index",
    "cross_validation_folds",
    "load_bbc_news",
    "load_bbc_news_summary",
    "load_classification_splits",
    "load_csv",
    "load_gutenberg",
    "load_labeled",
    "load_multi30k",
    "load_samsum",
    "load_sst2",
    "load_sst2_splits",
    "load_text_folder",
    "load_tiny_shakespeare",
    "read_texts",
    "resolve_data_dir",
    "sort_class_names",
    "stratified_folds",
    "stratified_split_indices",
    "stratified_subset",
    "strip_gutenberg_boilerplate",
]
