"""The Tailored Django project and its CRM core app."""
from .celery import app as celery_app

__all__ = ["celery_app"]
