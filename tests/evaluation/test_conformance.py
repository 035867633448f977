"""Conformance: umcl's metrics against scikit-learn, open_clip's ``get_clip_metrics`` and CheXzero's
pos/neg zero-shot, on fixed random inputs with ties, duplicates, NaN labels and rare classes.

The references live in ``conformance_refs.py``; ``benchmarks/conformance.py`` prints the same cases
as the "umcl vs reference implementation" table of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import pytest
from conformance_refs import CASES, Case

# torchmetrics accumulates the ROC curve in float32; everything else must agree to rounding.
TOLERANCE = 1e-6


@pytest.mark.parametrize("make", CASES, ids=[make.__name__.strip("_") for make in CASES])
def test_umcl_agrees_with_the_reference(make) -> None:
    case: Case = make()
    assert len(case.umcl) == len(case.expected) > 0
    assert None not in case.umcl and None not in case.expected, case.metric
    assert case.max_abs_diff <= TOLERANCE, f"{case.metric} vs {case.reference}: {case.max_abs_diff}"
