"""The campaigns' admin pages (campaigns, recipients, clicks, deliverability, outbound webhooks): every page
renders. Their actions and panels are tested in test_cockpit_admin.py and test_delivery_admin.py.

What the apps' admin tests share is in tests/admin_pages.py; the shop they look at in tests/conftest.py.
"""
from __future__ import annotations

from tests.admin_pages import page_tests

test_changelist_renders, test_add_form_renders_or_is_forbidden, test_change_form_renders = page_tests("campaigns")
