"""The shop's data: a SQLite file of products and their reviews, generated at start."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

__all__ = ["generate"]

WORDS = [
    "steel",
    "copper",
    "walnut",
    "linen",
    "wool",
    "cotton",
    "oak",
    "slate",
    "amber",
    "cedar",
    "granite",
    "ivory",
    "lamp",
    "chair",
    "table",
    "kettle",
    "mug",
    "bowl",
    "knife",
    "clock",
    "shelf",
    "rug",
    "vase",
    "desk",
    "stool",
    "tray",
]


def generate(path: Path, *, products: int = 3000, reviews_each: int = 12, seed: int = 7) -> None:
    """Write ``products`` products with ``reviews_each`` reviews each to ``path``."""
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        db.execute("CREATE TABLE reviews (id INTEGER PRIMARY KEY, product_id INTEGER, "
                   "stars INTEGER, body TEXT)")  # fmt: skip
        db.execute("CREATE INDEX reviews_by_product ON reviews (product_id)")
        db.executemany(
            "INSERT INTO products VALUES (?, ?, ?)",
            ((i, f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}", round(rng.uniform(2, 200), 2))
             for i in range(1, products + 1)),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO reviews (product_id, stars, body) VALUES (?, ?, ?)",
            ((i, rng.randint(1, 5), " ".join(rng.choices(WORDS, k=12)))
             for i in range(1, products + 1) for _ in range(reviews_each)),
        )  # fmt: skip
