"""Writes the notebooks in ``notebooks/`` from the cell lists below (run: python notebooks/src/build_notebooks.py).

Keeping the source as plain Python makes the notebooks reviewable in diffs; the test suite executes the
written ``.ipynb`` files top to bottom with a real kernel.
"""

import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parent.parent

ATTENTION_FROM_SCRATCH = [
    new_markdown_cell(
        "# Attention from scratch\n\n"
        "This notebook walks through the equations of the Transformer on one short sentence and checks each "
        "step against the `llm_tf.layers` that implement it:\n\n"
        "1. embedding: $X = W_{embed} \\cdot X_{input} + P$\n"
        "2. projections: $Q = X W_Q$, $K = X W_K$, $V = X W_V$ (one set per head)\n"
        "3. scaled dot-product attention: $\\mathrm{Attention}(Q, K, V) = "
        "\\mathrm{softmax}\\left(\\frac{Q K^\\top}{\\sqrt{d_k}}\\right) V$\n"
        "4. multi-head: $\\mathrm{MultiHead} = \\mathrm{Concat}(head_1, \\dots, head_h)\\, W_O$\n"
        "5. position-wise feed-forward: $\\mathrm{FFN}(H) = W_O \\cdot \\mathrm{ReLU}(W_F H + b_F) + b_O$\n"
        "6. the encoder block: $\\mathrm{LayerNorm}(x + \\mathrm{sublayer}(x))$ around both.\n\n"
        "Every check is an `assert`: if the layers and the equations ever disagree, this notebook fails "
        "(the test suite runs it)."
    ),
    new_code_cell(
        "import os\n"
        "os.environ.setdefault('KERAS_BACKEND', 'tensorflow')\n"
        "os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')\n"
        "import keras\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "from llm_tf.layers import FeedForward, MultiHeadAttention, TokenAndPositionEmbedding, "
        "TransformerEncoderBlock\n"
        "keras.utils.set_random_seed(42)"
    ),
    new_markdown_cell(
        "## 1. Tokens and embeddings\n"
        "A toy word-level vocabulary is enough here; `llm_tf.text` has the real tokenizers. Id 0 is padding."
    ),
    new_code_cell(
        "sentence = 'the markets rallied after the election result'\n"
        "words = sentence.split()\n"
        "vocabulary = ['[PAD]'] + sorted(set(words))\n"
        "token_ids = np.array([[vocabulary.index(w) for w in words]], dtype='int32')\n"
        "print(dict(zip(words, token_ids[0].tolist())))\n"
        "\n"
        "embedding_dim, num_heads = 16, 4\n"
        "head_dim = embedding_dim // num_heads\n"
        "embedding = TokenAndPositionEmbedding(len(vocabulary), max_sequence_length=32, embedding_dim=embedding_dim)\n"
        "X = np.asarray(embedding(token_ids))\n"
        "W_embed = np.asarray(embedding.token_embeddings)\n"
        "P = np.asarray(embedding.position_embeddings)\n"
        "X_by_hand = W_embed[token_ids[0]] + P[: len(words)]\n"
        "assert np.allclose(X[0], X_by_hand, atol=1e-6)\n"
        "X.shape"
    ),
    new_markdown_cell(
        "## 2–4. Multi-head attention, step by step\n"
        "The layer stores $W_Q, W_K, W_V$ with shape `(features, heads, head_dim)`, i.e. one "
        "`(features, head_dim)` matrix per head, and $W_O$ with shape `(heads, head_dim, features)`."
    ),
    new_code_cell(
        "mha = MultiHeadAttention(num_heads=num_heads, key_dim=head_dim)\n"
        "layer_output, layer_weights = mha(X, return_attention_scores=True)\n"
        "W_Q, b_Q = (np.asarray(w) for w in mha.query_dense.weights)\n"
        "W_K, b_K = (np.asarray(w) for w in mha.key_dense.weights)\n"
        "W_V, b_V = (np.asarray(w) for w in mha.value_dense.weights)\n"
        "W_O, b_O = (np.asarray(w) for w in mha.output_dense.weights)\n"
        "x = X[0]                                       # (sequence, features)\n"
        "Q = np.einsum('tf,fhd->htd', x, W_Q) + b_Q[:, None, :]  # (heads, sequence, head_dim)\n"
        "K = np.einsum('tf,fhd->htd', x, W_K) + b_K[:, None, :]\n"
        "V = np.einsum('tf,fhd->htd', x, W_V) + b_V[:, None, :]\n"
        "scores = Q @ K.transpose(0, 2, 1) / np.sqrt(head_dim)  # (heads, query, key)\n"
        "weights = np.exp(scores - scores.max(-1, keepdims=True))\n"
        "weights /= weights.sum(-1, keepdims=True)            # softmax over the keys\n"
        "heads = weights @ V                                   # (heads, sequence, head_dim)\n"
        "concat = heads.transpose(1, 0, 2).reshape(len(words), -1)      # Concat(head_1..head_h)\n"
        "by_hand = concat @ W_O.reshape(-1, embedding_dim) + b_O        # · W_O\n"
        "print('max |layer - equations| =', np.abs(np.asarray(layer_output)[0] - by_hand).max())\n"
        "assert np.allclose(np.asarray(layer_weights)[0], weights, atol=1e-6)\n"
        "assert np.allclose(np.asarray(layer_output)[0], by_hand, atol=1e-5)\n"
        "assert np.allclose(weights.sum(-1), 1.0)"
    ),
    new_markdown_cell("### The attention weights of each head"),
    new_code_cell(
        "fig, axes = plt.subplots(1, num_heads, figsize=(4 * num_heads, 4))\n"
        "for h, ax in enumerate(axes):\n"
        "    ax.imshow(weights[h], cmap='viridis', vmin=0, vmax=1)\n"
        "    ax.set_title(f'head {h}')\n"
        "    ax.set_xticks(range(len(words)), words, rotation=90)\n"
        "    ax.set_yticks(range(len(words)), words)\n"
        "fig.suptitle('softmax(QKᵀ/√d_k) per head (random weights)')\n"
        "fig.tight_layout()\n"
        "assert len(fig.axes) == num_heads\n"
        "plt.show()"
    ),
    new_markdown_cell(
        "### Causal (GPT-style) attention\n"
        "With the causal mask, word $t$ only attends to words $\\le t$: the upper triangle of every head is zero."
    ),
    new_code_cell(
        "_, causal_weights = mha(X, use_causal_mask=True, return_attention_scores=True)\n"
        "causal_weights = np.asarray(causal_weights)[0]\n"
        "assert np.all(np.triu(causal_weights, k=1) == 0)\n"
        "np.round(causal_weights[0], 2)"
    ),
    new_markdown_cell("## 5. The position-wise feed-forward network"),
    new_code_cell(
        "ffn = FeedForward(intermediate_dim=4 * embedding_dim, activation='relu')\n"
        "H = np.asarray(layer_output)\n"
        "ffn_output = np.asarray(ffn(H))\n"
        "W_F, b_F = (np.asarray(w) for w in ffn.intermediate_dense.weights)\n"
        "W_2, b_2 = (np.asarray(w) for w in ffn.output_dense.weights)\n"
        "by_hand = np.maximum(H @ W_F + b_F, 0) @ W_2 + b_2\n"
        "assert np.allclose(ffn_output, by_hand, atol=1e-5)\n"
        "ffn_output.shape"
    ),
    new_markdown_cell(
        "## 6. One encoder block (post-norm, as in BERT and the original Transformer)\n"
        "$H' = \\mathrm{LN}(X + \\mathrm{MultiHead}(X))$, $Y = \\mathrm{LN}(H' + \\mathrm{FFN}(H'))$."
    ),
    new_code_cell(
        "block = TransformerEncoderBlock(num_heads=num_heads, intermediate_dim=4 * embedding_dim)\n"
        "Y = np.asarray(block(X))\n"
        "H1 = block.self_attention_norm(X + block.self_attention(X))\n"
        "Y_by_hand = np.asarray(block.feed_forward_norm(H1 + block.feed_forward(H1)))\n"
        "assert np.allclose(Y, Y_by_hand, atol=1e-5)\n"
        "print('encoder block output', Y.shape, '— every step matched the equations')"
    ),
]


