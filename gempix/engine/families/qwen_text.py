"""The Qwen-family text side shared by all three families: tokenizer, processor, encoder configs.

FLUX.2 [klein] 4B and Z-Image-Turbo both encode prompts with Qwen3-4B, Qwen-Image-Edit with
Qwen2.5-VL-7B; all three use the Qwen2 byte-level BPE tokenizer and its chat markup. Here:

- ``build_tokenizer()``: a Qwen2 tokenizer written by code, one token per byte (no merges),
  plus Qwen's control tokens and a chat template that renders the same markup as Qwen3's
  (``<|im_start|>user ... <|im_end|>``, and the empty ``<think>`` block when
  ``enable_thinking=False``), so the pipelines' ``apply_chat_template`` calls work unchanged.
- ``ImageOnlyQwen2VLProcessor``: transformers 5 builds ``Qwen2VLProcessor`` with a video
  processor that needs torchvision, which GemPix does not install (installing it would replace
  the CPU torch). This subclass drops the video half and keeps everything Qwen-Image-Edit uses
  (image tokens, ``image_grid_thw``); its image processor is the PIL backend. It reads the
  published checkpoints' ``processor/`` folders too: ``families.load_family`` passes it to
  ``from_pretrained``, so the real model loads without torchvision as well.
- ``QWEN3_4B`` / ``QWEN25_VL_7B``: the published text-encoder configs, for the full-size
  parameter counts (``benchmarks/bench_families.py``).
"""

from __future__ import annotations

import functools
from typing import Any

from ..tiny import _byte_alphabet

# Qwen2/3 control tokens the three pipelines emit or expect (ids follow the 256 byte tokens).
PAD_TOKEN = "<|endoftext|>"
CONTROL_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
THINK_TOKENS = ("<think>", "</think>")  # plain added tokens in Qwen3, not special ones

# Qwen3's chat markup for what the pipelines send: one user message, a generation prompt, and
# the empty reasoning block Qwen3 adds when thinking is switched off (FLUX.2 klein does that).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)
MODEL_MAX_LENGTH = 32768

# The tiny vision tower sees at most 112x112 pixels of each input image: 8x8 patches of 14,
# merged 2x2 into 16 image tokens (the real processor allows 12.8 megapixels).
TINY_VISION_MAX_PIXELS = 112 * 112
TINY_VISION_MIN_PIXELS = 56 * 56

# Qwen/Qwen3-4B config.json, as FLUX.2 [klein] 4B's and Z-Image-Turbo's text_encoder/config.json
# repeat it (huggingface.co/Tongyi-MAI/Z-Image-Turbo/blob/main/text_encoder/config.json;
# transcribed from public copies of that file, e.g. in GitHub ports of Z-Image).
QWEN3_4B: dict[str, Any] = {
    "vocab_size": 151936,
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "attention_bias": False,
    "tie_word_embeddings": True,
}

# Qwen/Qwen2.5-VL-7B-Instruct config.json, which Qwen-Image(-Edit)'s text_encoder/config.json
# repeats (huggingface.co/Qwen/Qwen-Image-Edit-2509/blob/main/text_encoder/config.json;
# transcribed from public copies of that file).
QWEN25_VL_7B: dict[str, Any] = {
    "text_config": {
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"},
        "tie_word_embeddings": False,
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "hidden_act": "silu",
    },
    "vocab_size": 152064,
    "tie_word_embeddings": False,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_token_id": 151654,
}


def build_tokenizer():
    """A Qwen2 byte-level BPE tokenizer with one token per byte, Qwen's markup and template."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab = {char: index for index, char in enumerate(_byte_alphabet())}
    for token in (PAD_TOKEN, *CONTROL_TOKENS, *THINK_TOKENS):
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        additional_special_tokens=list(CONTROL_TOKENS),
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_MAX_LENGTH,
    )
    tokenizer.add_tokens([AddedToken(token, special=False) for token in THINK_TOKENS])
    return tokenizer


def token_id(tokenizer, token: str) -> int:
    return tokenizer.convert_tokens_to_ids(token)


@functools.cache
def processor_class():
    """The image-only Qwen2-VL processor class (defined on first use: it imports transformers)."""
    from transformers import Qwen2VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
        """``Qwen2VLProcessor`` without its video processor (which needs torchvision).

        Saved under the stock class name, so the folder reads as a plain Qwen2-VL processor
        wherever torchvision is installed.
        """

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token = "<|image_pad|>"
            self.video_token = "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

        def to_dict(self) -> dict:
            output = super().to_dict()
            output["processor_class"] = "Qwen2VLProcessor"
            return output

    return ImageOnlyQwen2VLProcessor


def build_processor(tokenizer):
    """The tiny Qwen-Image-Edit processor: the tokenizer plus a small-budget image processor."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    images = Qwen2VLImageProcessorPil(
        min_pixels=TINY_VISION_MIN_PIXELS, max_pixels=TINY_VISION_MAX_PIXELS
    )
    return processor_class()(image_processor=images, tokenizer=tokenizer)


def load_processor(source, **kwargs) -> Any:
    """A Qwen-Image-Edit processor (a folder or repo id, tiny or real), without torchvision.

    ``kwargs`` go to ``from_pretrained`` (``subfolder="processor"`` for a pipeline's folder).
    """
    return processor_class().from_pretrained(str(source), **kwargs)


def tiny_qwen3(tokenizer, layers: int, width: int = 16):
    """A tiny Qwen3 config: the published layout (GQA, tied embeddings) at toy width."""
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=width * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=width // 2,
        max_position_embeddings=MODEL_MAX_LENGTH,
        rope_theta=QWEN3_4B["rope_theta"],
        tie_word_embeddings=True,
        pad_token_id=token_id(tokenizer, PAD_TOKEN),
        eos_token_id=token_id(tokenizer, "<|im_end|>"),
        bos_token_id=None,
    )


def tiny_qwen25_vl(tokenizer, width: int = 16):
    """A tiny Qwen2.5-VL config whose special-token ids are the tiny tokenizer's."""
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": width,
            "intermediate_size": width * 2,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": MODEL_MAX_LENGTH,
            # head_dim 8 = 2 * (1 + 1 + 2): the three M-RoPE sections (time, height, width)
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": QWEN25_VL_7B["text_config"]["rope_theta"],
            "pad_token_id": token_id(tokenizer, PAD_TOKEN),
            "bos_token_id": token_id(tokenizer, PAD_TOKEN),  # as in Qwen2.5-VL: <|endoftext|>
            "eos_token_id": token_id(tokenizer, "<|im_end|>"),
            "tie_word_embeddings": False,
        },
        vision_config={
            "depth": 2,
            "hidden_size": width,
            "intermediate_size": width * 2,
            "num_heads": 2,
            "out_hidden_size": width,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        vocab_size=len(tokenizer),
        tie_word_embeddings=False,
        image_token_id=token_id(tokenizer, "<|image_pad|>"),
        video_token_id=token_id(tokenizer, "<|video_pad|>"),
        vision_start_token_id=token_id(tokenizer, "<|vision_start|>"),
        vision_end_token_id=token_id(tokenizer, "<|vision_end|>"),
        vision_token_id=token_id(tokenizer, "<|vision_pad|>"),
    )
