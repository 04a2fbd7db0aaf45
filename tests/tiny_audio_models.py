"""Tiny audio models built locally from configs (there is no Hub here), saved with their feature extractor
(and, for CTC, a character tokenizer).

Every builder seeds torch and redraws the Linear / Conv1d weights with a larger std (see
`tiny_models.spread_weights`), so labels and transcripts depend on the waveform. The feature encoder has three
convolutions (strides 5, 2, 2: one frame per 20 samples; a clip needs at least 40 samples for one frame).
"""

from __future__ import annotations

import json
from pathlib import Path

from tiny_models import spread_weights

SAMPLING_RATE = 16000
LABELS = {0: "yes", 1: "no", 2: "up", 3: "down"}
CHARACTERS = list("abcdefghijklmnopqrstuvwxyz'")
SPREAD_STD = 0.3


def _wav2vec2_config(norm: str, **overrides: object):
    """Wav2Vec2: "layer" = layer-norm feature encoder (honours an attention mask), "group" = wav2vec2-base style."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 2, 2),
        conv_kernel=(10, 3, 3),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer",
        **overrides,
    )


def _feature_extractor(norm: str):
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLING_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=norm == "layer",  # as the released checkpoints of each kind
    )


def _save(model: object, directory: Path, norm: str, seed: int) -> Path:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    spread_weights(model, SPREAD_STD, seed, (torch.nn.Linear, torch.nn.Conv1d)).eval().save_pretrained(directory)
    _feature_extractor(norm).save_pretrained(directory)
    return directory


def write_tiny_audio_classifier(directory: Path, norm: str = "layer", seed: int = 0) -> Path:
    """Wav2Vec2ForSequenceClassification with four keyword labels."""
    import torch
    from transformers import Wav2Vec2ForSequenceClassification

    torch.manual_seed(seed)
    config = _wav2vec2_config(norm, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    return _save(Wav2Vec2ForSequenceClassification(config), directory, norm, seed)


def write_tiny_ctc(directory: Path, norm: str = "layer", seed: int = 0) -> Path:
    """Wav2Vec2ForCTC over letters, with a Wav2Vec2CTCTokenizer (pad = CTC blank, "|" between words)."""
    import torch
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(["<pad>", "<s>", "</s>", "<unk>", "|", *CHARACTERS])}
    (directory / "vocab.json").write_text(json.dumps(vocab))
    Wav2Vec2CTCTokenizer(str(directory / "vocab.json")).save_pretrained(directory)
    torch.manual_seed(seed)
    config = _wav2vec2_config(norm, vocab_size=len(vocab), pad_token_id=vocab["<pad>"])
    return _save(Wav2Vec2ForCTC(config), directory, norm, seed)
