"""llm_tf: Transformer language models (BERT- and GPT-style) in Keras 3 on TensorFlow.

Subpackages (import the one you need; importing ``llm_tf`` itself stays cheap):

- ``llm_tf.layers``: the building blocks (embeddings, attention, feed-forward, encoder/decoder blocks).
- ``llm_tf.models``: encoder, classifier, masked LM, GPT with cached generation, encoder–decoder.
- ``llm_tf.text``: tokenizers and ``tf.data`` pipelines.
- ``llm_tf.datasets``: loaders for the real datasets and for a user's own folders and CSV files.
- ``llm_tf.training``: strategies, optimizers and schedules, callbacks, run directories, resume.
- ``llm_tf.metrics``: BLEU/chrF, ROUGE, classification metrics, perplexity.
- ``llm_tf.interop``: Hugging Face checkpoints in and out.
"""

__version__ = "0.1.0"
