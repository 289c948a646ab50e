"""A deterministic synthetic shop: customers, a catalogue and ~180 days of behaviour.

Pure Python (no database): the same seed and anchor time give the same rows. The behaviour has
structure a recommender can learn:

- taste: each customer likes 1-3 categories and, in each, one or two *styles* (a word in the item's
  title, description and tags, e.g. "trail" running shoes), so text carries signal;
- sessions: a few views in one category, some add to cart, some of those purchased;
- sequence: after buying a product (e.g. running shoes) the next sessions are likely to be about that
  category's accessories in the same style (socks, insoles);
- orders: what a session puts in the cart is checked out as one order, its lines sharing one timestamp
  in product-code order, as shop exports write them;
- replenishment: consumables (coffee, skincare) are re-ordered on a personal cycle (every 3-5 weeks);
- lifecycle: a fifth of the customers lapse (no activity in the last two months), gold-tier customers
  come back more often.
"""
from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from .vocab import ADJECTIVES, AGE_BANDS, CATEGORIES, COUNTRIES, NAMES, TIERS, Category

HISTORY_DAYS = 180


@dataclass
class DemoItem:
    sku: str
    category: Category
    style: str
    is_accessory: bool
    fields: dict


@dataclass
class DemoDataset:
    customers: list[dict] = field(default_factory=list)
    items: list[DemoItem] = field(default_factory=list)
    # (customer external_id, item sku, kind, occurred_at, quantity, value, event_id)
    events: list[tuple] = field(default_factory=list)


def _weighted(rng: random.Random, pairs) -> str:
    values, weights = zip(*pairs)
    return rng.choices(values, weights=weights)[0]


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low, high)) - Decimal("0.01")


def make_items(rng: random.Random, n: int, now: datetime, image_base: str = "") -> list[DemoItem]:
    """``n`` items over the categories; titles are unique (a reason "because you viewed X" is never about X)."""
    items, titles = [], set()
    for index in range(n):
        category = CATEGORIES[index % len(CATEGORIES)]
        sku = f"{category.code}-{index // len(CATEGORIES) + 1:04d}"
        for _attempt in range(50):
            style, brand, adjective = rng.choice(category.styles), rng.choice(category.brands), rng.choice(ADJECTIVES)
            is_accessory = rng.random() < 0.4
            noun = rng.choice(category.accessories if is_accessory else category.products)
            style_word = style.replace("-", " ")
            title = f"{brand} {adjective} {style_word.title()} {noun}"
            if title not in titles:
                break
        if title in titles:  # a tiny vocabulary ran out of combinations: number the edition
            title = f"{title} No. {index + 1}"
        titles.add(title)
        fields = {
            "sku": sku,
            "title": title,
            "description": (
                f"A {style_word} {noun.lower()} by {brand}. {category.blurb} "
                f"Part of our {category.name} range."
            ),
            "category": category.name,
            "tags": [category.name, style, noun.lower(), "accessory" if is_accessory else "bestseller"],
            "price": _price(rng, *(category.accessory_price if is_accessory else category.product_price)),
            "url": f"https://shop.example.com/p/{sku}",
            "image_url": f"{image_base}{category.code.lower()}.svg#{sku}",
            "active": rng.random() >= 0.03,
            "in_stock": rng.random() >= 0.05,
            "attributes": {"brand": brand, "style": style},
            "created_at": now - timedelta(days=rng.randint(HISTORY_DAYS, 3 * HISTORY_DAYS)),
        }
        items.append(DemoItem(sku, category, style, is_accessory, fields))
    return items


def make_customer(rng: random.Random, index: int, now: datetime) -> dict:
    country = _weighted(rng, COUNTRIES)
    first_names, last_names = NAMES[country]
    first, last = rng.choice(first_names), rng.choice(last_names)
    opted_in = rng.random() < 0.8
    unsubscribed = opted_in and rng.random() < 0.04
    joined = now - timedelta(days=rng.randint(HISTORY_DAYS, 4 * HISTORY_DAYS), seconds=rng.randint(0, 86399))
    consent_at = joined + timedelta(days=rng.randint(0, 30)) if opted_in else None
    return {
        "external_id": f"C{index + 1:05d}",
        "email": f"{_ascii(first)}.{_ascii(last)}{index + 1}@example.com",
        "first_name": first,
        "last_name": last,
        "country": country,
        "attributes": {"tier": _weighted(rng, TIERS), "age_band": _weighted(rng, AGE_BANDS)},
        "email_opt_in": opted_in and not unsubscribed,
        "consent_updated_at": (now - timedelta(days=rng.randint(1, 60))) if unsubscribed else consent_at,
        "unsubscribed_at": (now - timedelta(days=rng.randint(1, 60))) if unsubscribed else None,
        "created_at": joined,
    }


