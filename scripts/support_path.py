"""Puts `tests/` on sys.path, so that the scripts build the same tiny models the tests build."""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
