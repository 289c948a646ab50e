"""Admin login brute force (security review, finding 7): django-axes locks a username after N failures."""
import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


@override_settings(AXES_FAILURE_LIMIT=3)
def test_admin_password_guessing_is_locked_out(client, django_user_model):
    """Unlimited guesses used to be allowed; after 3 failures even the right password is refused."""
    django_user_model.objects.create_superuser("boss", "boss@example.com", "right-password")
    for n in range(3):
        response = client.post("/admin/login/", {"username": "boss", "password": f"guess-{n}"})
        assert response.status_code in (200, 429)
    response = client.post("/admin/login/", {"username": "boss", "password": "right-password"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_few_typos_do_not_lock_out(client, django_user_model):
    django_user_model.objects.create_superuser("boss", "boss@example.com", "right-password")
    for n in range(2):
        client.post("/admin/login/", {"username": "boss", "password": f"typo-{n}"})
    response = client.post("/admin/login/", {"username": "boss", "password": "right-password"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"]