TRANSLATION = [
    new_markdown_cell(
        "# Translation with an encoder–decoder (Multi30k, English → German)\n\n"
        "A tiny `Seq2SeqTransformer` trained for a minute on a slice of Multi30k with the pieces of "
        "`llm_tf.tasks.seq2seq` (the ones `experiments/translation.py` uses at full size): a joint BPE vocabulary, "
        "token-count batches by length bucket, label smoothing, then greedy vs beam-search decoding, sacreBLEU, "
        "and the cross-attention of the last decoder layer. At this size the translations are poor; the point "
        "is the pipeline (the full run's figures are in the README)."
    ),
    new_code_cell(
        "import os\n"
        "os.environ.setdefault('KERAS_BACKEND', 'tensorflow')\n"
        "os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')\n"
        "import keras\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import numpy as np\n"
        "from llm_tf.datasets.multi30k import load_multi30k\n"
        "from llm_tf.plots import plot_attention_heatmaps\n"
        "from llm_tf.tasks import seq2seq as s2s\n"
        "from llm_tf.tasks.cli import default_data_dir\n"
        "keras.utils.set_random_seed(0)\n"
        "pairs = load_multi30k(default_data_dir(None))\n"
        "sources, targets = pairs.train.sources[:3000], pairs.train.targets[:3000]\n"
        "print(len(pairs.train.sources), 'training pairs; using', len(sources))\n"
        "print(sources[0], '->', targets[0])"
    ),
    new_markdown_cell(
        "## 1. One vocabulary for both languages, batches by token count\n"
        "Each batch holds at most `max_tokens` padded tokens per side: short sentences travel in big batches, "
        "long ones in small batches, and nobody is padded to the longest sentence of the corpus."
    ),
    new_code_cell(
        "tokenizer = s2s.train_joint_tokenizer(sources, targets, vocabulary_size=1000)\n"
        "source_ids, target_ids = s2s.encode_pairs(tokenizer, sources, targets, 48, 48)\n"
        "batches = s2s.token_batches([len(s) for s in source_ids], [len(t) for t in target_ids], max_tokens=1024,\n"
        "                            bucket_width=4)\n"
        "assert all(len(indices) * length <= 1024 for indices, length in batches)\n"
        "assert sorted(np.concatenate([i for i, _ in batches]).tolist()) == list(range(len(sources)))\n"
        "print(len(batches), 'batches; sizes', sorted({len(i) for i, _ in batches})[:5], '...')\n"
        "padded = s2s.pad_batches(source_ids, target_ids, batches, tokenizer.bos_id, tokenizer.eos_id)\n"
        "train_data = s2s.epoch_batches_fn(padded, seed=0)"
    ),
    new_markdown_cell("## 2. Train a tiny translator (pre-norm, tied embeddings, label smoothing 0.1)"),
    new_code_cell(
        "model = s2s.build_translation_model(tokenizer.vocabulary_size, 48, hidden_dim=64, num_layers=2,\n"
        "                                    num_heads=4, intermediate_dim=128, dropout=0.1)\n"
        "s2s.compile_translation_model(model, warmup_steps=50, learning_rate_scale=1.0)\n"
        "losses = []\n"
        "for epoch in range(3):\n"
        "    history = model.fit(train_data(epoch), epochs=1, verbose=0)\n"
        "    losses.append(history.history['loss'][0])\n"
        "print('training loss per epoch:', [round(x, 3) for x in losses])"
    ),
    new_markdown_cell(
        "## 3. Greedy vs beam search on test sentences, scored with sacreBLEU\n"
        "Beam search keeps 4 hypotheses per sentence ranked by `log P / lp(len)` (GNMT length penalty)."
    ),
    new_code_cell(
        "test_sources, test_references = pairs.test.sources[:20], pairs.test.targets[:20]\n"
        "greedy, greedy_s = s2s.translate(model, tokenizer, test_sources, batch_size=20, max_new_tokens=40)\n"
        "beam, beam_s = s2s.translate(model, tokenizer, test_sources, num_beams=4, length_penalty=0.6,\n"
        "                             batch_size=20, max_new_tokens=40)\n"
        "for i in range(3):\n"
        "    print(f'source:    {test_sources[i]}\\nreference: {test_references[i]}\\ngreedy:    {greedy[i]}\\n'\n"
        "          f'beam:      {beam[i]}\\n')\n"
        "greedy_scores = s2s.score_translations(greedy, test_references)\n"
        "beam_scores = s2s.score_translations(beam, test_references)\n"
        "perfect = s2s.score_translations(test_references, test_references)\n"
        "print('greedy BLEU', round(greedy_scores['bleu'], 2), ' beam BLEU', round(beam_scores['bleu'], 2),\n"
        "      ' reference vs itself', perfect['bleu'], '|', perfect['bleu_signature'])"
    ),
    new_markdown_cell("## 4. Where the decoder looks: cross-attention of the last decoder layer"),
    new_code_cell(
        "source = tokenizer.encode(test_sources[0])\n"
        "output = tokenizer.encode(beam[0])[:47]\n"
        "weights = s2s.cross_attention_weights(model, source, output)\n"
        "png = plot_attention_heatmaps(weights, [tokenizer.id_to_token(t) for t in source], 'cross_attention.png',\n"
        "                              query_tokens=['<s>'] + [tokenizer.id_to_token(t) for t in output])\n"
        "print(weights.shape, png)"
    ),
    new_code_cell(
        "# What this notebook computed, checked.\n"
        "assert losses[-1] < losses[0], losses  # training lowered the loss\n"
        "assert len(greedy) == len(beam) == len(test_sources) and all(isinstance(t, str) for t in greedy + beam)\n"
        "assert abs(perfect['bleu'] - 100.0) < 1e-6 and 'case:mixed' in perfect['bleu_signature']\n"
        "assert weights.shape == (4, len(output) + 1, len(source))\n"
        "assert np.allclose(weights.sum(axis=-1), 1.0, atol=1e-5)  # each query attends with total weight 1\n"
        "assert os.path.getsize(png) > 0"
    ),
]

