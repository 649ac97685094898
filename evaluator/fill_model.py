"""The fill model, in one place. Both engines follow it; the parity tests hold them to it.

FILL_MODEL_VERSION changes whenever any rule below changes, so stored results name the rules
they were produced under.

Decisions and fills
  1. Signals are evaluated on a bar's close. A market order decided on bar ``i`` fills at bar
     ``i + 1``'s open: nothing is traded on information from the bar being traded.
  2. Option contracts are chosen at decision time (bar ``i``) from the chain as it stood then
     (last trades within the staleness limit), and filled at bar ``i + 1``: at that contract's
     own bar open if it traded in that minute, else at its last trade price if that is within the
     staleness limit; if no leg price exists the entry is cancelled. An option entry decided on one
     session never fills on the next.
  3. Costs: stocks and forex pay ``slippage_bps`` against every fill, futures ``slippage_ticks``
     ticks, options ``option_half_spread`` dollars per share (buys pay more, sells get less).
     Commission per share / contract / lot per side, plus ``commission_pct`` of traded value.

Exits
  4. Single-instrument positions (a stock, future, forex pair or one option leg) carry their stop
     and take-profit as resting orders checked intrabar on each bar's high and low. The stop is
     checked first when both are touched in one bar (pessimistic). A bar opening beyond the level
     fills at the open (a gap), otherwise at the level.
  5. Multi-leg option positions have no single price path inside a bar, so their stops, targets
     and partial targets are checked on the bar's close marks and filled at the next bar's open.
  6. Trailing stops and break-even moves use the best price up to the previous bar, so a bar never
     raises its own stop (pessimistic).
  7. Partial take-profits close their fraction of the original quantity at their level; the rest
     keeps the stop, trailing and final target.
  8. Time exits (``eod_flat_time``, ``max_hold_minutes``, ``close_days_before_expiry``) fill at the
     open of the first bar at or past the time. Options still held at their expiry session's last
     bar close at that bar's mark (0DTE). Everything open at the end of the backtest window closes
     at the last bar's close. No entry is taken whose fill bar would already be at or past the flat time.
  9. Reversal (direction ``both``): the opposite entry signal closes the position and opens the new
     one at the same next-bar open.

Marks
  10. Equity is marked on bar closes; an option without a trade in the bar keeps its last price
      within the staleness limit, else its previous mark.
  11. Staged conversion (ghetto spread): the trigger is checked on bar closes; the short leg (same
      expiry, strike ``width`` further out of the money) is sold at the next bar like an entry fill.
      The net debit after conversion becomes the basis of the position's percentage exits.

Sizing
  12. Whole shares and contracts; forex in 0.01 lots. ``pct_equity`` commits that fraction of
      equity (commission included); ``risk`` loses ``risk_pct`` of equity at the stop.

External signals
  13. An external signal event (spec.signals, e.g. a Kirkland CSV row) is known from the first bar that
      starts at or after its time; each event is traded at most once. ``signal_stop`` / ``signal_target``
      levels take the distance from that event's entry price to its stop / target, measured from our own
      fill.
"""

FILL_MODEL_VERSION = "2"

# Exit reasons, shared by both engines' trade records.
EXIT_REASONS: dict[int, str] = {
    0: "signal",
    1: "stop_loss",
    2: "take_profit",
    3: "partial_take_profit",
    4: "trailing_stop",
    5: "break_even",
    6: "time_exit",
    7: "eod_flat",
    8: "expiry",
    9: "end_of_data",
    10: "reverse",
    11: "before_expiry",
}
