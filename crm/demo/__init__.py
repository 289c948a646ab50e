"""Synthetic demo data (``manage.py demo_data``): a plausible shop with learnable behaviour."""
from .services import DEMO_SEGMENTS, DemoReport, demo_data_create, demo_now

__all__ = ["DEMO_SEGMENTS", "DemoReport", "demo_data_create", "demo_now"]
