"""manage.py import_dataset --format canonical: validation first, idempotent writes, --skip-bad."""
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from crm.importers import DatasetImportError, dataset_import
from crm.models import Customer, Interaction, Item

FIXTURES = Path(__file__).parent / "fixtures" / "canonical"

pytestmark = pytest.mark.django_db


def run_import(directory: Path, *args: str) -> str:
    out = StringIO()
    call_command("import_dataset", "--format", "canonical", "--no-progress", *args, str(directory), stdout=out)
    return out.getvalue()


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A writable copy of the canonical fixture folder."""
    target = tmp_path / "canonical"
    shutil.copytree(FIXTURES, target)
    return target


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), Item.objects.count(), Interaction.objects.count()


def test_imports_customers_items_and_events():
    """Defined rows carry their columns; unknown ids in interactions.csv become bare rows."""
    # when
    output = run_import(FIXTURES)
    # then
    assert counts() == (3, 3, 4)
    anna = Customer.objects.get(external_id="c1")
    assert (anna.country, anna.attributes, anna.email) == ("DE", {"tier": "gold"}, "anna@example.com")
    assert anna.email_opt_in is True
    event = anna.consent_events.get()  # consent set by an import is recorded like any other change
    assert (event.action, event.channel, event.actor) == ("opt_in", "import", "import_dataset command")
    assert Customer.objects.get(external_id="c2").email_opt_in is False
    bare = Customer.objects.get(external_id="c3")
    assert (bare.email, bare.email_opt_in, bare.attributes) == ("", False, {})
    shoe = Item.objects.get(sku="i1")
    assert (shoe.price, shoe.tags, shoe.url, shoe.category) == (
        Decimal("129.99"), ["trail", "shoe"], "https://shop.example.com/p/i1", "running shoes"
    )
    assert Item.objects.get(sku="i2").tags == ["espresso", "beans"]
    assert Item.objects.get(sku="i2").in_stock is False
    assert Item.objects.get(sku="i3").title == "i3"
    assert "interactions.csv: 5 rows read, 4 created, 1 already present, 0 skipped" in output
    assert "elapsed:" in output


def test_events_have_deterministic_ids_and_utc_times():
    """Same (customer, item, kind, instant) collapses; naive timestamps are UTC; source is import."""
    # when
    run_import(FIXTURES)
    # then
    purchase = Interaction.objects.get(kind="purchase")
    assert purchase.occurred_at == datetime(2024, 3, 1, 8, 5, tzinfo=UTC)
    assert (purchase.value, purchase.quantity, purchase.source) == (129.99, 1, Interaction.Source.IMPORT)
    assert purchase.event_id.startswith("import:canonical:")
    cart = Interaction.objects.get(kind="add_to_cart")
    assert (cart.occurred_at, cart.quantity) == (datetime(2024, 3, 2, 9, 0, tzinfo=UTC), 2)
    assert Interaction.objects.filter(customer__external_id="c1", kind="view").count() == 1


def test_second_run_adds_nothing():
    # given
    run_import(FIXTURES)
    event_ids = set(Interaction.objects.values_list("event_id", flat=True))
    # when
    output = run_import(FIXTURES)
    # then
    assert counts() == (3, 3, 4)
    assert set(Interaction.objects.values_list("event_id", flat=True)) == event_ids
    assert "interactions.csv: 5 rows read, 0 created, 5 already present, 0 skipped" in output
    assert "customers.csv: 2 rows read, 0 created, 2 already present, 0 skipped" in output


def test_re_import_updates_the_catalogue(dataset):
    """Items and customers are upserted: changed columns overwrite, absent columns are left alone."""
    # given
    run_import(dataset)
    (dataset / "items.csv").write_text("item_id,title,description,category,price\ni1,Trail Shoe v2,,running shoes,99\n")
    # when
    run_import(dataset)
    # then
    shoe = Item.objects.get(sku="i1")
    assert (shoe.title, shoe.price, shoe.tags) == ("Trail Shoe v2", Decimal("99.00"), ["trail", "shoe"])


def test_only_interactions_is_enough(tmp_path):
    # given
    shutil.copy(FIXTURES / "interactions.csv", tmp_path / "interactions.csv")
    # when
    run_import(tmp_path)
    # then
    assert counts() == (3, 3, 4)
    assert Item.objects.get(sku="i1").title == "i1"


BAD_ROWS = [
    ("interactions.csv", "c1,i1,teleport,2024-03-01T10:00:00Z,,\n", "'kind' must be one of"),
    ("interactions.csv", "c1,i1,view,yesterday,,\n", "'timestamp' is not an ISO 8601 date-time"),
    ("interactions.csv", "c1,i1,view,2024-03-01,0,\n", "'quantity' must be an integer >= 1"),
    ("interactions.csv", "c1,i1,view,2024-03-01,1.5,\n", "'quantity' must be an integer >= 1"),
    ("interactions.csv", "c1,i1,purchase,2024-03-01,-2,\n", "'quantity' must be an integer >= 1"),
    ("interactions.csv", "c1,i1,view,2024-03-01,1,lots\n", "'value' is not a number"),
    ("interactions.csv", ",i1,view,2024-03-01,,\n", "'customer_id' is required"),
    ("interactions.csv", "c1,i1,view,2024-03-01,,,extra\n", "7 fields, the header has 6"),
    ("items.csv", "i9,Bad,,misc,-1,,,,\n", "'price' must be a number >= 0"),
    ("items.csv", "i9,Bad,,misc,cheap,,,,\n", "'price' is not a number"),
    ("items.csv", "i9,Bad,,misc,1,,ftp://x,,\n", "'url' is not an http(s) URL"),
    ("items.csv", "i9,Bad,,misc,1,,,maybe,\n", "'active' must be true or false"),
    ("customers.csv", "c9,DE,{not json},,,,\n", "'attributes_json' is not valid JSON"),
    ("customers.csv", 'c9,DE,"[1, 2]",,,,\n', "'attributes_json' must be a JSON object, got list"),
    ("customers.csv", "c9,Atlantis,,,,,\n", "'country' must be an ISO 3166-1 alpha-2 code or a country name"),
    ("customers.csv", "c9,DE,,not-an-email,,,\n", "'email' is not an e-mail address"),
]


@pytest.mark.parametrize(("filename", "row", "reason"), BAD_ROWS)
def test_malformed_row_stops_the_import_before_anything_is_written(dataset, filename, row, reason):
    """The error names the file and the line; the database is unchanged."""
    # given
    lines = (dataset / filename).read_text().count("\n")
    with open(dataset / filename, "a") as handle:
        handle.write(row)
    # when
    with pytest.raises(CommandError) as excinfo:
        run_import(dataset)
    # then
    assert f"{filename}:{lines + 1}: {reason}" in str(excinfo.value)
    assert counts() == (0, 0, 0)


def test_missing_column_is_reported_on_line_one(dataset):
    # given
    (dataset / "interactions.csv").write_text("customer_id,item_id,timestamp\nc1,i1,2024-01-01\n")
    # when / then
    with pytest.raises(CommandError, match=r"interactions.csv:1: missing column\(s\) kind"):
        run_import(dataset)
    assert counts() == (0, 0, 0)


def test_missing_required_file_and_unknown_folder(tmp_path):
    with pytest.raises(CommandError, match="interactions.csv: required file is missing"):
        run_import(tmp_path)
    with pytest.raises(CommandError, match="not a directory"):
        run_import(tmp_path / "nope")
    with pytest.raises(DatasetImportError, match="Unknown format 'parquet'"):
        dataset_import(fmt="parquet", directory=tmp_path)


def test_every_bad_row_is_listed(dataset):
    # given
    with open(dataset / "interactions.csv", "a") as handle:
        handle.write("c1,i1,teleport,2024-03-01,,\nc1,i1,view,never,,\n")
    # when
    with pytest.raises(DatasetImportError) as excinfo:
        dataset_import(fmt="canonical", directory=dataset)
    # then
    assert [str(e) for e in excinfo.value.errors] == [
        "interactions.csv:7: 'kind' must be one of add_to_cart, click, purchase, rating, view, wishlist, "
        "got 'teleport'.",
        "interactions.csv:8: 'timestamp' is not an ISO 8601 date-time: 'never'.",
    ]


def test_skip_bad_imports_the_good_rows_and_reports_the_rest(dataset):
    # given
    with open(dataset / "interactions.csv", "a") as handle:
        handle.write("c1,i1,teleport,2024-03-01,,\n")
    with open(dataset / "items.csv", "a") as handle:
        handle.write("i9,Bad,,misc,-5,,,,\n")
    # when
    output = run_import(dataset, "--skip-bad")
    # then
    assert counts() == (3, 3, 4)
    assert "skipped items.csv:4: 'price' must be a number >= 0, got '-5'." in output
    assert "skipped interactions.csv:7: 'kind' must be one of" in output
    assert "interactions.csv: 6 rows read, 4 created, 1 already present, 1 skipped" in output
    assert "items.csv: 3 rows read, 2 created, 0 already present, 1 skipped" in output


def test_exports_with_country_names_epoch_times_and_float_quantities_import(tmp_path):
    """What data-frame exports of real shops look like: names not codes, epoch seconds, "2.0"."""
    (tmp_path / "customers.csv").write_text(
        "customer_id,country,attributes_json\nu1,United Kingdom,\nu2,EIRE,\nu3,Unspecified,\n"
    )
    (tmp_path / "interactions.csv").write_text(
        "customer_id,item_id,kind,timestamp,quantity,value\n"
        "u1,p1,purchase,1291191960,2.0,5.1\nu2,p1,purchase,2010-12-01 08:26:00,,\n"
    )
    run_import(tmp_path)
    assert dict(Customer.objects.values_list("external_id", "country")) == {"u1": "GB", "u2": "IE", "u3": ""}
    first = Interaction.objects.get(customer__external_id="u1")
    assert first.quantity == 2 and first.occurred_at.year == 2010


def test_an_item_without_a_title_is_named_by_its_id(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,title,description,category,price\np9,,,misc,1\n")
    (tmp_path / "interactions.csv").write_text("customer_id,item_id,kind,timestamp\nu1,p9,purchase,2024-01-01\n")
    run_import(tmp_path)
    assert Item.objects.get(sku="p9").title == "p9"


ORDERS = (
    "customer_id,item_id,kind,timestamp,quantity,value,order_id\n"
    "u1,p1,purchase,2024-01-01T10:00:00Z,1,2.5,A-1\n"
    "u1,p2,purchase,2024-01-01T10:00:00Z,2,4.0,A-1\n"
    # the same product in a second order placed in the same second: a second purchase, not a duplicate
    "u1,p1,purchase,2024-01-01T10:00:00Z,1,2.5,A-2\n"
    "u2,p1,purchase,2024-01-02T09:00:00Z,1,2.5,\n"
)


def test_order_ids_are_imported_and_keep_two_orders_apart(tmp_path):
    (tmp_path / "interactions.csv").write_text(ORDERS)
    run_import(tmp_path)
    rows = sorted(Interaction.objects.values_list("customer__external_id", "item__sku", "order_id"))
    assert rows == [("u1", "p1", "A-1"), ("u1", "p1", "A-2"), ("u1", "p2", "A-1"), ("u2", "p1", "")]
    # and a re-import of the same file is idempotent
    run_import(tmp_path)
    assert Interaction.objects.count() == 4


def test_a_file_without_order_ids_keeps_its_event_ids(tmp_path):
    """Adding the column to the format must not change the ids of rows imported before it existed."""
    (tmp_path / "interactions.csv").write_text("customer_id,item_id,kind,timestamp\nu1,p1,purchase,2024-01-01\n")
    run_import(tmp_path)
    before = Interaction.objects.get().event_id
    (tmp_path / "interactions.csv").write_text(
        "customer_id,item_id,kind,timestamp,order_id\nu1,p1,purchase,2024-01-01,\n"
    )
    run_import(tmp_path)
    assert list(Interaction.objects.values_list("event_id", flat=True)) == [before]


@pytest.mark.parametrize(("order_id", "reason"), [
    ("x" * 101, "'order_id' is longer than 100 characters."),
    ('"A\x01B"', "'order_id' must not contain control characters."),
])
def test_a_bad_order_id_names_the_row_and_imports_nothing(tmp_path, order_id, reason):
    (tmp_path / "interactions.csv").write_text(ORDERS + f"u3,p3,purchase,2024-01-03,1,,{order_id}\n")
    with pytest.raises(CommandError) as excinfo:
        run_import(tmp_path)
    assert f"interactions.csv:6: {reason}" in str(excinfo.value)
    assert counts() == (0, 0, 0)


def test_order_ids_reach_training_events(tmp_path):
    from recommendations.selectors import training_events

    (tmp_path / "interactions.csv").write_text(ORDERS)
    run_import(tmp_path)
    events = sorted(training_events(), key=lambda e: (e[3], e[5], e[1]))
    assert all(len(e) == 6 for e in events)
    assert [e[5] for e in events] == ["A-1", "A-1", "A-2", ""]
    assert events[0][3] == datetime(2024, 1, 1, 10, tzinfo=UTC).timestamp()
