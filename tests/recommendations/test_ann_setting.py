"""RECOMMENDATIONS["ANN"]: "auto" by default, validated when read."""

import pytest
from django.test import override_settings

from recommendations.conf import recommendations_settings


def test_ann_defaults_to_auto():
    assert recommendations_settings().ANN == "auto"


@override_settings(RECOMMENDATIONS={"ANN": "hnsw"})
def test_an_unknown_ann_mode_is_rejected_when_the_settings_are_read():
    with pytest.raises(ValueError, match="exact"):
        recommendations_settings()
