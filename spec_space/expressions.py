"""Signal expressions: the small language entry and exit conditions are written in.

An expression is a Python-syntax expression over bar fields and catalogue functions, for example
``crosses_above(sma(close, 10), sma(close, 30)) and volume_ratio(20) > 1.5``. It is parsed with
:mod:`ast` and checked against a whitelist, so a spec can never run arbitrary code, and every
mistake is reported with the column where it sits.

Evaluation lives in the evaluator (it owns the data); this module only knows the grammar and the
catalogue of names, so the LLM agents, the validator and both engines share one definition.
"""

from __future__ import annotations

import ast
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

#: Bar fields an expression may read.
FIELDS: dict[str, str] = {
    "open": "bar open",
    "high": "bar high",
    "low": "bar low",
    "close": "bar close",
    "volume": "bar volume",
    "hl2": "(high + low) / 2",
    "hlc3": "(high + low + close) / 3",
}


@dataclass(frozen=True, slots=True)
class FunctionDoc:
    signature: str
    returns: str  # "number" or "bool"
    doc: str
    min_args: int
    max_args: int
    string_args: tuple[int, ...] = ()  # positions that must be string literals (times, names)


#: The catalogue of signal functions. Every one is causal: its value at a bar uses that bar and earlier ones.
FUNCTIONS: dict[str, FunctionDoc] = {
    "sma": FunctionDoc("sma(source, period)", "number", "simple moving average", 2, 2),
    "ema": FunctionDoc(
        "ema(source, period)", "number", "exponential moving average (alpha = 2/(period+1))", 2, 2
    ),
    "rsi": FunctionDoc("rsi(source, period)", "number", "Wilder's relative strength index, 0..100", 2, 2),
    "atr": FunctionDoc("atr(period)", "number", "Wilder's average true range", 1, 1),
    "vwap": FunctionDoc("vwap()", "number", "session volume-weighted average price, reset each day", 0, 0),
    "bb_upper": FunctionDoc(
        "bb_upper(source, period, k)", "number", "Bollinger upper band: sma + k * std", 3, 3
    ),
    "bb_lower": FunctionDoc(
        "bb_lower(source, period, k)", "number", "Bollinger lower band: sma - k * std", 3, 3
    ),
    "highest": FunctionDoc(
        "highest(source, period)", "number", "highest value of the last `period` bars", 2, 2
    ),
    "lowest": FunctionDoc("lowest(source, period)", "number", "lowest value of the last `period` bars", 2, 2),
    "prev": FunctionDoc("prev(source, n)", "number", "the value n bars ago", 2, 2),
    "volume_ratio": FunctionDoc(
        "volume_ratio(period)", "number", "bar volume / average volume of the previous `period` bars", 1, 1
    ),
    "opening_range_high": FunctionDoc(
        "opening_range_high('10:30')",
        "number",
        "highest high of the session from its first bar up to (not including) the given time; NaN before it. "
        "Sessions (data.calendar): stocks and regular-hours futures open 09:30 New York (metals 08:20); "
        "extended futures at 18:00 and forex at 17:00 the evening before",
        1,
        1,
        (0,),
    ),
    "opening_range_low": FunctionDoc(
        "opening_range_low('10:30')",
        "number",
        "lowest low of the session from its first bar up to (not including) the given time; NaN before it. "
        "Sessions (data.calendar): stocks and regular-hours futures open 09:30 New York (metals 08:20); "
        "extended futures at 18:00 and forex at 17:00 the evening before",
        1,
        1,
        (0,),
    ),
    "prior_day_high": FunctionDoc(
        "prior_day_high()", "number", "previous session's high (a resistance zone)", 0, 0
    ),
    "prior_day_low": FunctionDoc(
        "prior_day_low()", "number", "previous session's low (a support zone)", 0, 0
    ),
    "zone_breakout": FunctionDoc(
        "zone_breakout('up'|'down', '10:30', buffer, volume_ratio, relaxed_ratio, volume_period, second_chance"
        "[, require_return])",
        "bool",
        "ZRCE second chance. The zone is the session range up to the zone-drawing time. A close beyond the zone "
        "edge by `buffer` whose volume_ratio(volume_period) meets `volume_ratio` triggers, on any bar after the "
        "zone is drawn (the first one included). A close beyond it that misses the ratio is a failed break; "
        "after one, with second_chance 1, a later close beyond the edge needs only `relaxed_ratio` "
        "(<= volume_ratio); with require_return 1 (default 0, the seed spec asks for no return) only once a "
        "close came back inside the zone since the last failed break. At most one trigger per direction per "
        "session.",
        7,
        8,
        (0, 1),
    ),
    "time_between": FunctionDoc(
        "time_between('09:45', '15:30')",
        "bool",
        "bar start time (exchange time) within [start, end); a start after the end spans midnight "
        "('20:00', '02:00': the evening and the next morning)",
        2,
        2,
        (0, 1),
    ),
    "day_of_week": FunctionDoc(
        "day_of_week('mon', 'wed', ...)",
        "bool",
        "bar's weekday is one of the given days",
        1,
        7,
        (0, 1, 2, 3, 4, 5, 6),
    ),
    "crosses_above": FunctionDoc(
        "crosses_above(a, b)",
        "bool",
        "a > b on this bar and a <= b on the previous; an opening range that forms during the session is "
        "crossed on its first bar when that bar closes beyond it",
        2,
        2,
    ),
    "crosses_below": FunctionDoc(
        "crosses_below(a, b)",
        "bool",
        "a < b on this bar and a >= b on the previous; an opening range that forms during the session is "
        "crossed on its first bar when that bar closes beyond it",
        2,
        2,
    ),
    "external_signal": FunctionDoc(
        "external_signal('name', 'buy'|'sell', window_minutes)",
        "bool",
        "true on bars starting within window_minutes after an event of that side in the named signal list "
        "(spec.signals, e.g. the Kirkland CSV) until the next event of the list; 0 = only the first bar at or "
        "after the event",
        3,
        3,
        (0, 1),
    ),
    "signal_level": FunctionDoc(
        "signal_level('name', 'entry'|'stop'|'target1'|'target2'|..., window_minutes)",
        "number",
        "that price of the latest event of the named signal list while its window is open, else NaN",
        3,
        3,
        (0, 1),
    ),
    "abs": FunctionDoc("abs(x)", "number", "absolute value", 1, 1),
    "min": FunctionDoc("min(a, b)", "number", "element-wise minimum", 2, 2),
    "max": FunctionDoc("max(a, b)", "number", "element-wise maximum", 2, 2),
}

