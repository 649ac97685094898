"""Render the building-block catalogue (``catalogue.md``) from the models and the expression table.

The page is generated so it cannot drift from the code; a test compares the committed file with
this rendering (``search spec catalogue --write`` refreshes it).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from spec_space.expressions import FIELDS, FUNCTIONS
from spec_space.instruments import FUTURES, OPTION_MULTIPLIER
from spec_space.models import (
    BreakEven,
    Costs,
    Entry,
    Exits,
    Instrument,
    Level,
    OptionLeg,
    PartialTakeProfit,
    Sizing,
    StagedConversion,
    StrategySpec,
    Trailing,
)

CATALOGUE_PATH = Path(__file__).with_name("catalogue.md")

_INTRO = """\
# Building-block catalogue

Every strategy the farm searches is a `StrategySpec` assembled from the blocks below; a spec
space (`spec_space/*.yaml`) is a spec whose values may be `$parameters` with distributions.
This page is generated from the code (`search spec catalogue --write`): it is what the seeding
agents are given, with the JSON schema (`search spec schema`). Fill rules: `evaluator/fill_model.py`.

## Spec space files

```yaml
name: my_space                       # letters, digits, _ . -
data: {start: 2024-01-02, end: 2024-06-28}
walk_forward: {scheme: rolling, train_days: 40, test_days: 10, embargo_days: 1, folds: 6}
objectives: [{metric: sharpe, direction: maximize}, {metric: max_drawdown, direction: minimize}]
constraints: [{metric: n_trades, op: ">=", value: 20}]
params:
  fast: {int: [5, 30], default: 10}                   # int: [low, high], step, log, default
  stop: {float: [0.002, 0.02], log: true}             # float: [low, high], step or log, default
  trail: {choice: [false, true]}                      # choice: [values]
  trail_pct: {float: [0.02, 0.1], when: {trail: true}}  # only drawn when trail is true
  first_tp: {float: [0.05, 0.3]}
  tp_step: {float: [0.02, 0.3]}
  final_tp: {sum: [first_tp, tp_step]}                # never drawn: the sum of its active terms
spec:                                # a StrategySpec; `$name` anywhere, also inside expressions
  entry: {long: "crosses_above(sma(close, $fast), sma(close, 30))"}
  exits:
    trailing: {pct: $trail_pct}                       # an inactive parameter drops its block
    take_profit: {pct: $final_tp}                     # above the partial target by construction
    partial_take_profits: [{pct: $first_tp, fraction: 0.5}]
```

Metrics available to objectives, constraints and gates: total_return, cagr, volatility, sharpe,
sortino, max_drawdown (a positive fraction), calmar, win_rate, profit_factor, avg_trade,
n_trades, exposure.
"""


def _model_table(title: str, model: type[BaseModel], note: str = "") -> str:
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        annotation = str(field.annotation).replace("typing.", "").replace("spec_space.models.", "")
        annotation = annotation.replace("<class '", "").replace("'>", "").replace("|", "or")
        value = None if field.is_required() else field.get_default(call_default_factory=True)
        default = "required" if field.is_required() else "see below" if isinstance(value, BaseModel) else repr(value)
        description = (field.description or "").replace("|", "/")
        lines.append(f"| `{name}` | {annotation} | {default} | {description} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    parts = [_INTRO, "## Signals (expressions)\n",
             "Entry and exit conditions are expressions over bar fields and these functions. All are causal; "
             "a signal on a bar's close is traded at the next bar's open. Operators: `and or not`, "
             "`> >= < <= == !=`, `+ - * /`.\n",
             "Fields: " + ", ".join(f"`{k}` ({v})" for k, v in FIELDS.items()) + "\n",
             "| function | returns | meaning |", "|---|---|---|"]
    for doc in FUNCTIONS.values():
        parts.append(f"| `{doc.signature.replace('|', ' or ')}` | {doc.returns} | {doc.doc} |")
    parts.append("\n## Blocks\n")
    parts.append(_model_table("StrategySpec", StrategySpec))
    parts.append(_model_table(
        "instrument", Instrument,
        "Types: `stock` (stocks and ETFs), `option` (legs on the underlying `symbol`, "
        f"{OPTION_MULTIPLIER:.0f} shares per contract), `future` (a root; continuous front month), "
        "`forex` (a pair; quantity in lots, account currency = quote currency).",
    ))
    parts.append(_model_table("instrument.legs[] (option leg)", OptionLeg))
    parts.append(_model_table("instrument.staged (ghetto spread)", StagedConversion))
    futures = ", ".join(f"{c.root} ({c.description}, ${c.multiplier:g}/pt, tick {c.tick_size:g})" for c in FUTURES.values())
    parts.append(f"Futures roots: {futures}.\n\nForex: pips are 0.0001 (0.01 for JPY quotes and gold); a lot is "
                 "100,000 units (100 oz for XAU).\n")
    parts.append(_model_table("entry", Entry))
    parts.append(_model_table("exits", Exits))
    parts.append(_model_table("exits.stop_loss / exits.take_profit (a level)", Level))
    parts.append(_model_table("exits.trailing", Trailing))
    parts.append(_model_table("exits.break_even", BreakEven))
    parts.append(_model_table("exits.partial_take_profits[]", PartialTakeProfit))
    parts.append(_model_table("sizing", Sizing))
    parts.append(_model_table("costs", Costs))
    return "\n".join(parts).rstrip() + "\n"


def write(path: Path = CATALOGUE_PATH) -> Path:
    path.write_text(render())
    return path
