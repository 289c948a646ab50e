"""Cursor pagination for the big lists (customers, items, interactions, feedback).

``?limit=`` sets the page size (default ``API_PAGE_SIZE``, at most ``API_MAX_PAGE_SIZE``); follow
``next`` until it is null. Cursors are stable under inserts, unlike page numbers.
"""
from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    ordering = "-id"
    page_size_query_param = "limit"
    cursor_query_param = "cursor"

    def get_page_size(self, request):
        self.page_size = settings.API_PAGE_SIZE
        self.max_page_size = settings.API_MAX_PAGE_SIZE
        return super().get_page_size(request)
