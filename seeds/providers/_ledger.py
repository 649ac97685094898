"""Token and dollar accounting for one run, per provider, model and role."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class UsageRow:
    provider: str
    model: str
    role: str
    calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0  # answers that were paid for but unusable
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class UsageLedger:
    """Sums usage across calls; thread-safe so agents may share one ledger across threads."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, str], UsageRow] = {}
        self._lock = threading.Lock()

    def add(
        self,
        *,
        provider: str,
        model: str,
        role: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        cached: bool = False,
        failed: bool = False,
    ) -> None:
        with self._lock:
            key = (provider, model, role)
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = UsageRow(provider, model, role)
            row.calls += 1
            row.cached_calls += int(cached)
            row.failed_calls += int(failed)
            row.input_tokens += input_tokens
            row.output_tokens += output_tokens
            row.cost_usd += cost_usd

    def rows(self) -> list[UsageRow]:
        """Copies of the rows, sorted by provider, model, role."""
        with self._lock:
            return [UsageRow(**vars(r)) for _, r in sorted(self._rows.items())]

    def totals(self) -> UsageRow:
        total = UsageRow("all", "", "")
        for row in self.rows():
            total.calls += row.calls
            total.cached_calls += row.cached_calls
            total.failed_calls += row.failed_calls
            total.input_tokens += row.input_tokens
            total.output_tokens += row.output_tokens
            total.cost_usd += row.cost_usd
        return total

    @property
    def total_cost_usd(self) -> float:
        return self.totals().cost_usd

    def to_dict(self) -> dict[str, object]:
        """For provenance files: the rows and the totals as plain data."""
        return {"rows": [vars(r) for r in self.rows()], "totals": vars(self.totals())}

    def summary_table(self) -> str:
        """A fixed-width text table, one line per provider/model/role plus a total line."""
        header = ("provider", "model", "role", "calls", "cached", "failed", "in_tokens", "out_tokens", "cost_usd")
        lines = [header]
        for r in [*self.rows(), self.totals()]:
            lines.append(
                (
                    r.provider,
                    r.model,
                    r.role,
                    str(r.calls),
                    str(r.cached_calls),
                    str(r.failed_calls),
                    f"{r.input_tokens:,}",
                    f"{r.output_tokens:,}",
                    f"{r.cost_usd:.4f}",
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        numeric_from = 3  # right-align the counts and money

        def fmt(line: tuple[str, ...]) -> str:
            cells = [c.ljust(w) if i < numeric_from else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
            return "  ".join(cells).rstrip()

        rule = "  ".join("-" * w for w in widths)
        body = [fmt(line) for line in lines[1:-1]]
        return "\n".join([fmt(lines[0]), rule, *body, rule, fmt(lines[-1])])
