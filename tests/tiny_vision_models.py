"""Tiny vision models built locally from configs (there is no Hub here), saved with their slow processor.

Every builder seeds torch, so a model is the same in every session, and saves model + image processor with
`save_pretrained` into `directory`. Sizes are in pixels (height, width).

Initialised as transformers does (std 0.02), a random tiny model answers nearly the same for every image (one
score list, one box for every query). So each builder redraws its Linear and Conv2d weights with a larger std
(`SPREAD_STD`, chosen per model so that scores, boxes and masks differ from image to image without
saturating): a parity test then compares answers that depend on the image.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tiny_models import spread_weights

LABELS = {0: "cat", 1: "dog", 2: "bird"}
LABEL_IDS = {name: index for index, name in LABELS.items()}
SEGMENT_LABELS = {0: "sky", 1: "road", 2: "tree"}
# The detectors keep the aspect ratio (shortest edge 32, longest edge at most 64), so they are exported at
# 32x48: images of aspect ratio 2:3 get exactly that size from the model's own processor.
DETECTION_HEIGHT, DETECTION_WIDTH = 32, 48


def _labels(names: dict[int, str]) -> dict[str, object]:
    return {"id2label": dict(names), "label2id": {name: index for index, name in names.items()}}


SPREAD_STD = {"vit": 0.1, "resnet": 0.2, "convnext": 0.15, "detr": 0.3, "yolos": 0.3, "segformer": 0.3}


def _save(model: object, processor: object, directory: Path, kind: str, seed: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    import torch

    model = spread_weights(model, SPREAD_STD[kind], seed, (torch.nn.Linear, torch.nn.Conv2d))
    model.eval().save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def _tiny_resnet_config(**overrides: object):
    from transformers import ResNetConfig

    settings = dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=3)
    settings.update(overrides)
    return ResNetConfig(**settings)


def write_tiny_vit(directory: Path, seed: int = 0) -> Path:
    """ViTForImageClassification on 32x32 images (patch 8, one layer), ViTImageProcessor resizing to 32x32."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        **_labels(LABELS),
    )
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    return _save(ViTForImageClassification(config), processor, directory, "vit", seed)


def write_tiny_resnet(directory: Path, seed: int = 0) -> Path:
    """ResNetForImageClassification (two basic stages), with ConvNextImageProcessor as ResNet checkpoints:
    shortest edge to 32 / crop_pct, then a centre crop of 32x32."""
    import torch
    from transformers import ConvNextImageProcessor, ResNetForImageClassification

    torch.manual_seed(seed)
    config = _tiny_resnet_config(**_labels(LABELS))
    processor = ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    return _save(ResNetForImageClassification(config), processor, directory, "resnet", seed)


def write_tiny_convnext(directory: Path, seed: int = 0) -> Path:
    """ConvNextForImageClassification (two stages of one block), ConvNextImageProcessor at 32."""
    import torch
    from transformers import ConvNextConfig, ConvNextForImageClassification, ConvNextImageProcessor

    torch.manual_seed(seed)
    config = ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, image_size=32, **_labels(LABELS))
    processor = ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    return _save(ConvNextForImageClassification(config), processor, directory, "convnext", seed)


def write_tiny_detr(directory: Path, seed: int = 0) -> Path:
    """DetrForObjectDetection with a tiny ResNet backbone (no timm, nothing pretrained), 5 queries, 3 classes;
    DetrImageProcessor keeping the aspect ratio (shortest edge 32, longest at most 64)."""
    import torch
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor

    torch.manual_seed(seed)
    config = DetrConfig(
        use_timm_backbone=False,
        use_pretrained_backbone=False,
        backbone_config=_tiny_resnet_config(out_features=["stage1", "stage2"]),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        num_queries=5,
        auxiliary_loss=False,
        **_labels(LABELS),
    )
    processor = DetrImageProcessor(size={"shortest_edge": 32, "longest_edge": 64})
    return _save(DetrForObjectDetection(config), processor, directory, "detr", seed)


def write_tiny_yolos(directory: Path, seed: int = 0) -> Path:
    """YolosForObjectDetection (patch 8, one layer, 5 detection tokens) with config image size 32x48;
    YolosImageProcessor keeping the aspect ratio (shortest edge 32, longest at most 64)."""
    import torch
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessor

    torch.manual_seed(seed)
    config = YolosConfig(
        image_size=[DETECTION_HEIGHT, DETECTION_WIDTH],
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        num_detection_tokens=5,
        **_labels(LABELS),
    )
    processor = YolosImageProcessor(size={"shortest_edge": 32, "longest_edge": 64})
    return _save(YolosForObjectDetection(config), processor, directory, "yolos", seed)


def write_tiny_segformer(directory: Path, seed: int = 0) -> Path:
    """SegformerForSemanticSegmentation (two encoder blocks), SegformerImageProcessor resizing to 32x32."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(seed)
    config = SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[8, 16],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=16,
        **_labels(SEGMENT_LABELS),
    )
    processor = SegformerImageProcessor(size={"height": 32, "width": 32})
    return _save(SegformerForSemanticSegmentation(config), processor, directory, "segformer", seed)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "vit": write_tiny_vit,
    "resnet": write_tiny_resnet,
    "convnext": write_tiny_convnext,
    "detr": write_tiny_detr,
    "yolos": write_tiny_yolos,
    "segformer": write_tiny_segformer,
}