TEXT_GENERATION = [
    new_markdown_cell(
        "# Text generation: writing a news article from a topic and a headline\n\n"
        "A tiny GPT trained for a minute on BBC News articles written as `topic: <topic>\\ntitle: <headline>\\n\\n"
        "<body>` (the format `experiments/news_writing.py` fine-tunes a book-pretrained GPT on), then:\n\n"
        "1. the decoding rules side by side on the same prompt (greedy, top-k, top-p, temperature, beam search);\n"
        "2. the probability distribution of the next token, $P(x_{t+1} \\mid x_{\\le t}) = \\mathrm{softmax}(h_t W_E^\\top)$ "
        "(tied embeddings), as a bar plot;\n"
        "3. where the last token looks: the last block's causal self-attention over the prompt.\n\n"
        "At this size the text is poor; the point is the machinery (the full run's figures are in the README)."
    ),
    new_code_cell(
        "import os\n"
        "os.environ.setdefault('KERAS_BACKEND', 'tensorflow')\n"
        "os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')\n"
        "import keras\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "from llm_tf.datasets import load_bbc_news\n"
        "from llm_tf.plots import plot_attention_heatmaps\n"
        "from llm_tf.tasks import language_modeling as lm\n"
        "from llm_tf.tasks import news_writing as nw\n"
        "from llm_tf.tasks.cli import default_data_dir\n"
        "from llm_tf.text import BPETokenizer\n"
        "keras.utils.set_random_seed(0)\n"
        "articles = nw.bbc_articles(load_bbc_news(default_data_dir(None)).train)[:400]\n"
        "print(len(articles), 'training articles; the first, formatted:')\n"
        "print(nw.format_article(*articles[0])[:300])"
    ),
    new_markdown_cell(
        "## 1. A byte-level BPE vocabulary and a tiny GPT\n"
        "Documents are packed one after another with an end-of-text token between them; training windows of 64 "
        "tokens are drawn at random offsets (nanoGPT's `get_batch`)."
    ),
    new_code_cell(
        "tokenizer = BPETokenizer.train([nw.format_article(*a) for a in articles], vocabulary_size=1500)\n"
        "documents = nw.encode_documents(tokenizer, articles)\n"
        "config = lm.CausalLMConfig(block_size=64, batch_size=16, hidden_dim=64, num_layers=2, num_heads=4,\n"
        "                           intermediate_dim=256, tie_embeddings=True, max_iters=300, eval_interval=100,\n"
        "                           warmup_iters=20, learning_rate=3e-3, min_learning_rate=3e-4,\n"
        "                           steps_per_execution=50)\n"
        "model = lm.build_causal_lm(config, tokenizer.vocabulary_size)\n"
        "windows = lm.LMWindowSampler(documents, config.block_size, separator_id=tokenizer.eos_id)\n"
        "batches = windows.epoch_batches(config.batch_size, config.eval_interval, seed=0)\n"
        "losses = [model.fit(batches(epoch), epochs=1, verbose=0).history['loss'][0] for epoch in range(3)]\n"
        "print('training loss per 100 steps:', [round(x, 3) for x in losses])"
    ),
    new_markdown_cell(
        "## 2. Decoding rules side by side\n"
        "Greedy and beam search pick the most likely continuation and tend to repeat themselves; the samplers draw "
        "from (a truncated) distribution: top-k keeps the k most likely tokens, top-p the smallest set with "
        "probability mass p, temperature sharpens or flattens it."
    ),
    new_code_cell(
        "prompt = nw.format_prompt('sport', 'England win the cup at Twickenham')\n"
        "outputs = {}\n"
        "for name, settings in nw.SAMPLERS.items():\n"
        "    bodies, _ = nw.generate_articles(model, tokenizer, [prompt], 30, settings, batch_size=1, seed=7)\n"
        "    outputs[name] = bodies[0]\n"
        "    print(f'{name:>16}: {bodies[0]!r}')\n"
        "for name, body in outputs.items():\n"
        "    print(f'{name:>16}: distinct-2 {nw.distinct_n([body]):.2f}, repeated 4-grams '\n"
        "          f'{nw.repeated_ngram_rate([body]):.2f}')"
    ),
    new_markdown_cell("## 3. The distribution of the next token after the prompt"),
    new_code_cell(
        "prompt_ids = tokenizer.encode(prompt)\n"
        "logits = keras.ops.convert_to_numpy(model({'token_ids': np.array([prompt_ids])}, training=False))[0, -1]\n"
        "probabilities = np.exp(logits - logits.max())\n"
        "probabilities /= probabilities.sum()\n"
        "top = np.argsort(probabilities)[::-1][:15]\n"
        "labels = [repr(tokenizer.decode([int(t)], skip_special_tokens=False)) for t in top]\n"
        "figure, axis = plt.subplots(figsize=(9, 3))\n"
        "axis.bar(range(len(top)), probabilities[top])\n"
        "axis.set_xticks(range(len(top)), labels, rotation=60)\n"
        "axis.set(ylabel='probability', title='next token after the prompt (top 15)')\n"
        "figure.tight_layout()\n"
        "figure.savefig('next_token.png')\n"
        "greedy_first = tokenizer.encode(outputs['greedy'])[:1]\n"
        "print('most likely next tokens:', labels[:5], ' top-15 mass', round(float(probabilities[top].sum()), 3))"
    ),
    new_markdown_cell(
        "## 4. Where the last token looks\n"
        "The last block's causal self-attention of the prompt's last position over every prompt token, per head "
        "(each row sums to 1)."
    ),
    new_code_cell(
        "weights = lm.self_attention_weights(model, prompt_ids)\n"
        "tokens = [tokenizer.decode([t], skip_special_tokens=False) for t in prompt_ids]\n"
        "png = plot_attention_heatmaps(weights[:, -1:, :], tokens, 'last_token_attention.png',\n"
        "                              query_tokens=[tokens[-1]], figsize=(12, 4))\n"
        "print(weights.shape, 'most attended by head:', [tokens[int(i)] for i in weights[:, -1].argmax(axis=-1)])"
    ),
    new_code_cell(
        "# What this notebook computed, checked.\n"
        "assert losses[-1] < losses[0], losses  # training lowered the loss\n"
        "assert set(outputs) == set(nw.SAMPLERS) and all(isinstance(text, str) for text in outputs.values())\n"
        "assert abs(probabilities.sum() - 1) < 1e-5 and probabilities.min() >= 0\n"
        "# Greedy decoding starts with the most likely next token (when it did not stop at once).\n"
        "greedy_ids = model.generate([prompt_ids], max_new_tokens=1, sampler='greedy')[0, -1:]\n"
        "assert int(greedy_ids[0]) == int(top[0])\n"
        "assert weights.shape == (4, len(prompt_ids), len(prompt_ids))\n"
        "assert np.allclose(weights.sum(axis=-1), 1.0, atol=1e-5)  # every query spreads total weight 1\n"
        "assert np.allclose(np.triu(weights, k=1), 0.0)  # causal: no weight on later tokens\n"
        "assert os.path.getsize(png) > 0 and os.path.getsize('next_token.png') > 0"
    ),
]

