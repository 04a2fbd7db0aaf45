"""Benchmark images: synthetic, deterministic photos-like PIL images of a few typical sizes."""

from __future__ import annotations

from typing import Any

import numpy as np

# (width, height): thumbnails, then camera and screen sizes.
SMALL_SIZES = [(160, 120), (96, 128), (200, 150), (128, 128)]
LARGE_SIZES = [(1280, 960), (1920, 1080), (960, 1280), (1024, 1024)]


def synthetic_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Any:
    """A smooth colour gradient with noise and a bright rectangle, so resizing has real work to do."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs / max(width - 1, 1), ys / max(height - 1, 1), (xs + ys) / max(width + height - 2, 1)], axis=-1)
    pixels = base * 200 + rng.normal(0, 20, size=(height, width, 3))
    top, left = rng.integers(0, max(height // 2, 1)), rng.integers(0, max(width // 2, 1))
    pixels[top : top + max(height // 3, 1), left : left + max(width // 3, 1)] = [240, 230, 60]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").convert(mode)


def sample_images() -> dict[str, list[Any]]:
    """`small` images (thumbnails) and `large` ones (camera / screen sizes): RGB PIL images."""
    return {
        "small": [synthetic_image(w, h, seed) for seed, (w, h) in enumerate(SMALL_SIZES)],
        "large": [synthetic_image(w, h, seed) for seed, (w, h) in enumerate(LARGE_SIZES)],
    }


def corpus_images(count: int = 32) -> list[Any]:
    """A deterministic workload of `count` synthetic images of varied sizes, from thumbnails to camera frames."""
    sizes = SMALL_SIZES + LARGE_SIZES
    return [synthetic_image(*sizes[i % len(sizes)], seed=i) for i in range(count)]
