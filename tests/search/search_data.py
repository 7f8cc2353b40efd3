"""The tiny search fixtures' data (a module of its own: test folders share the name ``conftest``,
so importing it by name picks whichever folder's was imported first)."""

from __future__ import annotations

import polars as pl

DAY = 86_400
T0 = 1_600_000_000

CATALOGUE = {
    "item_id": ["tea", "coffee", "yoga", "bike", "novel", "plain"],
    "title": ["Green tea leaves", "Dark roast coffee beans", "Yoga mat", "Road bike helmet", "Mystery novel", None],
    "description": ["Loose leaf green tea from Japan.", "Whole beans, roasted dark, for espresso.",
                    "A non-slip mat for yoga and pilates.", "A light helmet for cycling on the road.",
                    "A detective story set in Paris.", None],
    "category": ["Grocery > Tea", "Grocery > Coffee", "Sports > Yoga", "Sports > Cycling", "Books > Fiction", None],
    "brand": ["Leafy", "Roastery", "Flex", "Spin", "Inkwell", None],
    "price": [12.5, 15.0, 30.0, 55.0, 9.99, None],
}

# (item, text): each item's reviews use its own words, so every method can find it.
_TEXTS = {
    "tea": ["lovely green tea, calm morning cup", "fresh tea leaves, smooth taste", "my favourite green tea"],
    "coffee": ["strong espresso, great crema", "dark roast beans smell amazing", "best coffee for espresso"],
    "yoga": ["grippy mat for yoga class", "thick yoga mat, no slipping", "good mat for pilates"],
    "bike": ["helmet fits well on long rides", "light helmet for road cycling", "safe helmet for my bike"],
    "novel": ["gripping detective mystery", "could not stop reading this mystery", "a clever detective plot"],
}


def _reviews() -> pl.DataFrame:
    rows = []
    t = T0
    for rnd in range(3):
        for item, texts in _TEXTS.items():
            for j, text in enumerate(texts):
                rows.append({"item_id": item, "user_id": f"u{(j + rnd) % 4}", "timestamp": t, "rating": 4.0 + (j % 2),
                             "review_title": None, "review_text": text if rnd == 0 else f"{text}, again" * rnd})
                t += DAY // 3
    return pl.DataFrame(rows)
