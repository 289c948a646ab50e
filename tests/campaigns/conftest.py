"""Fixtures for campaign tests: an active model version with stored recommendations, campaigns."""
from __future__ import annotations

import pytest

from campaigns.models import Campaign
from recommendations.models import ModelVersion, Recommendation
from tests.factories import CustomerFactory, ItemFactory


def recommend(version: ModelVersion, customer, items, *, start_score: float = 1.0) -> None:
    """Store ``items`` as the customer's ranked recommendations (best first)."""
    Recommendation.objects.bulk_create([
        Recommendation(model_version=version, customer=customer, rank=rank, item=item,
                       score=start_score - rank * 0.01, probability=0.5 - rank * 0.01, reason=f"because #{rank}")
        for rank, item in enumerate(items, start=1)
    ])


@pytest.fixture
def version(db):
    return ModelVersion.objects.create(algorithm="test", status=ModelVersion.Status.READY, is_active=True)


@pytest.fixture
def items(db):
    return [ItemFactory(category="shoes" if i % 2 else "bags", price=10 + i) for i in range(12)]


@pytest.fixture
def make_customers(version, items):
    """Create ``n`` contactable customers, each with all ``items`` recommended in order."""

    def make(n: int, **kwargs):
        customers = CustomerFactory.create_batch(n, **kwargs)
        for customer in customers:
            recommend(version, customer, items)
        return customers

    return make


@pytest.fixture
def campaign(db):
    return Campaign.objects.create(name="Spring picks", n_items=3, holdout_share=0.0)


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server; Django's SMTP backend points at it for the test."""
    from django.core.mail.utils import DNS_NAME

    from tests.campaigns.smtp_sink import SmtpSink

    DNS_NAME._fqdn = "localhost"  # skip a slow reverse DNS lookup in EHLO
    with SmtpSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = sink.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_TIMEOUT = 10
        settings.CAMPAIGNS = {"SEND_RETRY_BACKOFF_SECONDS": 0}
        yield sink.handler


@pytest.fixture
def built_campaign(campaign, make_customers):
    """A built e-mail campaign with three pending recipients."""
    from campaigns.services.build import campaign_build

    make_customers(3)
    campaign_build(campaign=campaign)
    return campaign
