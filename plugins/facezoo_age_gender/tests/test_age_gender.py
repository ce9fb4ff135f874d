"""The age-gender plugin passes facezoo.testing's checks, and its results are ages and labels."""

import numpy as np
from facezoo_age_gender import LABELS, metrics, sample_groups

from facezoo.testing import FACES, check_task


def check_age_gender(result):
    assert result.age >= 0.0 and result.gender in LABELS and 0.5 <= result.gender_probability <= 1.0


def test_age_gender_passes_the_plugin_checks():
    check_task("age-gender", photos=FACES, check_result=check_age_gender)


def test_gender_is_scored_per_age_band_and_each_band_is_a_sample_group():
    targets = np.array([[5, 0], [9.5, 1], [30, 1], [45, 0], [70, 1], [np.nan, 0]], dtype=np.float32)
    predictions = np.array([[6, 0.1], [9, 0.2], [31, 0.9], [44, 0.9], [69, 0.8], [20, 0.1]], dtype=np.float32)
    assert sample_groups(targets).tolist() == [0, 0, 2, 3, 4, -1]
    scores = metrics(predictions, targets, None)
    assert scores["gender_accuracy_0-9"] == 0.5 and scores["gender_accuracy_40-59"] == 0.0 and scores["gender_accuracy_60+"] == 1.0
    assert "gender_accuracy_10-19" not in scores and scores["gender_accuracy"] == 4 / 6
    assert scores["age_mae"] == np.float32(np.mean([1, 0.5, 1, 1, 1]))
