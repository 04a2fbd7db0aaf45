"""One pipeline shared by several threads gives every thread the answers it gives alone, for every modality."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelexport_audio.samples import noise, speech_like, tone
from modelexport_core import create_pipeline, export
from modelexport_vision.samples import synthetic_image

from tiny_audio_models import SAMPLING_RATE, write_tiny_audio_classifier
from tiny_models import WORDS
from tiny_vision_models import write_tiny_vit

THREADS, CALLS = 4, 3


def texts(seed: int) -> list[str]:
    """64 texts of 1 to 40 words (longer than the fixed 16 tokens too), different for each seed."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 40))) for _ in range(64)]


def images(seed: int) -> list[Any]:
    return [synthetic_image(40 + 7 * i, 30 + 5 * (i % 4), seed=seed + i) for i in range(8)]


def clips(seed: int) -> list[np.ndarray]:
    makers = [lambda n: speech_like(n, SAMPLING_RATE, seed=seed), lambda n: tone(n, SAMPLING_RATE), noise]
    return [makers[i % 3](1500 + 700 * i) for i in range(8)]


def _shared_answers(pipe: Any, inputs: Callable[[int], list[Any]], **kwargs: Any) -> tuple[list, list]:
    """Each thread's answers when THREADS threads call the one pipeline CALLS times each, and the answers of the
    same calls made one after the other."""
    alone = [pipe(inputs(seed), **kwargs) for seed in range(THREADS)]

    def work(seed: int) -> list[Any]:
        return [pipe(inputs(seed), **kwargs) for _ in range(CALLS)]

    with ThreadPoolExecutor(THREADS) as pool:
        together = list(pool.map(work, range(THREADS)))
    return alone, together


@pytest.mark.parametrize("bucketed", [False, True])
@pytest.mark.parametrize("task", ["text-classification", "token-classification", "feature-extraction"])
def test_text_pipelines_shared_by_threads(text_model, task: str, bucketed: bool, tmp_path: Path) -> None:
    out_dir = tmp_path / "package"
    lengths = [8, 16] if bucketed else 16
    export(text_model(task), out_dir, task=task, batch_size=2, sequence_length=lengths, validate=False)
    alone, together = _shared_answers(create_pipeline(task, out_dir), texts, batch_size=4)
    for seed in range(THREADS):
        assert all(answers == alone[seed] for answers in together[seed]), seed


def test_vision_and_audio_pipelines_shared_by_threads(tmp_path: Path) -> None:
    vit = export(write_tiny_vit(tmp_path / "vit"), tmp_path / "vit-pkg", batch_size=2, validate=False)
    assert vit["modality"] == "vision"
    alone, together = _shared_answers(create_pipeline("image-classification", tmp_path / "vit-pkg"), images)
    assert all(answers == alone[seed] for seed in range(THREADS) for answers in together[seed])
    audio = write_tiny_audio_classifier(tmp_path / "kws")
    export(audio, tmp_path / "kws-pkg", batch_size=2, audio_sequence_length=[4000, 8000], validate=False)
    alone, together = _shared_answers(create_pipeline("audio-classification", tmp_path / "kws-pkg"), clips)
    assert all(answers == alone[seed] for seed in range(THREADS) for answers in together[seed])
