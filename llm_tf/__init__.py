"""llm_tf: Transformer language models (BERT- and GPT-style) in Keras 3 on TensorFlow.

Subpackages (import the one you need; importing ``llm_tf`` itself stays cheap):

- ``llm_tf.layers``: the building blocks (embeddings, attention, feed-forward, encoder/decoder blocks).
- ``llm_tf.models``: encoder, classifier, masked LM, GPT with cached generation, encoder–decoder.
- ``llm_tf.text``: tokenizers and ``tf.data`` pipelines.
- ``llm_tf.datasets``: loaders for the real datasets and for a user's own folders and CSV files.
- ``llm_tf.training``: strategies, optimizers and schedules, callbacks, run directories, resume.
- ``llm_tf.metrics``: BLEU/chrF, ROUGE, classification metrics, perplexity.
- ``llm_tf.interop``: Hugging Face checkpoints in and out.

Importing ``llm_tf`` reads ``/proc/cpuinfo`` and, on CPUs with ``avx512_bf16``, asks XLA:CPU for 512-bit vectors
in its own loops (``XLA_FLAGS``; see ``llm_tf.runtime``; ``LLM_TF_WIDE_XLA_VECTORS=0`` opts out).
"""

from llm_tf import runtime as _runtime

__version__ = "0.1.0"

_runtime.use_wide_xla_vectors()
