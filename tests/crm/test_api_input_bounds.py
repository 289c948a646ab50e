"""Hostile values that used to be accepted and then broke things (security review, finding 10)."""
import pytest
from django.utils import timezone

from campaigns.models import Campaign, Recipient
from crm.api.validation import TIMESTAMP_OUT_OF_RANGE, UNSAFE_KEY_MESSAGE
from crm.models import Customer, Item, Segment
from crm.segments import SegmentRuleError, validate_rules
from tests.conftest import assert_error
from tests.factories import CustomerFactory, ItemFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z"])
def test_event_timestamps_outside_the_sane_range_are_refused(writer, when):
    CustomerFactory(external_id="c1")
    ItemFactory(sku="i1")
    event = {"event_id": "e1", "customer": "c1", "item": "i1", "kind": "view", "occurred_at": when}
    body = assert_error(writer.post("/api/v1/interactions/bulk", {"events": [event]}, format="json"), 400)
    assert TIMESTAMP_OUT_OF_RANGE in body["fields"]["events[0].occurred_at"][0]


def test_event_more_than_a_day_in_the_future_is_refused_but_a_little_skew_is_fine(writer):
    CustomerFactory(external_id="c1")
    ItemFactory(sku="i1")
    soon, far = timezone.now() + timezone.timedelta(hours=2), timezone.now() + timezone.timedelta(days=2)
    events = [{"event_id": f"e{n}", "customer": "c1", "item": "i1", "kind": "view", "occurred_at": t.isoformat()}
              for n, t in enumerate([soon, far])]
    body = assert_error(writer.post("/api/v1/interactions/bulk", {"events": events}, format="json"), 400)
    assert list(body["fields"]) == ["events[1].occurred_at"]


def test_import_refuses_out_of_range_timestamps_naming_the_row(tmp_path):
    from django.core.management import CommandError, call_command

    (tmp_path / "interactions.csv").write_text("customer_id,item_id,kind,timestamp\nc1,i1,view,0001-01-01T00:00:00\n")
    with pytest.raises(CommandError, match=r"interactions.csv:2: 'timestamp' '0001-01-01T00:00:00': Timestamps must"):
        call_command("import_dataset", "--format", "canonical", "--no-progress", str(tmp_path))


@pytest.mark.parametrize("bad", ["a/b", "../admin", "x?y", "with#hash", "pct%2F", "tab\tin"])
def test_ids_unsafe_in_urls_are_refused_at_creation(writer, bad):
    """An id with '/' used to be stored and could then never be read or erased through the API."""
    body = assert_error(writer.post("/api/v1/customers", {"external_id": bad}, format="json"), 400)
    assert body["fields"]["external_id"] == [UNSAFE_KEY_MESSAGE]
    assert_error(writer.post("/api/v1/items", {"sku": bad, "title": "t"}, format="json"), 400)
    assert_error(writer.post("/api/v1/customers/bulk", {"customers": [{"external_id": bad}]}, format="json"), 400)
    event = {"event_id": "e", "customer": bad, "item": "i", "kind": "view"}
    assert_error(writer.post("/api/v1/interactions/bulk?unknown=create", {"events": [event]}, format="json"), 400)
    assert not Customer.objects.exists() and not Item.objects.exists()


def test_existing_ids_with_a_slash_can_still_be_read_and_erased(writer):
    """Rows created before the check (imports, old versions) stay reachable: the routes use the path converter."""
    Customer.objects.create(external_id="legacy/42")
    Item.objects.create(sku="cat/sku-1", title="Legacy")
    assert writer.get("/api/v1/customers/legacy/42").json()["external_id"] == "legacy/42"
    assert writer.get("/api/v1/items/cat/sku-1").json()["sku"] == "cat/sku-1"
    assert writer.delete("/api/v1/customers/legacy/42").status_code == 204
    assert not Customer.objects.filter(external_id="legacy/42").exists()
    # the other apps' sub-routes still win for ordinary ids
    CustomerFactory(external_id="plain")
    assert writer.get("/api/v1/customers/plain/recommendations").status_code == 200


