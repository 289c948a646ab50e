"""A marketer's tour of the admin in a real browser: log in, find a customer, curate the catalogue,
triage feedback, preview a segment, check the serving model version."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.models import Feedback, Interaction, Item
from recommendations.models import ModelVersion, Recommendation, TrainingRun
from tests.factories import CustomerFactory, FeedbackFactory, InteractionFactory, ItemFactory, SegmentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "tour-password-1"
CATALOGUE = [
    ("SHOE-TRAIL", "Trail running shoes", "shoes", "129.00"),
    ("SHOE-CITY", "City leather sneakers", "shoes", "99.00"),
    ("SHOE-KIDS", "Kids' light-up sneakers", "shoes", "49.00"),
    ("BAG-ROLL", "Roll-top commuter backpack", "bags", "89.00"),
    ("BAG-TOTE", "Organic cotton tote", "bags", "19.00"),
    ("HAT-WOOL", "Merino beanie", "hats", "29.00"),
]
PEOPLE = [
    ("c-1001", "Anna", "Schmidt", "DE"), ("c-1002", "Lukas", "Weber", "DE"), ("c-1003", "Camille", "Martin", "FR"),
    ("c-1004", "Sofia", "Rossi", "IT"), ("c-1005", "Jonas", "Becker", "DE"), ("c-1006", "Emma", "Dubois", "FR"),
]


def build_shop() -> dict:
    now = timezone.now()
    items = {
        sku: ItemFactory(sku=sku, title=title, category=category, price=Decimal(price),
                         description=f"{title}, part of our {category} range.", tags=[category])
        for sku, title, category, price in CATALOGUE
    }
    customers = [
        CustomerFactory(external_id=eid, first_name=first, last_name=last, country=country,
                        email=f"{first.lower()}.{last.lower()}@example.com")
        for eid, first, last, country in PEOPLE
    ]
    kinds = [Interaction.Kind.VIEW, Interaction.Kind.CLICK, Interaction.Kind.ADD_TO_CART, Interaction.Kind.PURCHASE]
    for n, customer in enumerate(customers):
        for m, item in enumerate(list(items.values())[n % 3: n % 3 + 4]):
            InteractionFactory(customer=customer, item=item, kind=kinds[m % 4], occurred_at=now - timedelta(days=m + n))
    FeedbackFactory(customer=customers[0], item=items["SHOE-KIDS"], kind=Feedback.Kind.COMPLAINT,
                    comment="The lights stopped working after two days.")
    FeedbackFactory(customer=customers[2], item=items["BAG-ROLL"], kind=Feedback.Kind.LIKE, comment="Love it!")
    FeedbackFactory(customer=customers[3], item=items["HAT-WOOL"], kind=Feedback.Kind.NOT_INTERESTED)
    segment = SegmentFactory(
        name="German shoe fans",
        description="Customers in Germany who looked at shoes recently.",
        rules={"match": "all", "conditions": [
            {"field": "country", "op": "in", "value": ["DE"]},
            {"field": "interacted_with_category", "value": "shoes", "days": 90},
        ]},
    )
    metrics = {
        "test": {"ndcg@10": 0.312, "hr@10": 0.544, "mrr": 0.241, "coverage@10": 0.83},
        "validation": {"ndcg@10": 0.301, "hr@10": 0.531, "mrr": 0.236},
        "candidates": {"popularity": {"ndcg@10": 0.118}, "ease": {"ndcg@10": 0.274}, "sequential": {"ndcg@10": 0.301}},
        "protocol": "leave-last-out, full ranking",
    }
    old = ModelVersion.objects.create(
        algorithm="ease", status=ModelVersion.Status.RETIRED, device="cpu",
        metrics={"test": {"ndcg@10": 0.268, "hr@10": 0.497}}, params={"l2": 250.0},
    )
    active = ModelVersion.objects.create(
        algorithm="sequential", status=ModelVersion.Status.READY, is_active=True, activated_at=now, previous=old,
        device="cuda", metrics=metrics, params={"n_embd": 128, "n_layer": 2, "epochs": 20, "lr": 0.001},
        data_stats={"customers": 6, "items": 6, "interactions": 24, "dropped_duplicates": 0},
        timings={"embed_seconds": 3.1, "dataset_seconds": 0.4, "train_seconds": 41.7},
    )
    for customer in customers:
        for rank, item in enumerate(items.values(), start=1):
            Recommendation.objects.create(model_version=active, customer=customer, rank=rank, item=item,
                                          score=2.0 - rank / 4, probability=0.6 / rank,
                                          reason=f"because you viewed {item.category}")
    run = TrainingRun.objects.create(
        algorithm="auto", status=TrainingRun.Status.RUNNING, stage="training sequential", progress=0.62,
        started_at=now - timedelta(minutes=3),
        log="embedding item texts\nembedded 6 of 6 items (3.1s)\ndataset: 6 customers, 6 items\nfitting popularity\n"
            "fitting ease\nfitting sequential\nepoch 1/20 loss 0.693\nepoch 2/20 loss 0.512",
    )
    return {"customers": customers, "items": items, "segment": segment, "old": old, "active": active, "run": run}


def test_marketer_tour(live_server, page, screenshot, django_user_model):
    # given
    shop = build_shop()
    django_user_model.objects.create_superuser("marketer", "marketer@example.com", PASSWORD)
    base = live_server.url

    # log in
    page.goto(f"{base}/admin/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
    assert page.locator("#content-main a:text-is('Customers')").first.is_visible()
    screenshot("01-index")

    # customers: list, search, open one
    page.goto(f"{base}/admin/crm/customer/")
    assert page.locator("#result_list tbody tr").count() == len(PEOPLE)
    screenshot("02-customers")
    page.fill("#searchbar", "c-1003")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1
    page.click("#result_list tbody tr th a")
    page.wait_for_selector("text=Recent interactions (latest 20)")
    inline = page.locator("#interactions-group")
    assert inline.is_visible() and inline.locator("tbody tr.has_original").count() == 4
    assert page.locator("text=because you viewed").first.is_visible()
    screenshot("03-customer", full_page=True)

    # catalogue: filter by category, bulk deactivate
    page.goto(f"{base}/admin/crm/item/")
    page.click("#changelist-filter a:text-is('shoes')")
    page.wait_for_url(re.compile(r"category=shoes"))
    assert page.locator("#result_list tbody tr").count() == 3
    page.check("#action-toggle")
    page.select_option("select[name=action]", "deactivate")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist")
    assert "3 item(s) deactivated." in page.locator("ul.messagelist").inner_text()
    screenshot("04-items-deactivated")
    assert Item.objects.filter(category="shoes", active=True).count() == 0
    assert Item.objects.filter(active=True).count() == 3

    # feedback triage: new complaints -> deactivate the items they are about
    page.goto(f"{base}/admin/crm/feedback/?status__exact=new&kind__exact=complaint")
    assert page.locator("#result_list tbody tr").count() == 1
    page.check("#result_list tbody tr input.action-select")
    page.select_option("select[name=action]", "mark_reviewed")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist")
    page.goto(f"{base}/admin/crm/feedback/")
    screenshot("05-feedback")
    assert Feedback.objects.get(kind=Feedback.Kind.COMPLAINT).status == Feedback.Status.REVIEWED

    # segment preview
    page.goto(f"{base}/admin/crm/segment/{shop['segment'].pk}/change/")
    preview = page.locator(".tailored-segment-preview")
    assert "3 customers" in preview.inner_text()
    assert "c-1001" in preview.inner_text() and "c-1003" not in preview.inner_text()
    screenshot("06-segment", full_page=True)

    # model registry: the serving version's metrics, then roll back
    page.goto(f"{base}/admin/recommendations/modelversion/")
    assert "0.3120" in page.locator("#result_list").inner_text()
    page.click(f"#result_list a:text-is('v{shop['active'].pk}')")
    page.wait_for_selector("table.tailored-metrics")
    screenshot("07-model-version", full_page=True)
    page.click("#rollback-version")
    page.wait_for_selector("ul.messagelist")
    assert "Rolled back" in page.locator("ul.messagelist").inner_text()
    assert ModelVersion.objects.get(is_active=True).pk == shop["old"].pk

    # a training run in progress
    page.goto(f"{base}/admin/recommendations/trainingrun/{shop['run'].pk}/change/")
    assert page.locator(".tailored-progress").is_visible()
    assert page.locator("#run-live").is_visible()  # live status; the curve polls while it runs
    screenshot("08-training-run", full_page=True)
