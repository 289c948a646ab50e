"""The MovieLens format (``ratings.csv``, ``movies.csv``, ``tags.csv``), e.g. ml-latest-small.

- ``ratings.csv`` (required) userId,movieId,rating,timestamp (unix) -> ``rating`` events, value = rating.
- ``movies.csv`` movieId,title,genres -> items: sku = movieId, category = first genre, description =
  the genres joined, tags = the genres then the most frequent user tags (deduplicated, capped).
- ``tags.csv`` userId,movieId,tag,timestamp -> only item tags; tags are not events.
- users become bare customers: external_id = userId, no e-mail, no consent.
"""
from __future__ import annotations

import re
from collections import Counter

from crm.models import Customer, Interaction, Item

from . import writers
from .base import FileSpec, Importer, number, text, timestamp_unix

MAX_TAGS = 20
NO_GENRES = "(no genres listed)"
YEAR = re.compile(r"\((\d{4})\)\s*$")


def parse_rating(row: dict[str, str]) -> tuple:
    customer = text(row, "userId", required=True, max_length=191)
    item = text(row, "movieId", required=True, max_length=191)
    rating = number(text(row, "rating", required=True), "rating", minimum=0)
    occurred_at = timestamp_unix(text(row, "timestamp", required=True))
    return customer, item, Interaction.Kind.RATING.value, occurred_at, 1, rating


def parse_movie(row: dict[str, str]) -> dict:
    genres = [g for g in text(row, "genres").split("|") if g and g != NO_GENRES]
    title = text(row, "title", required=True, max_length=500)
    year = YEAR.search(title)
    return {
        "sku": text(row, "movieId", required=True, max_length=191),
        "title": title,
        "description": ", ".join(genres),
        "category": genres[0] if genres else "",
        "tags": genres,
        "attributes": {"genres": genres, **({"year": int(year.group(1))} if year else {})},
    }


def parse_tag(row: dict[str, str]) -> tuple[str, str]:
    return text(row, "movieId", required=True, max_length=191), text(row, "tag", required=True)


RATINGS = FileSpec("ratings.csv", ("userId", "movieId", "rating", "timestamp"), parse_rating)
MOVIES = FileSpec("movies.csv", ("movieId", "title", "genres"), parse_movie, required=False)
TAGS = FileSpec("tags.csv", ("movieId", "tag"), parse_tag, required=False)


def merge_tags(genres: list[str], user_tags: Counter | None) -> list[str]:
    """Genres first, then user tags by frequency (first seen wins ties); case-insensitive dedupe, capped."""
    merged, seen = [], set()
    candidates = [*genres, *(tag for tag, _n in (user_tags or Counter()).most_common())]
    for tag in candidates:
        if tag.lower() not in seen:
            seen.add(tag.lower())
            merged.append(tag)
    return merged[:MAX_TAGS]


class MovieLensImporter(Importer):
    format = "movielens"

    def validate(self) -> None:
        self.user_tags: dict[str, Counter] = {}
        self.defined_items: set[str] = set()
        self.event_customers: set[str] = set()
        self.event_items: set[str] = set()
        self.scanner.exists(RATINGS)
        self.has_movies = self.scanner.exists(MOVIES)
        if self.scanner.exists(TAGS):
            for _line, (movie, tag) in self.scanner.validate(TAGS):
                self.user_tags.setdefault(movie, Counter())[tag] += 1
        if self.has_movies:
            for _line, record in self.scanner.validate(MOVIES):
                self.defined_items.add(record["sku"])
        for _line, (customer, item, *_rest) in self.scanner.validate(RATINGS):
            self.event_customers.add(customer)
            self.event_items.add(item)

    def write(self) -> None:
        if self.user_tags:
            report = self.report.file(f"{TAGS.name} (merged into item tags)")
            report.skipped = sum(1 for e in self.report.errors if e.file == TAGS.name)
            report.read = sum(sum(c.values()) for c in self.user_tags.values()) + report.skipped
        if self.has_movies:
            movies = (
                dict(movie, tags=merge_tags(movie["tags"], self.user_tags.get(movie["sku"])))
                for movie in self.scanner.read(MOVIES)
            )
            fields = ["title", "description", "category", "tags", "attributes"]
            self.written(MOVIES.name, writers.items_upsert(movies, update_fields=fields))
        bare = self.event_items - self.defined_items
        self.record("items (from ratings.csv)", read=len(bare), created=writers.items_create_bare(bare))
        created = writers.customers_create_bare(self.event_customers)
        self.record("customers (from ratings.csv)", read=len(self.event_customers), created=created)
        events = writers.interactions_build(
            self.scanner.read(RATINGS),
            fmt=self.format,
            customer_ids=writers.id_map(Customer, "external_id", self.event_customers),
            item_ids=writers.id_map(Item, "sku", self.event_items),
        )
        self.written(RATINGS.name, writers.interactions_insert(events))
