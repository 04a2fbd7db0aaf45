"""How far a target's output is from the reference's."""

from __future__ import annotations

import numpy as np


def deviation(target: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(largest absolute difference, largest magnitude of the reference) over the entries where the reference is
    finite; a non-finite target there makes the difference non-finite."""
    finite = np.isfinite(reference)
    if not finite.any():
        return 0.0, 0.0
    difference = np.abs(target.astype(np.float64) - reference.astype(np.float64))[finite]
    return float(difference.max()), float(np.abs(reference[finite]).max())


def agreement(target: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(cosine similarity, PSNR in dB against the reference's peak, as AI Hub reports it) over the finite entries
    of the reference; (1.0, inf) for identical outputs."""
    finite = np.isfinite(reference)
    t, r = target.astype(np.float64)[finite], reference.astype(np.float64)[finite]
    if not np.isfinite(t).all():
        return float("nan"), float("-inf")
    norms = np.linalg.norm(t) * np.linalg.norm(r)
    cosine = float(t @ r / norms) if norms else float(np.array_equal(t, r))
    mse = float(np.mean(np.square(t - r))) if r.size else 0.0
    peak = float(np.abs(r).max()) if r.size else 0.0
    psnr = float("inf") if mse == 0 else (10 * np.log10(peak**2 / mse) if peak else float("-inf"))
    return cosine, float(psnr)
