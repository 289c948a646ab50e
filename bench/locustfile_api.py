"""Locust user for ``bench/api_load.py``: the three endpoints in one run, equally often.

Environment: BENCH_API_KEY (read scope), BENCH_CUSTOMERS, BENCH_ITEMS (counts; ids c1.., skus SKU1..).
"""
import os
import random

from locust import HttpUser, task

KEY = os.environ.get("BENCH_API_KEY", "")
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "1000"))
ITEMS = int(os.environ.get("BENCH_ITEMS", "1000"))


class ApiUser(HttpUser):
    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {KEY}"

    @task
    def recommendations_get(self) -> None:
        self.client.get(f"/api/v1/customers/c{random.randint(1, CUSTOMERS)}/recommendations?limit=10",
                        name="recommendations GET")

    @task
    def session_post(self) -> None:
        skus = [f"SKU{random.randint(1, ITEMS)}" for _ in range(5)]
        self.client.post("/api/v1/recommendations/session", json={"items": skus, "k": 10}, name="session POST")

    @task
    def trivial_get(self) -> None:
        self.client.get(f"/api/v1/items/SKU{random.randint(1, ITEMS)}", name="item detail GET (trivial)")
