"""The keypoints plugin passes facezoo.testing's checks, and its results are 68 points."""

from facezoo_keypoints import NUM_POINTS

from facezoo.testing import FACES, check_task


def check_keypoints(result):
    assert len(result.points) == NUM_POINTS and all(len(point) == 2 for point in result.points)


def test_keypoints_passes_the_plugin_checks():
    check_task("keypoints", photos=FACES, check_result=check_keypoints)
