"""Campaign templates are hostile (a ``write`` API key writes them): they render in a sandbox on plain values.

The attack of issue 8, finding 2: a template that loops over ``campaign.recipients.all`` and prints
every customer's e-mail and attributes, mailed to an address the attacker controls.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from campaigns import migrations
from campaigns.models import Campaign, Recipient
from campaigns.services.render import email_context, recipient_render
from campaigns.templating import (
    MAX_TEMPLATE_BYTES,
    CampaignTemplateError,
    render_source,
    sample_context,
    template_validate,
)
from crm.services import api_key_create
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

EXFILTRATION = [
    ("html_template", "{% for r in campaign.recipients.all %}{{ r.email }} {{ r.customer.attributes }}{% endfor %}"),
    ("html_template", "{% for r in campaign.recipients.all() %}{{ r.email }}{% endfor %}"),
    ("text_template", "{{ customer.attributes }}"),
    ("text_template", "{{ customer.email }} {{ customer.campaign_recipients.all() }}"),
    ("text_template", "{{ customer.__class__.__mro__ }}"),
    ("subject_template", "{{ first_name.__class__.__base__.__subclasses__() }}"),
    ("subject_template", "{{ items[0].__class__ }}"),
    ("text_template", "{% include 'campaigns/email/body.html' %}"),
    ("text_template", "{% extends 'admin/base.html' %}"),
    ("text_template", "{% import 'x' as x %}"),
    ("html_template", "{% autoescape false %}{{ first_name }}{% endautoescape %}"),
    ("html_template", "{{ first_name|safe }}"),
    ("html_template", "{% filter safe %}{{ first_name }}{% endfilter %}"),
    ("text_template", "{{ first_name|attr('__class__') }}"),
    ("text_template", "{{ lipsum() }} {{ range(10) }} {{ cycler }}"),
    ("text_template", "{{ 'x'.ljust(100000000) }}"),
    ("text_template", "{{ 'x' * 100000000 }}"),
    ("text_template", "{{ 9 ** 9999999 }}"),
    ("text_template", "{{ '%099999999d' % 1 }}"),
    ("text_template", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"),
    ("text_template", "{% for a in items %}{% for b in items %}{% for c in items %}{% for d in items %}"
                      "{% endfor %}{% endfor %}{% endfor %}{% endfor %}"),
]


def _writer() -> APIClient:
    _, raw = api_key_create(name="attacker", scopes=["read", "write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.mark.parametrize(("field", "source"), EXFILTRATION)
def test_a_write_key_cannot_store_a_template_that_reaches_beyond_its_message(field, source):
    # given: a customer base worth stealing
    CustomerFactory(email="victim@example.com", attributes={"secret": "s3cret"})
    api = _writer()
    # when
    created = api.post("/api/v1/campaigns", {"name": "exfil", field: source}, format="json")
    # then
    assert created.status_code == 400, created.content
    body = created.json()
    assert field in body["fields"] and "template" in str(body["fields"][field])
    assert not Campaign.objects.exists()


def test_the_400_names_the_problem(campaign):
    api = _writer()
    leak = "{% for r in campaign.recipients.all %}{{ r.email }}{% endfor %}"
    loop = api.patch(f"/api/v1/campaigns/{campaign.pk}", {"html_template": leak}, format="json")
    include = api.patch(f"/api/v1/campaigns/{campaign.pk}", {"text_template": "a\n{% include 'x' %}"}, format="json")
    unknown = api.patch(f"/api/v1/campaigns/{campaign.pk}", {"html_template": "{{ first_name|safe }}"}, format="json")
    assert "has no attribute 'recipients'" in loop.json()["fields"]["html_template"][0]
    assert "line 2: {% include %} is not allowed" in include.json()["fields"]["text_template"][0]
    assert "unknown filter 'safe'" in unknown.json()["fields"]["html_template"][0]


def test_a_template_over_100_kb_is_a_clear_400(campaign):
    api = _writer()
    big = "x" * (MAX_TEMPLATE_BYTES + 1)
    response = api.patch(f"/api/v1/campaigns/{campaign.pk}", {"html_template": big}, format="json")
    assert response.status_code == 400
    assert "100,000" in str(response.json()["fields"]["html_template"])
    with pytest.raises(CampaignTemplateError, match="bytes; the limit is 100,000"):
        template_validate(source="é" * 60_000, part="text")  # 120,000 bytes in UTF-8


def test_a_template_whose_output_explodes_is_refused():
    source = "{% for a in 'abcdefghij' %}{% for b in 'abcdefghij' %}{{ 'x' * 50000 }}{% endfor %}{% endfor %}"
    with pytest.raises(CampaignTemplateError, match="renders more than 1,000,000 characters"):
        template_validate(source=source, part="text")


RESOURCE_ATTACKS = {
    "loops": ("{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}{% endfor %}{% endfor %}",
              "loops run more than 100,000 iterations"),
    "concatenation": ("{% set s = 'x' * 60000 %}{% set s = s ~ s %}{% set s = s ~ s %}{{ s|length }}",
                      "~ would build more than 100,000"),
    "addition": ("{% set s = 'x' * 60000 %}{% set s = s + s %}{{ s|length }}", "+ would build more than 100,000"),
    "filter growth": ("{% set s = '%' * 50000 %}{{ s|urlencode|urlencode|length }}", "|urlencode would build"),
    "huge integers": ("{% set n = 2 ** 64 %}{% set n = n * n %}{% set n = n * n %}{% set n = n * n %}"
                      "{% set n = n * n %}{% set n = n * n %}{% set n = n * n %}{{ n }}", "a number over 4,096 bits"),
    "captured output": ("{% set s %}{% for a in 'x' * 1000 %}{% for b in 'x' * 99 %}" + "y" * 50_000
                        + "{% endfor %}{% endfor %}{% endset %}", "{% set %}...{% endset %}"),
    "recursion": ("{% for i in items recursive %}{{ loop(items) }}{% endfor %}", "recursive loops are not allowed"),
}


@pytest.mark.parametrize("attack", RESOURCE_ATTACKS)
def test_a_template_cannot_exhaust_memory_or_cpu(attack):
    source, message = RESOURCE_ATTACKS[attack]
    with pytest.raises(CampaignTemplateError, match=message.replace("|", r"\|").replace("+", r"\+")):
        template_validate(source=source, part="text")


def test_loop_variables_and_else_still_work():
    source = ("{% for i in items %}{{ loop.index }}/{{ loop.length }}{% if loop.last %}.{% endif %}{% endfor %}"
              "|{% for i in items if i.price %}{{ i.title }}{% endfor %}|{% for i in [] %}x{% else %}none{% endfor %}")
    assert render_source(source=source, part="text", context=sample_context()) == "1/22/2.|Trail running shoes|none"


def test_the_context_holds_plain_values_only(built_campaign):
    recipient = Recipient.objects.select_related("customer", "campaign").first()
    context = email_context(recipient=recipient)

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int | float | bool)

    assert plain(context)
    assert set(context) == set(sample_context())
    assert set(context["items"][0]) == set(sample_context()["items"][0])
    assert "email" not in context["customer"] and "attributes" not in context["customer"]


def test_a_template_stored_behind_validation_still_cannot_exfiltrate(built_campaign):
    # given: an old row or a direct database write skips validation
    CustomerFactory(email="victim@example.com", attributes={"secret": "s3cret"})
    Campaign.objects.filter(pk=built_campaign.pk).update(
        text_template="{% for r in campaign.recipients.all %}{{ r.email }}{% endfor %}{{ customer.attributes }}"
    )
    recipient = Recipient.objects.select_related("customer", "campaign").first()
    # when / then: rendering fails (and sending marks the recipient failed), nothing personal comes out
    with pytest.raises(CampaignTemplateError, match="text template"):
        recipient_render(recipient=recipient)


def test_html_part_escapes_customer_and_item_data_text_part_does_not():
    context = sample_context()
    context["first_name"] = "<img src=x onerror=alert(1)>"
    context["items"][0]["title"] = "<script>alert(2)</script> & co"
    html = render_source(source="<p>{{ first_name }}</p>{% for i in items %}<b>{{ i.title }}</b>{% endfor %}",
                         part="html", context=context)
    text = render_source(source="{{ first_name }} {{ items[0].title }}", part="text", context=context)
    assert "<img" not in html and "<script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;alert(2)&lt;/script&gt; &amp; co" in html
    assert text == "<img src=x onerror=alert(1)> <script>alert(2)</script> & co"


def test_the_documented_vocabulary_renders():
    source = (
        "{{ first_name }}|{{ last_name }}|{{ name }}|{{ customer.first_name }}|{{ campaign.name }}|"
        "{% for item in items %}{{ loop.index }}:{{ item.title|upper }}:{{ item.price|default('-', true) }}:"
        "{{ item.reason|capfirst|truncatechars(12) }}{{ loop.cycle(';', '.') }}{% endfor %}|"
        "{{ items|length }} thing{{ items|length|pluralize }}|{{ items|map(attribute='title')|join(', ') }}|"
        "{{ unsubscribe_url }}"
    )
    out = render_source(source=source, part="text", context=sample_context())
    assert out == (
        "Ada|Lovelace|Ada Lovelace|Ada|Sample campaign|1:TRAIL RUNNING SHOES:129.00:Because you…;2:MERINO BEANIE:-:."
        "|2 things|Trail running shoes, Merino beanie|https://crm.example.com/t/u/sample/"
    )


OLD_DJANGO_DEFAULTS = {
    "subject": "{% autoescape off %}{% if first_name %}{{ first_name }}, we{% else %}We{% endif %} picked "
               "{{ items|length }} thing{{ items|length|pluralize }} for you{% endautoescape %}",
    "text": "{% autoescape off %}Hello{% if first_name %} {{ first_name }}{% endif %},\n{% for item in items %}"
            "{{ forloop.counter }}. {{ item.title }}{% empty %}nothing{% endfor %}\n"
            "{{ customer.full_name|default:\"friend\" }}{% comment %}note{% endcomment %}{% endautoescape %}",
}


def _conversion_migration():
    """The migration module, found by name (the number may change when migrations are re-chained)."""
    name = next(Path(migrations.__file__).parent.glob("*_campaign_templates_sandboxed.py")).stem
    return importlib.import_module(f"campaigns.migrations.{name}")


def test_the_migration_converts_old_django_templates():
    migration = _conversion_migration()
    subject = migration.django_to_jinja(OLD_DJANGO_DEFAULTS["subject"])
    text = migration.django_to_jinja(OLD_DJANGO_DEFAULTS["text"])
    assert render_source(source=subject, part="subject", context=sample_context()) == "Ada, we picked 2 things for you"
    assert render_source(source=text, part="text", context=sample_context()) == (
        "Hello Ada,\n1. Trail running shoes2. Merino beanie\nAda Lovelace"
    )


@pytest.mark.django_db(transaction=True)
def test_migrating_rewrites_stored_campaigns():
    # given: the database before this release, with a campaign in the old syntax
    migration = _conversion_migration().__name__.rpartition(".")[2]
    before = [("campaigns", "0001_initial")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    old = old_apps.get_model("campaigns", "Campaign").objects.create(
        name="old", subject_template=OLD_DJANGO_DEFAULTS["subject"], text_template=OLD_DJANGO_DEFAULTS["text"],
    )
    # when
    executor = MigrationExecutor(connection)
    executor.migrate([("campaigns", migration)])
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    # then
    campaign = Campaign.objects.get(pk=old.pk)
    assert "forloop" not in campaign.text_template and "autoescape" not in campaign.subject_template
    campaign.full_clean()


def test_admin_form_rejects_a_hostile_template(staff_client, campaign):
    url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    form = staff_client.get(url).context["adminform"].form
    data = {k: ("" if v is None else v) for k, v in form.initial.items() if k in form.fields}
    data.update(html_template="{% for r in campaign.recipients.all %}{{ r.email }}{% endfor %}",
                send_at_0="", send_at_1="")
    response = staff_client.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert "has no attribute" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.html_template == ""


@pytest.mark.parametrize("attribute", ["title", "missing", "items", "get", "keys", "pop", "update", "__class__",
                                       "__init__", "_private", "fromkeys", "copy"])
def test_attribute_lookup_on_a_dict_is_jinjas(attribute):
    """The sandbox reads ``item.title`` from a plain dict without Jinja's AttributeError detour; for
    every name (a key, a missing key, a dict method, a mutating one, a dunder) the result is what
    Jinja's own sandbox gives: the value, the method, or the same kind of undefined."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from campaigns.templating import _env_for

    value = {"title": "Shoes", "items": "a key named items", "get": "a key named get", "_private": "x"}
    ours = _env_for("html").getattr(value, attribute)
    jinjas = ImmutableSandboxedEnvironment.getattr(_env_for("html"), value, attribute)
    assert type(ours) is type(jinjas)
    if hasattr(ours, "_undefined_name"):
        assert (ours._undefined_name, ours._undefined_obj) == (jinjas._undefined_name, jinjas._undefined_obj)
    else:
        assert ours == jinjas


def test_a_template_reads_keys_and_calls_dict_methods_as_before():
    """``item.title``, ``item.get('price')`` and ``customer.items()`` render; an unknown key fails."""
    context = sample_context()
    source = ("{{ items[0].title }}|{{ items[1].get('price') or '-' }}|"
              "{% for k, v in customer.items() %}{{ k }};{% endfor %}")
    assert render_source(source=source, part="text", context=context) == (
        "Trail running shoes|-|first_name;last_name;name;")
    with pytest.raises(CampaignTemplateError):
        render_source(source="{{ items[0].nope }}", part="text", context=context)