class _Shopper:
    """One customer's tastes and state while their history is simulated."""

    def __init__(self, rng: random.Random, customer: dict, now: datetime, available: list[Category]):
        self.rng = rng
        self.id = customer["external_id"]
        self.available = available
        self.categories = rng.sample(available, k=min(len(available), rng.choice((1, 1, 2, 2, 2, 3))))
        self.styles = {c.name: set(rng.sample(c.styles, k=rng.choice((1, 1, 2)))) for c in self.categories}
        self.follow_up: tuple[Category, str] | None = None
        visits = {"bronze": 6, "silver": 10, "gold": 18}[customer["attributes"]["tier"]]
        self.n_sessions = max(1, round(rng.lognormvariate(0, 0.5) * visits))
        end = now - timedelta(days=rng.randint(60, 150)) if rng.random() < 0.2 else now
        self.end = end
        start = now - timedelta(days=HISTORY_DAYS)
        span = (end - start).total_seconds()
        self.session_starts = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(self.n_sessions))

    def intent(self) -> tuple[Category, str | None, bool]:
        """(category, preferred style, accessories?) of the next session."""
        if self.follow_up is not None and self.rng.random() < 0.7:
            category, style = self.follow_up
            self.follow_up = None
            return category, style, True
        if self.rng.random() < 0.1:
            return self.rng.choice(self.available), None, False
        category = self.rng.choice(self.categories)
        return category, self.rng.choice(sorted(self.styles[category.name])), False

    def weight(self, item: DemoItem, style: str | None, accessories: bool) -> float:
        liked = item.style == style or item.style in self.styles.get(item.category.name, ())
        return (6.0 if liked else 1.0) * (3.0 if item.is_accessory == accessories else 0.5)


def simulate(rng: random.Random, shopper: _Shopper, by_category: dict[str, list[DemoItem]], emit) -> None:
    for started in shopper.session_starts:
        category, style, accessories = shopper.intent()
        pool = by_category[category.name]
        weights = [shopper.weight(item, style, accessories) for item in pool]
        viewed = {id(i): i for i in rng.choices(pool, weights=weights, k=rng.randint(2, 6))}.values()
        moment = started
        cart: list[tuple[DemoItem, int]] = []
        for item in viewed:
            moment += timedelta(seconds=rng.randint(20, 240))
            emit(shopper.id, item, "view", moment, 1, None)
            liked = item.style == style or item.style in shopper.styles.get(category.name, ())
            if not item.fields["in_stock"] or rng.random() > (0.35 if liked else 0.08):
                continue
            quantity = rng.choice((1, 1, 1, 2)) if item.is_accessory else 1
            moment += timedelta(seconds=rng.randint(10, 120))
            emit(shopper.id, item, "add_to_cart", moment, quantity, None)
            cart.append((item, quantity))
        ordered = [(item, quantity) for item, quantity in cart if rng.random() < 0.55]
        if ordered:
            checkout = moment + timedelta(seconds=rng.randint(60, 600))
            order(shopper, ordered, checkout, emit)
            for item, _quantity in ordered:
                if not item.is_accessory:
                    shopper.follow_up = (category, item.style)
                    replenish(rng, shopper, item, checkout, emit)


def order(shopper: _Shopper, lines: list[tuple[DemoItem, int]], at: datetime, emit) -> None:
    """One order: every line at the same moment, in product-code order (how shop exports list them)."""
    for item, quantity in sorted(lines, key=lambda line: line[0].sku):
        emit(shopper.id, item, "purchase", at, quantity, float(item.fields["price"] * quantity))


def replenish(rng: random.Random, shopper: _Shopper, item: DemoItem, first: datetime, emit) -> None:
    """Consumables: most buyers re-order the same product on their own cycle until they lapse."""
    cycle = item.category.replenish_days
    if cycle is None or rng.random() > 0.7:
        return
    interval = rng.uniform(*cycle)
    moment = first
    while True:
        moment += timedelta(days=interval * rng.uniform(0.85, 1.15), seconds=rng.randint(-7200, 7200))
        if moment >= shopper.end or rng.random() < 0.08:
            return
        emit(shopper.id, item, "view", moment - timedelta(seconds=rng.randint(30, 300)), 1, None)
        order(shopper, [(item, 1)], moment, emit)


def demo_dataset(*, customers: int, items: int, seed: int, now: datetime, image_base: str = "") -> DemoDataset:
    """``image_base``: where the category placeholder images are served (``<code>.svg``)."""
    rng = random.Random(seed)
    dataset = DemoDataset(items=make_items(rng, items, now, image_base))
    dataset.customers = [make_customer(rng, index, now) for index in range(customers)]
    by_category: dict[str, list[DemoItem]] = {}
    for item in dataset.items:
        if item.fields["active"]:
            by_category.setdefault(item.category.name, []).append(item)
    if not by_category:
        return dataset
    counter = 0

    def emit(customer_id, item, kind, occurred_at, quantity, value):
        nonlocal counter
        counter += 1
        occurred_at = min(occurred_at, now)
        dataset.events.append((customer_id, item.sku, kind, occurred_at, quantity, value, f"demo:{seed}:{counter}"))

    available = [c for c in CATEGORIES if c.name in by_category]
    for customer in dataset.customers:
        simulate(rng, _Shopper(rng, customer, now, available), by_category, emit)
    return dataset
