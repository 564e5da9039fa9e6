"""The Transformer building blocks, written with ``keras.ops`` only (they run on any Keras 3 backend)."""

from llm_tf.layers.feed_forward import FeedForward
from llm_tf.layers.multi_head_attention import MultiHeadAttention
from llm_tf.layers.scaled_dot_product_attention import (
    ScaledDotProductAttention,
    causal_attention_mask,
    masked_softmax,
    merge_attention_masks,
)
from llm_tf.layers.token_and_position_embedding import TokenAndPositionEmbedding, sinusoidal_position_encoding
from llm_tf.layers.transformer_blocks import TransformerDecoderBlock, TransformerEncoderBlock

__all__ = [
    "FeedForward",
    "MultiHeadAttention",
    "ScaledDotProductAttention",
    "TokenAndPositionEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "causal_attention_mask",
    "masked_softmax",
    "merge_attention_masks",
    "sinusoidal_position_encoding",
]
