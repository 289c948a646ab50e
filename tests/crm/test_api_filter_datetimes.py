"""Datetime filters take any ISO 8601 offset and never 500 (schemathesis found 500s, bench/drill_fuzz.py).

PostgreSQL rejects UTC offsets beyond +-15:59 that Python parses (``+18:24``), and an instant near
year 1 or 9999 overflows when moved to UTC: the filters normalise to UTC first and answer a 400 when
the instant cannot be represented.
"""
import pytest

from tests.conftest import assert_error

LIST_FILTERS = [
    ("/api/v1/customers", "created_before"),
    ("/api/v1/customers", "updated_after"),
    ("/api/v1/items", "updated_after"),
    ("/api/v1/interactions", "since"),
    ("/api/v1/feedback", "created_after"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "name"), LIST_FILTERS)
def test_a_large_utc_offset_filters_by_the_instant(reader, path, name):
    response = reader.get(path, {name: "2768-12-24T14:45:41.95+18:24"})
    assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "name"), LIST_FILTERS)
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_instant_outside_the_representable_range_is_a_400_naming_the_filter(reader, path, name, value):
    body = assert_error(reader.get(path, {name: value}), 400, "invalid")
    assert name in body["fields"], body
