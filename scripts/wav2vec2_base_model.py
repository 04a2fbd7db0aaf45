"""A Wav2Vec2-base-sized audio classifier with random weights, for `modelexport benchmark` (no Hub here):
`python scripts/wav2vec2_base_model.py OUT_DIR`.

The default `Wav2Vec2Config` (12 layers, hidden 768, 95M parameters) with a layer-norm feature encoder, so the
export takes an attention mask and short clips padded to a window give the unpadded answers; 4 labels.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_wav2vec2_base_classifier(directory: Path, seed: int = 0) -> Path:
    """Write the model and its feature extractor to `directory`; return it."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(seed)
    labels = {0: "yes", 1: "no", 2: "up", 3: "down"}
    config = Wav2Vec2Config(
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    Wav2Vec2ForSequenceClassification(config).eval().save_pretrained(directory)
    Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True).save_pretrained(directory)
    return directory


if __name__ == "__main__":
    print(write_wav2vec2_base_classifier(Path(sys.argv[1])))