_ALLOWED_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Compare,
    ast.Gt,
    ast.GtE,
    ast.Lt,
    ast.LtE,
    ast.Eq,
    ast.NotEq,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
)


class ExpressionError(ValueError):
    """A signal expression that does not parse or uses something outside the catalogue."""

    def __init__(self, expression: str, message: str, column: int | None = None) -> None:
        pointer = f"\n    {expression}\n    {' ' * column}^" if column is not None else f"\n    {expression}"
        super().__init__(f"{message}{pointer}")
        self.expression = expression
        self.column = column


# every backtest of a trial re-reads its spec's expressions: parse each distinct text once per process
# (callers only walk the tree, never change it)
@lru_cache(maxsize=4096)
def parse_expression(text: str) -> ast.Expression:
    """Parse and check an expression; raise :class:`ExpressionError` pointing at the problem."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(str(text), "expected a non-empty expression string")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(text, f"syntax error: {exc.msg}", (exc.offset or 1) - 1) from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(
                text,
                f"'{type(node).__name__}' is not allowed in a signal expression",
                getattr(node, "col_offset", None),
            )
        if isinstance(node, ast.Name) and node.id not in FIELDS and not _is_call_target(tree, node):
            raise ExpressionError(
                text, f"unknown name '{node.id}'; fields are {', '.join(FIELDS)}", node.col_offset
            )
        if isinstance(node, ast.Call):
            _check_call(text, node)
        if (
            isinstance(node, ast.Constant)
            and not isinstance(node.value, (int, float, str))
            or (isinstance(node, ast.Constant) and isinstance(node.value, bool))
        ):
            raise ExpressionError(
                text, f"constant {node.value!r} is not a number or a string", node.col_offset
            )
    return tree


def _is_call_target(tree: ast.Expression, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))


def _check_call(text: str, node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name):
        raise ExpressionError(text, "only catalogue functions can be called", node.col_offset)
    doc = FUNCTIONS.get(node.func.id)
    if doc is None:
        raise ExpressionError(
            text,
            f"unknown function '{node.func.id}'; see the catalogue: {', '.join(sorted(FUNCTIONS))}",
            node.col_offset,
        )
    if node.keywords:
        raise ExpressionError(text, f"{doc.signature}: keyword arguments are not supported", node.col_offset)
    if not doc.min_args <= len(node.args) <= doc.max_args:
        raise ExpressionError(
            text,
            f"{doc.signature} takes {doc.min_args}..{doc.max_args} arguments, got {len(node.args)}",
            node.col_offset,
        )
    for position, arg in enumerate(node.args):
        is_string = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        if position in doc.string_args and not is_string:
            raise ExpressionError(
                text, f"{doc.signature}: argument {position + 1} must be a quoted string", arg.col_offset
            )
        if position not in doc.string_args and is_string:
            raise ExpressionError(
                text, f"{doc.signature}: argument {position + 1} must not be a string", arg.col_offset
            )
    if node.func.id == "zone_breakout":
        _check_zone_breakout(text, node)
    if node.func.id == "time_between":
        _check_time_between(text, node)


def _check_time_between(text: str, node: ast.Call) -> None:
    clocks = []
    for position, arg in enumerate(node.args):
        try:
            clocks.append(dt.time.fromisoformat(arg.value))  # type: ignore[attr-defined]
        except ValueError:
            raise ExpressionError(
                text,
                f"time_between: argument {position + 1} must be a time as 'HH:MM' (exchange time), "
                f"got {arg.value!r}",  # type: ignore[attr-defined]
                arg.col_offset,
            ) from None
    if clocks[0] == clocks[1]:
        raise ExpressionError(
            text,
            f"time_between: start and end are both {node.args[0].value!r}, an empty window; "  # type: ignore[attr-defined]
            "drop the condition to trade all day, or give an end after the start",
            node.col_offset,
        )


def _number(node: ast.AST) -> float | None:
    """The value of a number literal (``1.5``, ``-2``), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _check_zone_breakout(text: str, node: ast.Call) -> None:
    direction = node.args[0]
    if direction.value not in ("up", "down"):  # type: ignore[attr-defined]
        raise ExpressionError(
            text, f"zone_breakout: the direction must be 'up' or 'down', got {direction.value!r}",  # type: ignore[attr-defined]
            direction.col_offset,
        )
    full, relaxed = _number(node.args[3]), _number(node.args[4])
    # 1e-9: a sampled 1.4000000000000001 against its sum rounded to 1.4 is equal, not above
    if full is not None and relaxed is not None and relaxed > full + 1e-9:
        raise ExpressionError(
            text,
            f"zone_breakout: relaxed_ratio {relaxed:g} (argument 5) exceeds volume_ratio {full:g} (argument 4); "
            "the second chance relaxes the volume check, so use relaxed_ratio <= volume_ratio",
            node.args[4].col_offset,
        )

