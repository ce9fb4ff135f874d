"""The beauty plugin passes facezoo.testing's checks, and its results are 1–5 scores."""

import math

import facezoo
from facezoo.testing import FACES, check_task

BINS = facezoo.new_config("beauty", "test_resnet").head["bins"]


def check_beauty(result):
    assert 1.0 <= result.score <= 5.0
    assert len(result.distribution) == BINS and math.isclose(sum(result.distribution), 1.0, abs_tol=1e-3)


def test_beauty_passes_the_plugin_checks():
    check_task("beauty", photos=FACES, check_result=check_beauty)
