"""The identity plugin passes facezoo.testing's checks, and its results are unit embeddings."""

import math

import facezoo
from facezoo.testing import FACES, check_task

EMBEDDING_DIM = facezoo.new_config("identity", "test_resnet").head["embedding_dim"]


def check_identity(result):
    assert len(result.embedding) == EMBEDDING_DIM
    assert math.isclose(sum(v * v for v in result.embedding), 1.0, abs_tol=1e-3)


def test_identity_passes_the_plugin_checks():
    check_task("identity", photos=FACES, check_result=check_identity)
