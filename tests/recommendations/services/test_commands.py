"""The command-line contract: train, score, export_recommendations, evaluate; bad input is a CommandError.

These run on ``transactional_db``: commands run in autocommit like from a shell, so the training
task queued ``on_commit`` runs (eagerly) inside the command, as it does for a user.
"""

import csv
import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from crm.models import Interaction
from recommendations.models import ModelVersion
from recommendations.selectors import model_version_active


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_train_score_export_end_to_end(transactional_db, shop, tmp_path, capsys):
    # when
    call_command("train", "--algorithm", "itemknn", "--activate")
    trained = model_version_active()
    call_command("score", "--shards", "2")
    out = tmp_path / "recs.csv"
    call_command("export_recommendations", "--k", "3", str(out))
    # then
    assert "active now" in capsys.readouterr().out
    rescored = model_version_active()
    assert rescored != trained and rescored.artifact_path == trained.artifact_path
    assert ModelVersion.objects.filter(is_active=True).count() == 1
    rows = _csv(out)
    assert list(rows[0]) == ["customer_id", "rank", "item_id", "score"]
    by_customer = {}
    for row in rows:
        by_customer.setdefault(row["customer_id"], []).append(row)
    assert len(by_customer) == 24 and all(len(v) == 3 for v in by_customer.values())
    c00 = [r["item_id"] for r in by_customer["c00"]]
    bought = {i.item.sku for i in Interaction.objects.filter(customer__external_id="c00").select_related("item")}
    assert not bought & set(c00), "--exclude-seen is the default"
    assert [r["rank"] for r in by_customer["c00"]] == ["1", "2", "3"]
    scores = [float(r["score"]) for r in by_customer["c00"]]
    assert scores == sorted(scores, reverse=True)


def test_export_include_seen_can_recommend_again(transactional_db, shop, tmp_path):
    call_command("train", "--algorithm", "popularity", "--activate")
    out = tmp_path / "all.csv"
    call_command("export_recommendations", "--k", "24", "--include-seen", str(out))
    c00 = {r["item_id"] for r in _csv(out) if r["customer_id"] == "c00"}
    assert "coffee-0" in c00


def test_evaluate_writes_json(shop, tmp_path, capsys):
    out = tmp_path / "eval.json"
    call_command(
        "evaluate",
        "--protocol",
        "leave-last-out",
        "--k",
        "5",
        "--algorithm",
        "popularity",
        "--algorithm",
        "itemknn",
        "--json",
        str(out),
    )
    result = json.loads(out.read_text())
    assert set(result["algorithms"]) == {"popularity", "itemknn"}
    assert result["algorithms"]["itemknn"]["ndcg@5"] > result["algorithms"]["popularity"]["ndcg@5"]
    assert "itemknn" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("train", ["--params", "{not json"], "--params is not valid JSON"),
        ("train", ["--params", "[1]"], "--params must be a JSON object"),
        ("train", ["--algorithm", "magic"], "invalid choice"),
        ("score", ["--shards", "0"], "--shards must be at least 1"),
        ("score", ["--model-version", "999"], "does not exist"),
        ("export_recommendations", ["--k", "0", "x.csv"], "--k must be at least 1"),
        ("evaluate", ["--k", "0"], "--k must be at least 1"),
    ],
)
def test_bad_input_is_a_clear_command_error(db, command, args, message):
    with pytest.raises(CommandError, match=message):
        call_command(command, *args)


def test_commands_say_what_to_do_before_any_model_exists(transactional_db, tmp_path):
    with pytest.raises(CommandError, match="no active model version"):
        call_command("export_recommendations", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="no active model version"):
        call_command("score")
    with pytest.raises(CommandError, match="no interactions to train on"):
        call_command("train")


def test_embed_items_embeds_only_changed_texts(shop, capsys):
    call_command("embed_items")
    assert "24 embedded, 0 unchanged" in capsys.readouterr().out
    item = shop["items"][("books", 0)]
    item.description = "A brand new edition with a foreword."
    item.save()
    call_command("embed_items")
    assert "1 embedded, 23 unchanged" in capsys.readouterr().out


