"""The expression plugin passes facezoo.testing's checks, and its results are a distribution over
its seven labels whose most likely one is the label."""

import math

from facezoo_expression import LABELS

from facezoo.testing import FACES, check_task


def check_expression(result):
    assert list(result.probabilities) == list(LABELS) and result.label == max(result.probabilities, key=result.probabilities.get)
    assert math.isclose(sum(result.probabilities.values()), 1.0, abs_tol=1e-4)


def test_expression_passes_the_plugin_checks():
    check_task("expression", photos=FACES, check_result=check_expression)
