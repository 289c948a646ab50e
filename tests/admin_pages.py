"""What the admin tests of every app share (tests/<app>/test_admin.py): the registered pages, URLs, a model
version to look at, and ``page_tests``, the checks that each of an app's pages renders.

Pages are discovered from ``admin.site._registry`` (crm, recommendations and campaigns when present), so a
new ModelAdmin is covered as soon as it is registered. The ``shop`` the pages show is in tests/conftest.py.
"""
from __future__ import annotations

import contextlib

import pytest
from django.contrib import admin
from django.db import transaction
from django.urls import reverse

from crm.models import Customer, Item
from recommendations.models import ModelVersion
from tests import factories

APPS = ("crm", "recommendations", "campaigns")
MODELS = sorted(
    (m for m in admin.site._registry if m._meta.app_label in APPS), key=lambda m: m._meta.label
)


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _version(**fields) -> ModelVersion:
    defaults = {
        "algorithm": "sequential",
        "status": ModelVersion.Status.READY,
        "device": "cpu",
        "params": {"n_embd": 64, "epochs": 3, "lr": 0.001},
        "data_stats": {"customers": 3, "items": 4, "interactions": 12},
        "metrics": {
            "test": {"ndcg@10": 0.4123, "hr@10": 0.6, "mrr": 0.31},
            "validation": {"ndcg@10": 0.39, "hr@10": 0.55},
            "candidates": {"popularity": {"ndcg@10": 0.2}, "sequential": {"ndcg@10": 0.39}},
            "protocol": "leave-last-out, full ranking",
        },
        "timings": {"embed_seconds": 1.2, "train_seconds": 10.5},
    }
    return ModelVersion.objects.create(**{**defaults, **fields})


def _extra_rows(*, customer: Customer, item: Item) -> None:
    """Rows for models other apps own: their factories when tests/factories.py has them, else a best guess."""
    from django.apps import apps

    from crm.models import ApiKey

    if not ApiKey.objects.exists():
        try:
            from crm.services import api_key_create

            api_key_create(name="shop", scopes=["read"])
        except ImportError:  # pragma: no cover - the API layer is not there yet
            pass
    for model in MODELS:
        factory = getattr(factories, f"{model.__name__}Factory", None)
        if factory is not None and not model.objects.exists():
            with contextlib.suppress(Exception), transaction.atomic():  # a missing row fails test_change_form_renders
                factory()
    if apps.is_installed("campaigns"):
        with contextlib.suppress(Exception), transaction.atomic():
            campaign = apps.get_model("campaigns", "Campaign").objects.create(name="Spring picks")
            recipient = apps.get_model("campaigns", "Recipient").objects.create(campaign=campaign, customer=customer)
            apps.get_model("campaigns", "Click").objects.create(recipient=recipient, item=item)


def page_tests(app_label: str):
    """The page checks, for the models ``app_label`` registers: assign them to test names in its test_admin.py."""
    models = [m for m in MODELS if m._meta.app_label == app_label]

    @pytest.mark.parametrize("model", models, ids=lambda m: m._meta.label)
    def test_changelist_renders(staff_client, shop, model):
        """Each changelist answers 200, also with a search term when the admin has search fields."""
        # when
        response = staff_client.get(_url(model, "changelist"))
        # then
        assert response.status_code == 200
        if admin.site._registry[model].search_fields:
            assert staff_client.get(_url(model, "changelist"), {"q": "cust"}).status_code == 200


    @pytest.mark.parametrize("model", models, ids=lambda m: m._meta.label)
    def test_add_form_renders_or_is_forbidden(staff_client, shop, rf, admin_user, model):
        """The add form renders where adding by hand makes sense; job-written models refuse it (403)."""
        # given
        request = rf.get("/")
        request.user = admin_user
        can_add = admin.site._registry[model].has_add_permission(request)
        # when
        response = staff_client.get(_url(model, "add"))
        # then
        assert response.status_code == (200 if can_add else 403)


    @pytest.mark.parametrize("model", models, ids=lambda m: m._meta.label)
    def test_change_form_renders(staff_client, shop, model):
        """Each change (or read-only view) page answers 200 for a stored row."""
        # given
        obj = model.objects.first()
        assert obj is not None, f"no {model._meta.label} row: add a {model.__name__}Factory to tests/factories.py"
        # when
        response = staff_client.get(_url(model, "change", obj.pk))
        # then
        assert response.status_code == 200

    return test_changelist_renders, test_add_form_renders_or_is_forbidden, test_change_form_renders
