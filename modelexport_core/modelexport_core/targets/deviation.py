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
