"""The factor sign rule: the sum of a factor's weights over its annotated genes is positive."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from helpers import LIB
from interpretable_ae.signs import factor_signs


def test_the_sum_over_the_annotated_genes_decides():
    weights = np.array(
        [
            # term A (genes 0, 1), term B (genes 2, 3), term C (gene 4), sparse, dense, empty
            [-1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            [0.5, 0.0, 0.0, 1.0, 0.0, 0.0],
            [9.0, 0.3, 0.0, -3.0, 0.0, 0.0],  # A's large weight outside its set does not count
            [0.0, -0.5, 0.0, 0.0, -1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.2, 0.0],
        ]
    )
    weights[0, 2] = -2.0  # C: its only annotated gene weighs 0, so all genes decide
    annotation = sp.csr_matrix(
        np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float32)
    )
    weights[4, 2] = 0.0
    signs = factor_signs(weights, annotation)
    np.testing.assert_array_equal(signs, [-1, -1, -1, -1, -1, 1])
    np.testing.assert_array_equal(factor_signs(-weights, annotation.toarray()), [1, 1, 1, 1, 1, 1])
    # without an annotation every factor goes by all its genes
    np.testing.assert_array_equal(factor_signs(weights), np.where(weights.sum(0) < 0, -1, 1))


def test_a_mismatched_annotation_is_refused():
    message = (
        r"^annotation is 4 genes x 1 terms but the weights are 5 genes x 2 factors; pass the "
        r"model's genes x terms mask$"
    )
    with pytest.raises(ValueError, match=message):
        factor_signs(np.ones((5, 2)), np.ones((4, 1)))


def test_float32_weights_are_summed_exactly():
    """1e8 - 1 is 1e8 in float32: a float32 sum of [1e8, -1, -1e8] would be 0 (sign +1)."""
    weights = np.array([[1e8], [-1.0], [-1e8]], dtype=np.float32)
    np.testing.assert_array_equal(factor_signs(weights), [-1])
    np.testing.assert_array_equal(factor_signs(weights, np.ones((3, 1), np.float32)), [-1])


def test_an_annotation_marks_genes_whatever_its_values():
    """Non-zero marks a gene of the set: values other than 1 do not weigh the sum."""
    weights = np.array([[1.0], [-0.6], [5.0]])
    annotation = sp.csr_matrix(np.array([[0.5], [3.0], [0.0]]))  # genes 0 and 1 in the set
    np.testing.assert_array_equal(factor_signs(weights, annotation), [1])  # 1 - 0.6 > 0


def test_the_rule_needs_no_torch():
    code = "import sys, interpretable_ae.signs; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(LIB), "PATH": ""},
    )  # fmt: skip
    assert out.stdout.strip() == "False"


def test_each_annotated_factor_goes_by_its_own_genes():
    weights = np.array([[2.0, -1.0], [-1.0, 2.0], [-5.0, -5.0]])
    annotation = np.array([[1, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(factor_signs(weights, annotation), [1, 1])
    np.testing.assert_array_equal(factor_signs(weights * [1, -1], annotation), [1, -1])
