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
     and take-profit as resting orders checked intrabar on each bar's high and low. A bar opening
     beyond a level fills at the open (a gap), otherwise at the level. Exits fill in the order price
     reaches them: partial targets and the final target from the nearest up, so a partial beyond the
     final target never fills (the target closes everything first; the spec model refuses a pct
     partial beyond a pct target); a gap through several levels fills them all at the open.
     When one bar touches both the stop side (stop, break-even or trailing stop) and a target, the
     stop fills first and closes everything (pessimistic): a minute bar's high and low do not say
     which came first, and assuming the favourable order would credit profits the data cannot show.
  5. Multi-leg option positions have no single price path inside a bar, so their stops, targets
     and partial targets are checked on the bar's close marks and filled at the next bar's open.
  6. Trailing stops and break-even moves use the best price up to the previous bar, so a bar never
     raises its own stop (pessimistic).
  7. Partial take-profits close their fraction of the original quantity at their level; the rest
     keeps the stop, trailing and final target.
  8. Time exits (``eod_flat_time``, ``max_hold_minutes``, ``close_days_before_expiry``) fill at the
     open of the first bar at or past the time. ``close_days_before_expiry`` counts trading sessions
     (exchange calendar): N closes on the first bar of the session N sessions before the expiry
     session, 0 on the expiry session itself. Options still held at their expiry session's last
     bar close at that bar's mark (0DTE). Everything open at the end of the backtest window closes
     at the last bar's close. No entry is taken whose fill bar would already be at or past the flat time.
     ``eod_flat_time`` and the entry window (``window_start``/``window_end``) are times of the trading
     session (:func:`data.calendar.spec_session_minute`): a forex day rolls at 17:00 and a Globex day
     opens at 18:00 the evening before its date, so a time at or after that is the session's opening
     evening and an earlier one its date (forex 16:55 flats before the roll; 20:00-02:00 is one window).
     Time exits always close: a leg with no trade within the staleness limit closes at its last known
     price and the exit row is marked ``stale`` (an expiring leg without one settles at intrinsic value,
     also marked stale), so a quiet leg never carries a 0DTE or a spread overnight. Exits that are not
     time exits (signals, multi-leg levels) still wait for a price.
  9. Reversal (direction ``both``): the opposite entry signal closes the position and opens the new
     one at the same next-bar open.

Marks
  10. Equity is marked on bar closes; an option without a trade in the bar keeps its last price
      within the staleness limit, else its previous mark. The max drawdown is measured on these
      bar marks, not only on the daily closes.

Trades
  14. A trade is a position, entry to final exit. The trades table has a row per exit fill (each
      partial take-profit is one) with a ``trade_id`` grouping a position's rows; ``n_trades``, win
      rate, profit factor and average trade count positions, each won or lost by the sum of its rows'
      PnL (entry and exit commissions, slippage and spreads included).
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

# 3: round-trip trades, price-ordered exits, closing time exits, bar-marked drawdown; 4: flat time and entry
# window as times of the trading session (forex and futures evenings), rule 8
FILL_MODEL_VERSION = "4"

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
