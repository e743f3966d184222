"""The benchmarks' own modules (benchmarks/*.py) are importable by their tests."""

import sys

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
