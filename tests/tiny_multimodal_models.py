"""Tiny multimodal models built locally from configs (there is no Hub here), saved with their processors.

CLIP (zero-shot image classification) gets a real byte-level BPE `CLIPTokenizer` over a locally written
vocabulary and a `CLIPImageProcessor`; LayoutLM v1 (document question answering) gets the tiny WordPiece
tokenizer as a `LayoutLMTokenizerFast`. Weights are spread (see `tiny_models.spread_weights`) so that answers
differ from input to input.
"""

from __future__ import annotations

import json
from pathlib import Path

from tiny_models import WORDS, spread_weights, tiny_bert_config, vocabulary

CLIP_IMAGE_SIZE = 32
CLIP_MAX_TEXT_LENGTH = 32
CLIP_SPREAD_STD = 0.1
LAYOUTLM_SPREAD_STD = 0.5


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP's reversible map from bytes to printable characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def write_tiny_clip_tokenizer(directory: Path) -> Path:
    """Save a CLIPTokenizerFast whose BPE vocabulary holds every byte, a few whole words, then the specials.

    As in CLIP's own vocabulary, <|endoftext|> (also the padding token) has the highest id.
    """
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [f"{s}</w>" for s in symbols]
    merges = []
    for word in [*WORDS, "photo"]:
        pieces = [*list(word[:-1]), word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append(f"{pieces[0]} {pieces[1]}")
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
            vocab.append(pieces[0])
    vocab = [*list(dict.fromkeys(vocab)), "<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    slow = CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), pad_token="<|endoftext|>")
    CLIPTokenizerFast.from_pretrained(directory, pad_token="<|endoftext|>").save_pretrained(directory)
    assert (
        slow("a photo of a cat")["input_ids"]
        == CLIPTokenizerFast.from_pretrained(directory)("a photo of a cat")["input_ids"]
    )
    return directory


def write_tiny_clip(directory: Path, seed: int = 0) -> Path:
    """CLIPModel (text and vision towers of 2 layers, hidden 32) with a CLIPProcessor: 32x32 images, 32 tokens."""
    import torch
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    write_tiny_clip_tokenizer(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    torch.manual_seed(seed)
    tower = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2)
    config = CLIPConfig(
        text_config=dict(
            tower,
            vocab_size=len(tokenizer),
            max_position_embeddings=CLIP_MAX_TEXT_LENGTH,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(tower, image_size=CLIP_IMAGE_SIZE, patch_size=8),
        projection_dim=16,
    )
    model = spread_weights(CLIPModel(config), CLIP_SPREAD_STD, seed, (torch.nn.Linear, torch.nn.Conv2d))
    model.eval().save_pretrained(directory)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": CLIP_IMAGE_SIZE}, crop_size={"height": CLIP_IMAGE_SIZE, "width": CLIP_IMAGE_SIZE}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def write_tiny_layoutlm(directory: Path, seed: int = 0) -> Path:
    """LayoutLMForQuestionAnswering (2 layers, hidden 32) with a LayoutLMTokenizerFast over the tiny WordPiece
    vocabulary."""
    import torch
    from transformers import LayoutLMConfig, LayoutLMForQuestionAnswering, LayoutLMTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(vocabulary()) + "\n")
    LayoutLMTokenizerFast(vocab_file=str(directory / "vocab.txt"), model_max_length=512).save_pretrained(directory)
    torch.manual_seed(seed)
    config = LayoutLMConfig(**tiny_bert_config().to_diff_dict() | {"model_type": "layoutlm"})
    model = LayoutLMForQuestionAnswering(config)
    spread_weights(model, LAYOUTLM_SPREAD_STD, seed, (torch.nn.Linear, torch.nn.Embedding))
    model.eval().save_pretrained(directory)
    return directory
