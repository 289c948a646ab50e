"""What ``OPTIONS`` answers on the API: the endpoint's name, description and media types.

DRF's default also lists the fields of the serializer each write method would use, by calling
``view.get_serializer()``; our views build their input serializers per method (bulk endpoints read
raw lists), so that call asserted and every ``OPTIONS`` from a key with the ``write`` scope was a
500 (found by bench/drill_fuzz.py). Fields are documented by the OpenAPI schema at /api/schema/.
"""
from __future__ import annotations

from rest_framework.metadata import SimpleMetadata


class ApiMetadata(SimpleMetadata):
    def determine_actions(self, request, view) -> dict:
        return {}
