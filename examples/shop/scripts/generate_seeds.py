"""Generate the seed CSVs of the `shop` example project.

The data describe a small online shop selling bicycle parts: customers,
products, orders, the items of each order and the payments taken for them.
Everything is derived from a fixed random seed and fixed dates, so running
the script twice writes byte-identical files.

Usage (standard library only):

    python scripts/generate_seeds.py            # writes ../seeds/*.csv
    python scripts/generate_seeds.py --out DIR  # writes DIR/*.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from pathlib import Path

SEED = 1817  # year of Drais' running machine, the first two-wheeler
FIRST_DAY = dt.date(2024, 1, 1)
LAST_DAY = dt.date(2024, 6, 30)

N_CUSTOMERS = 120
N_ORDERS = 260

# fmt: off
FIRST_NAMES = [
    "Ada", "Bram", "Carla", "Dario", "Elin", "Femke", "Goran", "Hana", "Ivo", "Jonas",
    "Kaia", "Lior", "Mara", "Nils", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tomas",
    "Ulla", "Vera", "Wim", "Xenia", "Yusuf", "Zoe",
]
LAST_NAMES = [
    "Achterberg", "Bianchi", "Coppi", "Dekker", "Eriksen", "Fuentes", "Gimondi", "Hinault",
    "Indurain", "Janssen", "Kelly", "Lemond", "Merckx", "Nibali", "Ocana", "Pantani",
    "Quintana", "Roche", "Sagan", "Thys", "Ullrich", "Vos", "Wiggins", "Zoetemelk",
]
# fmt: on
COUNTRIES = [("DE", 30), ("NL", 20), ("FR", 15), ("ES", 10), ("IT", 10), ("GB", 10), ("US", 5)]

# (category, sku prefix, [(part name, typical price in euros)])
CATALOGUE = [
    (
        "drivetrain",
        "DRV",
        [
            ("11-speed chain", 35),
            ("12-speed chain", 45),
            ("Cassette 11-34", 80),
            ("Cassette 10-51", 190),
            ("Chainring 42T", 60),
            ("Rear derailleur", 120),
            ("Crankset 172.5mm", 230),
        ],
    ),
    (
        "brakes",
        "BRK",
        [
            ("Disc rotor 160mm", 30),
            ("Disc rotor 180mm", 35),
            ("Organic brake pads", 15),
            ("Sintered brake pads", 20),
            ("Hydraulic brake set", 180),
        ],
    ),
    (
        "wheels",
        "WHL",
        [
            ("Inner tube 700x28", 8),
            ("Tubeless tyre 29x2.4", 60),
            ("Gravel tyre 700x40", 45),
            ("Rim tape 25mm", 10),
            ("Alloy wheelset 700c", 420),
        ],
    ),
    (
        "cockpit",
        "CPT",
        [
            ("Flat bar 760mm", 55),
            ("Drop bar 42cm", 70),
            ("Stem 90mm", 40),
            ("Lock-on grips", 25),
            ("Bar tape", 20),
        ],
    ),
    (
        "accessories",
        "ACC",
        [
            ("Mini pump", 30),
            ("Multi-tool 16", 28),
            ("Bottle cage", 12),
            ("Rear light USB", 25),
            ("Front light 800lm", 65),
            ("Saddle bag", 22),
        ],
    ),
]
BRANDS = ["Ridgeline", "Coastal Cog", "Northspoke", "Pellworth"]

ORDER_STATUSES_OPEN = [("placed", 40), ("shipped", 60)]
ORDER_STATUSES_DONE = [("delivered", 84), ("returned", 8), ("cancelled", 8)]
PAYMENT_METHODS = [("card", 60), ("paypal", 25), ("bank_transfer", 15)]


def weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


def day_between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def make_products(rng: random.Random) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for category, prefix, parts in CATALOGUE:
        for position, (name, euros) in enumerate(parts, start=1):
            # typical price +/- 10%, always ending in .99
            price = round(euros * rng.uniform(0.9, 1.1)) * 100 - 1
            updated = dt.datetime.combine(
                day_between(rng, dt.date(2023, 9, 1), dt.date(2023, 12, 31)),
                dt.time(rng.randint(7, 18), rng.choice([0, 15, 30, 45])),
            )
            rows.append(
                {
                    "product_id": len(rows) + 1,
                    "sku": f"{prefix}-{position:04d}",
                    "product_name": name,
                    "category": category,
                    "brand": rng.choice(BRANDS),
                    "price_cents": price,
                    "is_active": "true" if rng.random() > 0.1 else "false",
                    "updated_at": updated.isoformat(sep=" "),
                }
            )
    return rows


def make_customers(rng: random.Random) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for customer_id in range(1, N_CUSTOMERS + 1):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        rows.append(
            {
                "customer_id": customer_id,
                "first_name": first,
                "last_name": last,
                "email": f"{first.lower()}.{last.lower()}{customer_id}@example.com",
                "country_code": weighted(rng, COUNTRIES),
                "signed_up_on": day_between(rng, dt.date(2023, 1, 1), dt.date(2023, 12, 31)).isoformat(),
            }
        )
    return rows


def make_orders(rng: random.Random, customers: list[dict[str, object]], products: list[dict[str, object]]):
    days = sorted(day_between(rng, FIRST_DAY, LAST_DAY) for _ in range(N_ORDERS))
    active = [p for p in products if p["is_active"] == "true"]
    orders: list[dict[str, object]] = []
    items: list[dict[str, object]] = []
    payments: list[dict[str, object]] = []
    for order_id, day in enumerate(days, start=1):
        recent = (LAST_DAY - day).days < 10
        status = weighted(rng, ORDER_STATUSES_OPEN if recent else ORDER_STATUSES_DONE)
        customer = rng.choice(customers)
        orders.append(
            {
                "order_id": order_id,
                "customer_id": customer["customer_id"],
                "ordered_on": day.isoformat(),
                "status": status,
            }
        )
        total = 0
        for product in rng.sample(active, k=rng.randint(1, 3)):
            quantity = rng.choice([1, 1, 1, 2, 2, 3])
            # one item in ten was sold at a 15% discount
            unit_price = int(product["price_cents"])
            if rng.random() < 0.1:
                unit_price = unit_price * 85 // 100
            items.append(
                {
                    "order_item_id": len(items) + 1,
                    "order_id": order_id,
                    "product_id": product["product_id"],
                    "quantity": quantity,
                    "unit_price_cents": unit_price,
                }
            )
            total += quantity * unit_price
        if status == "cancelled":
            continue  # never charged
        method = weighted(rng, PAYMENT_METHODS)
        if rng.random() < 0.1 and total > 2500:
            # part paid with a gift card, the rest with the chosen method
            gift = rng.choice([1000, 2500])
            parts = [("gift_card", gift), (method, total - gift)]
        else:
            parts = [(method, total)]
        for part_method, amount in parts:
            payments.append(
                {
                    "payment_id": len(payments) + 1,
                    "order_id": order_id,
                    "payment_method": part_method,
                    "amount_cents": amount,
                    "paid_on": day.isoformat(),
                }
            )
    return orders, items, payments


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "seeds")
    args = parser.parse_args()

    rng = random.Random(SEED)  # noqa: S311 - reproducible sample data, not security
    products = make_products(rng)
    customers = make_customers(rng)
    orders, items, payments = make_orders(rng, customers, products)

    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in [
        ("customers", customers),
        ("products", products),
        ("orders", orders),
        ("order_items", items),
        ("payments", payments),
    ]:
        write_csv(args.out / f"{name}.csv", rows)
        print(f"{name}.csv: {len(rows)} rows")


if __name__ == "__main__":
    main()