SUMMARIZATION = [
    new_markdown_cell(
        "# Extractive summarization of BBC news\n\n"
        "BBC News Summary's reference summaries are sentences copied from the article, so a summarizer can "
        "*select* sentences: split the article into sentences, score each one, keep the best ones up to a length "
        "budget in article order, and compare with the reference by ROUGE. This notebook does it at smoke size "
        "with `llm_tf.tasks.summarization` (the full run is `python experiments/summarization.py`):\n\n"
        "1. sentences and oracle labels (which article sentences make up the reference);\n"
        "2. a small `SentenceScorer` (a `TransformerEncoder` over each sentence + hand features + Transformer "
        "blocks across the sentences) trained for two epochs on 120 training articles;\n"
        "3. one article's sentence scores as a bar plot, its chosen summary beside the reference;\n"
        "4. ROUGE-1/2/L on 20 test articles next to Lead-3."
    ),
    new_code_cell(
        "import os\n"
        "os.environ.setdefault('KERAS_BACKEND', 'tensorflow')\n"
        "os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')\n"
        "import keras\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "from llm_tf.datasets import load_bbc_news_summary\n"
        "from llm_tf.tasks import summarization as S\n"
        "from llm_tf.tasks.cli import default_data_dir\n"
        "keras.utils.set_random_seed(0)\n"
        "data = load_bbc_news_summary(default_data_dir(None))\n"
        "train_pairs, test_pairs = data.train.subset(range(120)), data.test.subset(range(20))\n"
        "train = S.prepare_documents(train_pairs.sources, train_pairs.targets, train_pairs.ids)\n"
        "test = S.prepare_documents(test_pairs.sources, test_pairs.targets, test_pairs.ids)\n"
        "document = test[0]\n"
        "print(document.identifier, len(document.sentences), 'sentences;', int(document.labels.sum()), 'in the reference')"
    ),
    new_markdown_cell("## 1. Train a small sentence scorer on the oracle labels"),
    new_code_cell(
        "vocabulary = S.build_vocabulary(train, max_size=4000)\n"
        "config = S.ScorerConfig(vocabulary_size=len(vocabulary), max_sentences=32, max_sentence_tokens=24,\n"
        "                        hidden_dim=32, intermediate_dim=64, document_layers=1)\n"
        "train_arrays = S.encode_documents(train, vocabulary, 32, 24)\n"
        "test_arrays = S.encode_documents(test, vocabulary, 32, 24)\n"
        "model, result = S.train_scorer(train_arrays, test_arrays, config, epochs=2, batch_size=8, verbose=0)\n"
        "scores = S.predict_scores(model, test, test_arrays)\n"
        "ratio = S.learn_length_ratio(train)\n"
        "print(f'budget: {ratio:.2f} x article words')"
    ),
    new_markdown_cell("## 2. One article: sentence scores, chosen summary, reference"),
    new_code_cell(
        "chosen = S.summarize([document], [scores[0]], ratio=ratio)[0]\n"
        "shown = np.where(np.isfinite(scores[0]), scores[0], np.nan)\n"
        "colors = ['tab:green' if label else 'tab:gray' for label in document.labels]\n"
        "figure, axis = plt.subplots(figsize=(9, 3))\n"
        "axis.bar(range(len(shown)), shown, color=colors)\n"
        "axis.scatter(chosen, shown[chosen], marker='v', color='black', label='selected')\n"
        "axis.set_xlabel('sentence')\n"
        "axis.set_ylabel('logit')\n"
        "axis.legend()\n"
        "axis.set_title('sentence scores (green: in the reference)')\n"
        "png = 'sentence_scores.png'\n"
        "figure.savefig(png, dpi=80, bbox_inches='tight')\n"
        "print('MODEL SUMMARY:')\n"
        "print(S.summary_texts([document], [chosen])[0])\n"
        "print()\n"
        "print('REFERENCE:')\n"
        "print(document.reference)"
    ),
    new_markdown_cell(
        "## 3. ROUGE on 20 test articles\n"
        "rouge-score with stemming; ROUGE-L is one LCS over the whole summary, ROUGE-Lsum the sentence-level one."
    ),
    new_code_cell(
        "model_report = S.evaluate_selections(test, S.summarize(test, scores, ratio=ratio))\n"
        "lead_report = S.evaluate_selections(test, S.summarize(test, [S.lead_scores(d.sentences) for d in test], k=3))\n"
        "self_report = S.rouge_report([d.reference for d in test], [d.reference for d in test], bootstrap=False)\n"
        "for name, report in [('scorer', model_report), ('lead-3', lead_report)]:\n"
        "    print(name, {t: round(report[t]['fmeasure'], 3) for t in ('rouge1', 'rouge2', 'rougeL', 'rougeLsum')})"
    ),
    new_code_cell(
        "assert chosen == sorted(chosen) and len(chosen) >= 1\n"
        "assert S.sentence_lengths(document.sentences)[chosen].sum() <= ratio * document.num_words or len(chosen) == 1\n"
        "assert all(abs(self_report[t]['fmeasure'] - 1.0) < 1e-9 for t in ('rouge1', 'rouge2', 'rougeL'))\n"
        "assert model_report['num_examples'] == lead_report['num_examples'] == 20\n"
        "low, high = model_report['rouge2']['ci']\n"
        "assert low <= model_report['rouge2']['fmeasure'] <= high\n"
        "assert result.status == 'completed' and np.isfinite(result.history['loss'][-1])\n"
        "assert os.path.getsize(png) > 0"
    ),
]


