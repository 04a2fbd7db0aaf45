"""Test and benchmark waveforms, synthesised with numpy: tones, noise, silence and a speech-like vowel sequence."""

from __future__ import annotations

import numpy as np

# Formant frequencies (Hz) of the vowels /a/, /i/, /u/, /e/, /o/ (adult male voice).
_VOWELS = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]


def tone(samples: int, rate: int, frequency: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    """A sine tone."""
    t = np.arange(samples) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def noise(samples: int, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    """White Gaussian noise."""
    return (amplitude * np.random.default_rng(seed).standard_normal(samples)).astype(np.float32)


def silence(samples: int) -> np.ndarray:
    """Digital silence."""
    return np.zeros(samples, dtype=np.float32)


def speech_like(samples: int, rate: int, seed: int = 0) -> np.ndarray:
    """Vowel-like syllables: a glottal pulse train (100-140 Hz) through three formant resonances per vowel,
    with a syllable envelope and short pauses, the way a formant synthesiser speaks."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate
    pitch = 120 + 20 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, np.pi))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    syllable = max(int(0.2 * rate), 1)
    vowel_of = rng.integers(0, len(_VOWELS), size=samples // syllable + 1)[np.arange(samples) // syllable]
    voice = np.zeros(samples)
    for harmonic in range(1, 30):
        frequency = harmonic * pitch
        gain = sum(np.exp(-(((frequency - formant[vowel_of]) / 90.0) ** 2)) for formant in np.array(_VOWELS).T)
        voice += gain * np.sin(harmonic * phase) / harmonic
    position = (np.arange(samples) % syllable) / syllable
    envelope = np.clip(np.sin(np.pi * position) * 1.4, 0, 1) * (position < 0.85)
    clip = voice * envelope
    return (0.5 * clip / max(np.abs(clip).max(initial=0), 1e-9)).astype(np.float32)


def sample_waveforms(rate: int) -> dict[str, list[np.ndarray]]:
    """`short` clips (0.4 s) and `one_second` clips: speech-like, tone, noise, silence."""

    def clips(samples: int) -> list[np.ndarray]:
        return [speech_like(samples, rate), tone(samples, rate), noise(samples), silence(samples)]

    return {"short": clips(int(0.4 * rate)), "one_second": clips(rate)}


def corpus_waveforms(rate: int, count: int = 48) -> list[np.ndarray]:
    """A deterministic workload of `count` clips from 0.1 s to 1 s: speech-like, tones, noise and silence."""
    makers = [
        lambda n, i: speech_like(n, rate, seed=i),
        lambda n, i: tone(n, rate, frequency=220.0 + 40 * i),
        lambda n, i: noise(n, seed=i),
        lambda n, i: silence(n),
    ]
    durations = np.linspace(0.1, 1.0, count)
    return [makers[i % len(makers)](int(d * rate), i) for i, d in enumerate(durations)]
