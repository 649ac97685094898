"""Per-model token prices, to put a dollar figure on a run.

USD per 1 million tokens (input, output), from the vendors' public price pages as of 2025-08
(standard tier, no batch or cached-input discounts). Gemini 2.5 Pro charges more above 200k
prompt tokens; the seeds prompts stay far below that, so the lower tier is used. Reasoning and
"thinking" tokens are billed as output and are counted as output by the providers.
Edit ``PRICES_PER_MTOK`` (or pass your own table to ``cost_usd``) when prices change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o4-mini": (1.10, 4.40),
    # Google
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.10, 0.40),
    # no network, no cost
    "offline-rules-v1": (0.0, 0.0),
}

# A priced name also prices its dated snapshots and previews (gpt-4o-mini-2024-07-18,
# gemini-2.5-flash-preview-05-20), but not a different family that shares a prefix (gpt-4o-audio).
_SNAPSHOT_SUFFIX = re.compile(r"^-(?:\d|preview|latest|exp)")


def price_for(model: str, table: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for ``model``: exact name, else the longest priced prefix
    followed by a snapshot suffix; ``None`` when unknown."""
    table = PRICES_PER_MTOK if table is None else table
    name = model.lower().removeprefix("models/")
    if name in table:
        return table[name]
    best: str | None = None
    for priced in table:
        is_snapshot = name.startswith(priced) and _SNAPSHOT_SUFFIX.match(name[len(priced):])
        if is_snapshot and (best is None or len(priced) > len(best)):
            best = priced
    return table[best] if best is not None else None


def cost_usd(
    model: str, input_tokens: int, output_tokens: int, table: Mapping[str, tuple[float, float]] | None = None
) -> tuple[float, str | None]:
    """Dollar cost of one call and a note when the model has no price (cost then counted as 0)."""
    price = price_for(model, table)
    if price is None:
        return 0.0, (
            f"no price for model {model!r} in seeds.providers PRICES_PER_MTOK; cost counted as $0 "
            "(add the model's price to the table to count it)"
        )
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000, None