PRETRAIN_THEN_FINETUNE = [
    new_markdown_cell(
        "# Pretrain, then fine-tune\n\n"
        "The method of BERT and GPT in three steps, at a size that runs in a minute or two on a laptop CPU "
        "(the full runs are `python experiments/pretrain.py` and `python experiments/sentiment.py --init-from RUN`):\n\n"
        "1. **pretrain** a small encoder as a masked language model on unlabeled books: 15% of the tokens are chosen, "
        "80% of those become `[MASK]`, 10% a random token, 10% stay, and the model predicts the originals;\n"
        "2. look at its **masked-token predictions** before and after pretraining;\n"
        "3. **fine-tune** it for sentiment (SST-2) next to the same model trained from scratch.\n\n"
        "Books are split by book: the held-out accuracy is measured on books the model never saw."
    ),
    new_code_cell(
        "import os\n"
        "import tempfile\n"
        "os.environ.setdefault('KERAS_BACKEND', 'tensorflow')\n"
        "os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')\n"
        "import keras\n"
        "import numpy as np\n"
        "import tensorflow as tf\n"
        "from llm_tf.datasets import load_sst2_splits\n"
        "from llm_tf.models import MaskedLM\n"
        "from llm_tf.tasks import classification, pretraining as P\n"
        "from llm_tf.tasks.cli import default_data_dir\n"
        "from llm_tf.text import WordPieceTokenizer\n"
        "from llm_tf import training\n"
        "keras.utils.set_random_seed(0)\n"
        "data_dir = default_data_dir(None)\n"
        "corpus = P.load_pretraining_corpus(data_dir, max_books=12, max_chars_per_document=60000)\n"
        "tokenizer = WordPieceTokenizer.train(corpus.train, vocabulary_size=3000)\n"
        "rows = {name: P.pack_sequences(P.encode_documents(tokenizer, getattr(corpus, name)), 64,\n"
        "                                cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)\n"
        "        for name in ('train', 'validation')}\n"
        "print({name: r.shape for name, r in rows.items()}, corpus.sources)"
    ),
    new_markdown_cell("## 1. Masking, and a masked LM that has seen nothing yet"),
    new_code_cell(
        "config = P.PretrainConfig(sequence_length=64, hidden_dim=96, num_layers=2, num_heads=2, intermediate_dim=192,\n"
        "                          batch_size=32, max_steps=300, eval_every_n_steps=100, max_predictions=10,\n"
        "                          learning_rate=2e-3, dropout=0.0)\n"
        "masking = dict(mask_id=tokenizer.mask_id, vocabulary_size=tokenizer.vocabulary_size,\n"
        "               special_ids=tokenizer.special_ids, max_predictions=config.max_predictions)\n"
        "inputs, positions, ids, weights = P.mask_sequences(rows['train'][:1], np.random.default_rng(0), **masking)\n"
        "print('original:', tokenizer.decode(rows['train'][0][:24]))\n"
        "print('masked:  ', ' '.join(tokenizer.id_to_token(t) for t in inputs[0][:24]))\n"
        "features, labels, label_weights = P.masked_lm_examples(rows['validation'][:256], np.random.default_rng(1),\n"
        "                                                        **masking)\n"
        "held_out = tf.data.Dataset.from_tensor_slices((features, labels, label_weights)).batch(64)\n"
        "model = MaskedLM(config=config.encoder_config(tokenizer.vocabulary_size))\n"
        "schedule = training.WarmupCosineDecay(config.learning_rate, 30, config.max_steps)\n"
        "model.compile(optimizer=training.build_optimizer(schedule))\n"
        "before = model.evaluate(held_out, verbose=0, return_dict=True)\n"
        "\n"
        "sentences = ['the old man walked slowly down the road to the village .',\n"
        "             'she opened the door and looked into the dark room .',\n"
        "             'he took the letter from his pocket and read it again .']\n"
        "targets = ['road', 'door', 'letter']\n"
        "\n"
        "def fill_mask(model, sentence, target, k=5):\n"
        "    ids = [tokenizer.cls_id] + tokenizer.encode(sentence) + [tokenizer.sep_id]\n"
        "    position = ids.index(tokenizer.token_to_id(target))\n"
        "    ids[position] = tokenizer.mask_id\n"
        "    logits = model({'token_ids': np.array([ids]), 'padding_mask': np.ones((1, len(ids)), 'int32'),\n"
        "                    'mask_positions': np.array([[position]])})\n"
        "    best = np.argsort(-np.asarray(logits)[0, 0])[:k]\n"
        "    return [tokenizer.id_to_token(int(t)) for t in best]\n"
        "\n"
        "predictions_before = [fill_mask(model, s, t) for s, t in zip(sentences, targets)]\n"
        "print(f\"held-out masked-token accuracy before pretraining: {before['accuracy']:.3f}\")\n"
        "for target, guess in zip(targets, predictions_before):\n"
        "    print(f'{target!r:10} <- {guess}')"
    ),
    new_markdown_cell(
        "## 2. Pretrain\n"
        "`interval_batches` gives each interval of 100 steps its rows in a seeded order, masked afresh (dynamic "
        "masking), so the same row is masked differently on every pass."
    ),
    new_code_cell(
        "batches = P.interval_batches(rows['train'], config, tokenizer)\n"
        "curve = []\n"
        "for interval in range(config.max_steps // config.eval_every_n_steps):\n"
        "    model.fit(batches(interval), verbose=0)\n"
        "    curve.append(model.evaluate(held_out, verbose=0, return_dict=True))\n"
        "    print(f\"step {(interval + 1) * config.eval_every_n_steps}: held-out loss {curve[-1]['loss']:.3f}, \"\n"
        "          f\"accuracy {curve[-1]['accuracy']:.3f}, perplexity {np.exp(curve[-1]['loss']):.0f}\")\n"
        "predictions_after = [fill_mask(model, s, t) for s, t in zip(sentences, targets)]\n"
        "for target, guess in zip(targets, predictions_after):\n"
        "    print(f'{target!r:10} <- {guess}')"
    ),
    new_markdown_cell(
        "## 3. Fine-tune for sentiment, from the pretrained encoder and from scratch\n"
        "The backbone goes into a run-like folder (`backbone.keras` + `tokenizer/`), exactly what "
        "`experiments/pretrain.py` writes, and `train_classifier(init_from=...)` starts from it. Both models see "
        "the same 3,000 SST-2 training phrases with the same recipe and seed; the test split is SST-2 dev."
    ),
    new_code_cell(
        "folder = tempfile.mkdtemp()\n"
        "model.backbone.save(os.path.join(folder, P.BACKBONE_FILE))\n"
        "tokenizer.save(os.path.join(folder, P.TOKENIZER_DIR))\n"
        "restored = classification.classifier_from_pretrained(P.load_pretrained_encoder(folder), num_classes=2)\n"
        "probe = {'token_ids': rows['validation'][:2], 'padding_mask': (rows['validation'][:2] != 0).astype('int32')}\n"
        "same = np.array_equal(np.asarray(restored.backbone(probe)), np.asarray(model.backbone(probe)))\n"
        "\n"
        "sst2 = load_sst2_splits(data_dir)\n"
        "train_split = sst2.train.subset(np.random.default_rng(0).permutation(len(sst2.train))[:3000])\n"
        "encoded = {name: classification.encode_split(tokenizer, split)\n"
        "           for name, split in (('train', train_split), ('test', sst2.test))}\n"
        "recipe = dict(num_classes=2, vocabulary_size=tokenizer.vocabulary_size, mask_id=tokenizer.mask_id,\n"
        "              special_ids=tokenizer.special_ids, seed=0, max_sequence_length=64, hidden_dim=96, num_layers=2,\n"
        "              num_heads=2, intermediate_dim=192, batch_size=32, epochs=3, learning_rate=1e-3,\n"
        "              bucket_by_length=True, verbose=0)\n"
        "accuracy = {}\n"
        "for name, init_from in (('scratch', None), ('pretrained', folder)):\n"
        "    classifier, _ = classification.train_classifier(encoded['train'], None, init_from=init_from, **recipe)\n"
        "    probabilities = classification.predict_probabilities(classifier, encoded['test'], 'first', 64)\n"
        "    accuracy[name] = float((probabilities.argmax(-1) == encoded['test'].labels).mean())\n"
        "print('SST-2 dev accuracy:', {name: round(value, 4) for name, value in accuracy.items()})"
    ),
    new_code_cell(
        "assert same, 'the classifier must start from exactly the pretrained backbone'\n"
        "assert curve[-1]['accuracy'] > before['accuracy'] + 0.05, (before, curve[-1])\n"
        "assert curve[-1]['loss'] < before['loss']\n"
        "assert all(len(p) == 5 for p in predictions_before + predictions_after)\n"
        "assert min(accuracy.values()) > 0.5, accuracy"
    ),
]


def write(name, cells):
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    path = NOTEBOOKS_DIR / name
    nbformat.write(notebook, path)
    return path


if __name__ == "__main__":
    print(write("01_attention_from_scratch.ipynb", ATTENTION_FROM_SCRATCH))
    print(write("03_pretrain_then_finetune.ipynb", PRETRAIN_THEN_FINETUNE))
    print(write("04_text_generation.ipynb", TEXT_GENERATION))
    print(write("05_translation.ipynb", TRANSLATION))
    print(write("06_summarization.ipynb", SUMMARIZATION))
