"""The vocabulary of the synthetic shop: categories, brands, styles, product nouns, names, countries."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    name: str
    code: str
    brands: tuple[str, ...]
    styles: tuple[str, ...]  # the latent taste dimensions: each item has one, each customer prefers some
    products: tuple[str, ...]  # what people come for
    accessories: tuple[str, ...]  # what they buy next, after a product
    product_price: tuple[int, int]
    accessory_price: tuple[int, int]
    blurb: str
    color: str = "#64748b"  # of the generated placeholder image
    replenish_days: tuple[int, int] | None = None  # consumables: customers re-order on a cycle in this range


ADJECTIVES = ("Classic", "Pro", "Essential", "Premium", "Everyday", "Ultra", "Signature", "Studio", "Original", "Nova")

CATEGORIES = (
    Category(
        "running", "RUN", ("Stride", "Pacer", "Kinetix", "Aerolite"),
        ("trail", "road", "racing", "cushioned", "minimalist"),
        ("Running Shoe", "Trainer", "Spikes"), ("Running Socks", "Insoles", "Reflective Laces", "Shoe Cleaner"),
        (59, 189), (6, 29), "Built for runners who log real miles.", "#ea580c",
    ),
    Category(
        "coffee", "COF", ("Bean & Co", "Roastery 7", "Altitude", "Crema"),
        ("espresso", "single-origin", "decaf", "dark-roast", "light-roast"),
        ("Coffee Beans 1kg", "Ground Coffee 500g", "Coffee Capsules"),
        ("Filter Papers", "Milk Frother", "Burr Grinder", "Travel Mug"),
        (8, 35), (5, 89), "Roasted in small batches and shipped within days.", "#78350f", (18, 35),
    ),
    Category(
        "books", "BOK", ("Penfold", "Northwind Press", "Lantern", "Bramble"),
        ("mystery", "sci-fi", "history", "cookbook", "fantasy"),
        ("Novel", "Hardcover Edition", "Box Set"), ("Bookmark", "Reading Light", "Book Sleeve"),
        (9, 45), (4, 25), "A page-turner readers keep recommending.", "#7c3aed",
    ),
    Category(
        "outdoor", "OUT", ("Summit", "Fjellgear", "Trailhead", "NorthPeak"),
        ("hiking", "camping", "alpine", "ultralight", "waterproof"),
        ("Backpack", "Tent", "Shell Jacket"), ("Water Bottle", "Headlamp", "Dry Bag", "Trekking Poles"),
        (49, 349), (9, 59), "Tested on long days in bad weather.", "#15803d",
    ),
    Category(
        "kitchen", "KIT", ("Cucina", "Ferro", "Maison", "Kitchenly"),
        ("cast-iron", "nonstick", "stainless", "ceramic", "bamboo"),
        ("Frying Pan", "Saucepan", "Chef's Knife", "Dutch Oven"), ("Spatula", "Cutting Board", "Oven Mitts"),
        (25, 199), (6, 39), "A kitchen workhorse that lasts for years.", "#b91c1c",
    ),
    Category(
        "skincare", "SKN", ("Lumiere", "Dermae", "Verdant", "Aqualis"),
        ("hydrating", "anti-aging", "sensitive", "vitamin-c", "organic"),
        ("Face Cream", "Serum", "Night Mask"), ("Cleanser", "Toner", "Lip Balm"),
        (15, 79), (6, 25), "Dermatologically tested, gentle on skin.", "#db2777", (28, 56),
    ),
    Category(
        "headphones", "AUD", ("Sonic", "Auralis", "Bassline", "Quietude"),
        ("noise-cancelling", "wireless", "studio", "sport", "over-ear"),
        ("Headphones", "Earbuds"), ("Carrying Case", "Ear Tips", "Charging Cable"),
        (39, 399), (8, 35), "Clear sound and all-day comfort.", "#0f172a",
    ),
    Category(
        "toys", "TOY", ("Playnest", "Tinker", "Wunder", "Brickly"),
        ("wooden", "educational", "building", "plush", "puzzle"),
        ("Building Set", "Puzzle Box", "Toy Car", "Play Kitchen"), ("Batteries", "Storage Box", "Sticker Pack"),
        (12, 89), (4, 19), "Safe, sturdy and loved by kids.", "#0369a1",
    ),
)

COUNTRIES = (("DE", 25), ("FR", 14), ("GB", 14), ("US", 14), ("ES", 9), ("IT", 9), ("NL", 8), ("SE", 7))

NAMES = {
    "DE": (("Lukas", "Anna", "Jonas", "Lea", "Felix", "Mia", "Paul", "Hannah"),
           ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann")),
    "FR": (("Louis", "Chloé", "Hugo", "Emma", "Jules", "Léa", "Arthur", "Manon"),
           ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand")),
    "GB": (("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Emily"),
           ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Davies")),
    "US": (("Liam", "Olivia", "Noah", "Sophia", "James", "Charlotte", "Ethan", "Harper"),
           ("Johnson", "Miller", "Davis", "Garcia", "Rodriguez", "Martinez", "Anderson", "Moore")),
    "ES": (("Hugo", "Lucía", "Mateo", "Sofía", "Pablo", "Martina", "Daniel", "Paula"),
           ("García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Ruiz")),
    "IT": (("Leonardo", "Giulia", "Francesco", "Aurora", "Lorenzo", "Alice", "Matteo", "Ginevra"),
           ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci")),
    "NL": (("Daan", "Emma", "Sem", "Julia", "Lucas", "Tess", "Levi", "Sophie"),
           ("de Jong", "Jansen", "de Vries", "van Dijk", "Bakker", "Visser", "Smit", "Meijer")),
    "SE": (("William", "Alice", "Oscar", "Maja", "Hugo", "Elsa", "Liam", "Astrid"),
           ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson")),
}

TIERS = (("bronze", 60), ("silver", 30), ("gold", 10))
AGE_BANDS = (("18-24", 15), ("25-34", 30), ("35-44", 25), ("45-54", 18), ("55+", 12))