def test_frequency_cap_days_is_bounded(make_client):
    admin = make_client("admin")
    body = assert_error(admin.post("/api/v1/campaigns", {"name": "x", "frequency_cap_days": 2**40}, format="json"),
                        400)
    assert "frequency_cap_days" in body["fields"]
    assert admin.post("/api/v1/campaigns", {"name": "x", "frequency_cap_days": 3650}, format="json").status_code == 201


@pytest.mark.parametrize("rules", [
    {"conditions": [{"field": "purchased_within_days", "value": 10**12}]},
    {"conditions": [{"field": "interacted_with_category", "value": "shoes", "days": 10**6}]},
    {"conditions": [{"field": "attribute", "key": "tier__regex", "value": ".*"}]},
])
def test_segment_rules_that_used_to_crash_are_refused(rules):
    with pytest.raises(SegmentRuleError):
        validate_rules(rules)


def test_admin_pages_survive_a_segment_saved_before_the_bounds(staff_client):
    """A stored rule with 10^12 days used to 500 the segment pages and the customer filter."""
    segment = Segment.objects.create(name="ancient")
    Segment.objects.filter(pk=segment.pk).update(rules={"conditions": [{"field": "purchased_within_days",
                                                                        "value": 10**12}]})
    CustomerFactory()
    assert staff_client.get("/admin/crm/segment/").status_code == 200
    assert "at most 3650" in staff_client.get(f"/admin/crm/segment/{segment.pk}/change/").content.decode()
    assert staff_client.get(f"/admin/crm/customer/?segment={segment.pk}").status_code == 200


def test_attribute_keys_cannot_choose_orm_lookups_in_the_admin(staff_client):
    response = staff_client.post("/admin/crm/segment/add/", {
        "name": "regex", "description": "", "rules": '{"conditions": [{"field": "attribute", "key": "tier__regex",'
                                                     ' "value": "^g"}]}'})
    assert response.status_code == 200 and "must not contain" in response.content.decode()
    assert not Segment.objects.exists()


def test_attributes_are_size_limited(writer, settings):
    big = {"blob": "x" * (16 * 1024)}
    body = assert_error(writer.post("/api/v1/customers", {"external_id": "big", "attributes": big}, format="json"),
                        400)
    assert "the limit is 16384" in body["fields"]["attributes"][0]
    assert_error(writer.post("/api/v1/items", {"sku": "big", "title": "t", "attributes": big}, format="json"), 400)


def test_feedback_can_only_name_the_same_customers_recipient(writer):
    """Feedback used to be attachable to another customer's campaign message (skewing their results)."""
    alice, bob = CustomerFactory(external_id="alice"), CustomerFactory(external_id="bob")
    campaign = Campaign.objects.create(name="c")
    bobs = Recipient.objects.create(campaign=campaign, customer=bob, email=bob.email)
    body = assert_error(writer.post("/api/v1/feedback", {"customer": "alice", "kind": "complaint",
                                                         "campaign_recipient_id": bobs.pk}, format="json"), 400)
    assert body["fields"]["campaign_recipient_id"] == [f"Campaign recipient {bobs.pk} is not a recipient of customer "
                                                       "'alice'."]
    assert_error(writer.post("/api/v1/feedback", {"customer": "alice", "kind": "complaint",
                                                  "campaign_recipient_id": 10**9}, format="json"), 400)
    ok = writer.post("/api/v1/feedback", {"customer": "bob", "kind": "complaint", "campaign_recipient_id": bobs.pk},
                     format="json")
    assert ok.status_code == 201 and alice.feedback.count() == 0


@pytest.mark.parametrize("query", ["/api/v1/customers?created_after=0001-01-01T00:00:00%2B05:00",
                                   "/api/v1/interactions?until=9999-12-31T23:59:59-05:00",
                                   "/api/v1/feedback?created_after=0001-01-01"])
def test_date_filters_at_the_ends_of_the_calendar_are_a_400(reader, query):
    """Year 1 or 9999 with an offset used to overflow inside the database driver: a 500."""
    body = assert_error(reader.get(query), 400, "invalid")
    assert "between the years 1900 and 2999" in next(iter(body["fields"].values()))[0]
