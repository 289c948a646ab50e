"""The model registry's admin pages: every page renders, versions are activated and rolled back, a training
run's page follows it live; and the serving recommendations on crm's customer page.

What the apps' admin tests share is in tests/admin_pages.py; the shop they look at in tests/conftest.py.
"""
from __future__ import annotations

from django.urls import reverse

from crm.models import Customer
from recommendations.admin import ACTIVATE_ONE
from recommendations.models import ModelVersion, Recommendation, TrainingRun
from tests.admin_pages import _url, _version, page_tests

# --- every page renders ---------------------------------------------------------------------------

test_changelist_renders, test_add_form_renders_or_is_forbidden, test_change_form_renders = page_tests(
    "recommendations"
)


# --- customers ------------------------------------------------------------------------------------


def test_customer_page_shows_recent_interactions_and_recommendations(staff_client, shop):
    customer = shop["customers"][0]
    response = staff_client.get(_url(Customer, "change", customer.pk))
    content = response.content.decode().lower()
    assert "recent interactions (latest 20)" in content
    assert "recommendations (serving version, top 10)" in content
    assert "because you bought shoes" in content


# --- model registry -------------------------------------------------------------------------------


def test_model_version_changelist_shows_headline_metrics(staff_client, shop):
    content = staff_client.get(_url(ModelVersion, "changelist")).content.decode()
    assert "0.4123" in content and "0.6000" in content


def test_model_version_detail_shows_metric_tables(staff_client, shop):
    content = staff_client.get(_url(ModelVersion, "change", shop["active"].pk)).content.decode()
    assert "test (held out)" in content and "validation" in content
    assert "train_seconds" in content and "n_embd" in content
    assert "12 rows" in content  # stored recommendations, linked
    assert "Roll back to v" in content


def test_model_version_detail_shows_the_expected_quality_of_the_served_list(staff_client, shop):
    metrics = {"tasks": {"discover": {
        "ndcg@10": 0.0234, "ndcg@10_se": 0.0006, "expected_ndcg@10": 0.0258, "expected_ndcg@10_se": 0.0009,
        "expected_customers": 5177, "valid_ndcg@10": 0.0233, "valid_ndcg@10_se": 0.0005,
        "baselines": {"ease": {"valid_ndcg@10": 0.0176, "valid_ndcg@10_se": 0.0005, "verdict": "reference"}}}}}
    version = _version(metrics=metrics)
    content = staff_client.get(_url(ModelVersion, "change", version.pk)).content.decode()
    assert "expected ranking quality of the served list (NDCG) (top 10)" in content
    assert "0.0258 ± 0.0009" in content and "customers behind the expected quality" in content
    # the expected quality leads the table, whatever order the JSON kept
    assert content.index("expected ranking quality") < content.index("ranking quality (NDCG) (top 10)</th>")
    # the validation row holds every compared algorithm's number, the one the choice was made on
    assert "ranking quality on validation (NDCG) (top 10)" in content
    assert "0.0233 ± 0.0005" in content and "0.0176 ± 0.0005" in content


def test_activate_action_switches_serving_version(staff_client, shop):
    # when
    response = staff_client.post(
        _url(ModelVersion, "changelist"), {"action": "activate_selected", "_selected_action": [shop["old"].pk]},
        follow=True,
    )
    # then
    assert "is now serving recommendations" in response.content.decode()
    assert ModelVersion.objects.get(is_active=True).pk == shop["old"].pk


def test_activate_action_needs_exactly_one_version(staff_client, shop):
    ids = [shop["old"].pk, shop["active"].pk]
    response = staff_client.post(
        _url(ModelVersion, "changelist"), {"action": "activate_selected", "_selected_action": ids}, follow=True
    )
    assert ACTIVATE_ONE in response.content.decode()
    assert ModelVersion.objects.get(is_active=True).pk == shop["active"].pk


def test_activate_refuses_an_unscored_version_with_a_message(staff_client, shop):
    # given
    trained = _version(status=ModelVersion.Status.TRAINED)
    # when
    response = staff_client.post(
        reverse("admin:recommendations_modelversion_activate", args=[trained.pk]), follow=True
    )
    # then
    assert "Only a scored version" in response.content.decode()
    assert ModelVersion.objects.get(is_active=True).pk == shop["active"].pk


def test_activate_button_and_rollback(staff_client, shop):
    """The change page's button activates; 'roll back' re-activates the version that served before."""
    # given
    newer = _version()
    # when
    staff_client.post(reverse("admin:recommendations_modelversion_activate", args=[newer.pk]))
    # then
    assert ModelVersion.objects.get(is_active=True).pk == newer.pk
    # when
    response = staff_client.post(reverse("admin:recommendations_modelversion_rollback"), follow=True)
    # then
    assert "Rolled back" in response.content.decode()
    assert ModelVersion.objects.get(is_active=True).pk == shop["active"].pk


def test_rollback_without_previous_version_says_so(staff_client, shop):
    ModelVersion.objects.update(previous=None)
    response = staff_client.post(
        _url(ModelVersion, "changelist"), {"action": "rollback", "_selected_action": [shop["active"].pk]}, follow=True
    )
    assert "There is no previous version to roll back to." in response.content.decode()


def test_active_version_cannot_be_deleted(staff_client, shop):
    assert staff_client.get(_url(ModelVersion, "delete", shop["active"].pk)).status_code == 403
    assert staff_client.get(_url(ModelVersion, "delete", shop["old"].pk)).status_code == 200


def test_training_run_page_shows_progress_log_and_polls_while_running(staff_client, shop):
    # when
    content = staff_client.get(_url(TrainingRun, "change", shop["run"].pk)).content.decode()
    # then
    assert 'class="tailored-progress"' in content and "42%" in content
    assert '<pre class="tailored-log">embedding item texts\nfitting sequential</pre>' in content
    progress_url = reverse("admin:recommendations_trainingrun_progress", args=[shop["run"].pk])
    assert f'data-poll="{progress_url}"' in content
    assert staff_client.get(progress_url).json()["done"] is False
    # when the run is over
    TrainingRun.objects.filter(pk=shop["run"].pk).update(status=TrainingRun.Status.SUCCEEDED, progress=1.0)
    content = staff_client.get(_url(TrainingRun, "change", shop["run"].pk)).content.decode()
    # then
    assert "data-poll=" not in content
    assert staff_client.get(progress_url).json()["done"] is True


def test_recommendations_filter_by_version_and_search_by_customer(staff_client, shop):
    customer = shop["customers"][1]
    response = staff_client.get(
        _url(Recommendation, "changelist"),
        {"model_version__id__exact": shop["active"].pk, "q": customer.external_id},
    )
    rows = list(response.context["cl"].result_list)
    assert len(rows) == 4 and {r.customer_id for r in rows} == {customer.pk}
