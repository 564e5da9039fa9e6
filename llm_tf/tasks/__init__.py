"""The task layer: what an experiment does, as library functions a user can import and call.

Between the building blocks (``llm_tf.datasets``, ``llm_tf.text``, ``llm_tf.models``, ``llm_tf.training``,
``llm_tf.metrics``) and the thin scripts in ``experiments/``, each module here holds one task's steps with
plain arguments (never an ``argparse.Namespace``), so that a second dataset of the same task needs no new code:

- :mod:`llm_tf.tasks.cli`: the experiment command line: common flags, presets + overrides, seeds, tables
  (the only module that touches ``argparse``);
- :mod:`llm_tf.tasks.runs`: a run directory with one sub-directory per seed or cross-validation fold, resume
  of an interrupted run, and mean ± std / 95% t-interval summaries;
- :mod:`llm_tf.tasks.windows`: fixed-length model windows over long encoded documents (first, head + tail,
  random, covering) and window-averaged prediction;
- :mod:`llm_tf.tasks.classification`: text classification: encode a split, token-mask augmentation, train and
  evaluate one seed, predict class probabilities;
- :mod:`llm_tf.tasks.baselines`: the TF-IDF + LinearSVC baseline;
- :mod:`llm_tf.tasks.probing`: linear probes of a (pretrained) encoder's frozen layers against the same
  architecture at a random init;
- :mod:`llm_tf.tasks.comparison`: finished classification runs side by side (pretrained vs scratch, paired by
  seed, with 95% intervals);
- :mod:`llm_tf.tasks.language_modeling`, :mod:`llm_tf.tasks.pretraining`, :mod:`llm_tf.tasks.seq2seq`,
  :mod:`llm_tf.tasks.summarization` (extractive), :mod:`llm_tf.tasks.abstractive` (encoder–decoder
  summaries over the seq2seq pieces): the other tasks' pieces.

Submodules are imported on use (``from llm_tf.tasks import classification``): importing the package itself
loads nothing; TensorFlow and scikit-learn are imported by the functions that need them.
"""
