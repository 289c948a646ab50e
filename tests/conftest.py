import pytest


@pytest.fixture
def staff_client(client, django_user_model):
    """A logged-in superuser client, as a marketer with full rights sees the admin."""
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle and lockout counters live in the (process-wide) cache: never carry them between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