def test_evaluate_time_window_protocol(shop, tmp_path):
    out = tmp_path / "tw.json"
    call_command(
        "evaluate", "--protocol", "time-window", "--window-days", "1", "--algorithm", "popularity", "--json", str(out)
    )
    result = json.loads(out.read_text())
    assert result["protocol"] == "time-window" and result["targets"] > 0


def test_export_the_buy_again_list(transactional_db, shop, tmp_path):
    from .helpers import buy_again_ranker_ensure

    call_command("train", "--algorithm", "itemknn", "--activate")
    buy_again_ranker_ensure(model_version_active())
    discover, again = tmp_path / "discover.csv", tmp_path / "again.csv"
    call_command("export_recommendations", "--k", "10", str(discover))
    call_command("export_recommendations", "--k", "10", "--list", "buy-again", str(again))
    out = StringIO()
    call_command("score", stdout=out)
    # one buy-again row per product each customer bought (3 to 5 each: 96)
    assert re.search(r"v\d+: \d+ discover \+ 96 buy-again recommendations for 24 customers", out.getvalue())
    rows = _csv(again)
    assert list(rows[0]) == ["customer_id", "rank", "item_id", "score"]
    bought = {}
    for customer, sku in Interaction.objects.filter(kind="purchase").values_list("customer__external_id", "item__sku"):
        bought.setdefault(customer, set()).add(sku)
    by_customer = {}
    for row in rows:
        by_customer.setdefault(row["customer_id"], []).append(row["item_id"])
    # every customer's own purchases, each once, and nothing else
    assert {c: set(skus) for c, skus in by_customer.items()} == bought
    assert all(len(skus) == len(set(skus)) for skus in by_customer.values())
    # the default list keeps its meaning: nothing bought
    assert not any(row["item_id"] in bought[row["customer_id"]] for row in _csv(discover))


def test_exclude_seen_covers_the_whole_history_not_only_the_model_input(transactional_db, shop, tmp_path,
                                                                         monkeypatch):
    """The model reads the latest HISTORY_LENGTH events; what was bought before them stays bought."""
    from recommendations.services import scoring

    call_command("train", "--algorithm", "popularity", "--activate")
    monkeypatch.setattr(scoring, "HISTORY_LENGTH", 1)
    out = tmp_path / "recs.csv"
    call_command("export_recommendations", "--k", "24", str(out))
    c00 = {r["item_id"] for r in _csv(out) if r["customer_id"] == "c00"}
    assert c00 and not {"coffee-0", "coffee-1", "coffee-2"} & c00
    call_command("score")
    stored = set(model_version_active().recommendations.filter(customer__external_id="c00", list="discover")
                 .values_list("item__sku", flat=True))
    assert stored and not {"coffee-0", "coffee-1", "coffee-2"} & stored


def test_export_list_errors_are_clear(transactional_db, shop, tmp_path):
    import shutil
    from pathlib import Path

    from recommendations.engine.models import BUY_AGAIN_DIR

    call_command("train", "--algorithm", "popularity", "--activate")
    # a version trained before buy-again lists existed
    shutil.rmtree(Path(model_version_active().artifact_path) / BUY_AGAIN_DIR)
    with pytest.raises(CommandError, match="no buy-again ranker"):
        call_command("export_recommendations", "--list", "buy-again", str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(CommandError, match="--exclude-seen contradicts --list buy-again"):
        call_command("export_recommendations", "--list", "buy-again", "--exclude-seen", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="invalid choice: 'buy_again'"):
        call_command("export_recommendations", "--list", "buy_again", str(tmp_path / "x.csv"))


@pytest.mark.parametrize(
    ("algorithm", "params", "message"),
    [
        ("ease_trending", '{"trend_weight": 2}', "trend_weight must be between 0 and 1, not 2"),
        ("trending", '{"half_life_days": -7}', "half_life_days must be a positive number of days, not -7"),
        ("sequential", '{"stop_on": "test"}', "stop_on must be 'own' or 'valid', not 'test'"),
    ],
)
def test_an_out_of_range_setting_fails_the_run_with_its_name(transactional_db, shop, algorithm, params, message):
    with pytest.raises(CommandError, match=message):
        call_command("train", "--algorithm", algorithm, "--params", params)
    assert not ModelVersion.objects.filter(algorithm=algorithm).exists()
