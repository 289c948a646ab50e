"""manage.py import_dataset --format movielens, on a tiny fixture and (optionally) on MovieLens-small."""
import os
import shutil
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from crm.importers.movielens import MAX_TAGS, merge_tags
from crm.models import Customer, Interaction, Item

FIXTURES = Path(__file__).parent / "fixtures" / "movielens"
MOVIELENS_SMALL = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "movielens-small"

pytestmark = pytest.mark.django_db


def run_import(directory: Path, *args: str) -> str:
    out = StringIO()
    call_command("import_dataset", "--format", "movielens", "--no-progress", *args, str(directory), stdout=out)
    return out.getvalue()


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), Item.objects.count(), Interaction.objects.count()


def test_imports_movies_users_and_ratings():
    # when
    run_import(FIXTURES)
    # then
    assert counts() == (2, 4, 4)
    toy_story = Item.objects.get(sku="1")
    assert toy_story.title == "Toy Story (1995)"
    assert toy_story.category == "Adventure"
    assert toy_story.description == "Adventure, Animation, Children, Comedy, Fantasy"
    assert toy_story.tags == ["Adventure", "Animation", "Children", "Comedy", "Fantasy", "pixar", "fun"]
    assert toy_story.attributes == {"genres": toy_story.tags[:5], "year": 1995}
    untitled = Item.objects.get(sku="3")
    assert (untitled.category, untitled.tags, untitled.description) == ("", [], "")
    assert Item.objects.get(sku="4").title == "4"  # rated but not in movies.csv
    user = Customer.objects.get(external_id="1")
    assert (user.email, user.email_opt_in, user.is_contactable) == ("", False, False)
    rating = Interaction.objects.get(customer__external_id="1", item__sku="2")
    assert (rating.kind, rating.value, rating.source) == ("rating", 3.5, "import")
    assert rating.occurred_at == datetime.fromtimestamp(964981247, tz=UTC)
    assert rating.event_id.startswith("import:movielens:")


def test_second_run_adds_nothing():
    # given
    run_import(FIXTURES)
    # when
    output = run_import(FIXTURES)
    # then
    assert counts() == (2, 4, 4)
    assert "ratings.csv: 4 rows read, 0 created, 4 already present, 0 skipped" in output


def test_merge_tags_dedupes_case_insensitively_and_caps():
    from collections import Counter

    assert merge_tags(["Drama"], Counter({"drama": 3, "twist": 2, "Twist": 1})) == ["Drama", "twist"]
    many = Counter({f"tag{i}": 100 - i for i in range(50)})
    assert len(merge_tags(["Drama"], many)) == MAX_TAGS


def test_bad_rating_stops_the_import(tmp_path):
    # given
    shutil.copytree(FIXTURES, tmp_path / "ml")
    with open(tmp_path / "ml" / "ratings.csv", "a") as handle:
        handle.write("3,1,-1,964982703\n3,1,4.0,last tuesday\n")
    # when
    with pytest.raises(CommandError) as excinfo:
        run_import(tmp_path / "ml")
    # then
    assert "ratings.csv:6: 'rating' must be >= 0, got '-1'." in str(excinfo.value)
    assert "ratings.csv:7: 'timestamp' is not a unix timestamp: 'last tuesday'." in str(excinfo.value)
    assert counts() == (0, 0, 0)


def test_skip_bad(tmp_path):
    # given
    shutil.copytree(FIXTURES, tmp_path / "ml")
    with open(tmp_path / "ml" / "movies.csv", "a") as handle:
        handle.write("9,,Drama\n")
    # when
    output = run_import(tmp_path / "ml", "--skip-bad")
    # then
    assert counts() == (2, 4, 4)
    assert "skipped movies.csv:5: 'title' is required." in output


def test_ratings_csv_is_required(tmp_path):
    with pytest.raises(CommandError, match="ratings.csv: required file is missing"):
        run_import(tmp_path)


@pytest.mark.dataset
def test_movielens_small():
    """The acceptance run: 610 users, 9,742 movies, 100,836 ratings; a second run adds nothing."""
    if not (MOVIELENS_SMALL.is_dir() or os.environ.get("RUN_DATASET_TESTS") == "1"):
        pytest.skip(f"{MOVIELENS_SMALL} not found")
    if not MOVIELENS_SMALL.is_dir():
        pytest.fail(f"RUN_DATASET_TESTS=1 but {MOVIELENS_SMALL} is missing")
    # when
    run_import(MOVIELENS_SMALL)
    # then
    assert counts() == (610, 9742, 100836)
    # when
    output = run_import(MOVIELENS_SMALL)
    # then
    assert counts() == (610, 9742, 100836)
    assert "ratings.csv: 100836 rows read, 0 created, 100836 already present, 0 skipped" in output
