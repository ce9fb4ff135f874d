"""The age-gender plugin passes facezoo.testing's checks, and its results are ages and labels."""

from facezoo_age_gender import LABELS

from facezoo.testing import FACES, check_task


def check_age_gender(result):
    assert result.age >= 0.0 and result.gender in LABELS and 0.5 <= result.gender_probability <= 1.0


def test_age_gender_passes_the_plugin_checks():
    check_task("age-gender", photos=FACES, check_result=check_age_gender)
