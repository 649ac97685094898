"""Live trading of a StrategySpec (:func:`live_strategy`, :class:`LiveSpecStrategy`): the backtests'
position state and rules (:class:`evaluator.lumibot.core.SpecCore`) on a live Lumibot broker (paper or
real money). At each iteration it reads the broker's recent bars of the spec's symbol
(``get_historical_prices``; :mod:`brokers.live.bars` keeps the closed ones, builds hourly bars the way the
store does) into a Market built by the backtests' ``bars_from_frame``, and recomputes
:func:`evaluator.fast.signal_arrays` on it. A bar not yet decided on is decided once, in the kernel's
order: step 7 on its close, then steps 1-5 at the next bar's open, which is now (the wall clock's bar,
so the end-of-day flat and ``max_hold_minutes`` follow the clock even on delayed data). The entry window
and the flat flags come from the calendar (``data.calendar``): the arrays cannot know yet that their last
bar is its session's last. Times compare in session minutes: a forex day rolls at 17:00 and a futures day
at 18:00 New York, so a 16:55 ``eod_flat_time`` closes before the roll and the evening after it opens the
next day (:func:`brokers.live.bars.session_minute_and_date`). Options are chosen from the broker's chain (``get_chains``,
``get_chain_full_info``) by ``select_contract`` itself, on the quotes' mids. Orders go through Lumibot's
order API to the deployment's :class:`brokers.lumibot_broker.AdapterBroker`, so every one of them passes
the broker adapter (idempotent client ids, reconciled after an uncertain submit, the deployment's risk
limits), whatever the market: stocks, options, futures (``/MESZ26``) and forex. Entries and exits are
market orders (a multi-leg position as one multi-leg order). The stop and
the final target of a single-instrument position are one bracket held at the broker from the entry's fill
(GTC, on the price grid, rounded towards the side they trigger on): a Tradier OCO order, one cancelling the
other (a futures contract's too), or a TradeLocker position's own stop-loss and take-profit; trailing and
break-even move it in place (a modify, so the position keeps its stop; cancel-and-replace only where the
broker refuses the move), and it is replaced only
when its quantity changes (after a partial target; Tradier cannot change an order's quantity). Partial
targets cannot join the bracket: at Tradier they rest as their own limit orders next to it (an option's
are watched: Lumibot refuses option closes beyond the position counting working ones); on a
TradeLocker account (hedging: a resting opposite order opens a second position instead of closing the
first) they are watched at every iteration against the last price and closed with a market order, which
the position's stop-loss and take-profit then follow. Multi-leg levels are checked on the legs' bar closes
(their quote's mid when a contract did not trade). Fills, positions and cash are the broker's: levels start
from the actual fill, modelled slippage and commissions only size the position, and the broker's position
is the truth (:mod:`~brokers.live.reconcile`: one found at the broker is taken over with levels from its
average price, one gone is forgotten; a bracket an earlier run left working is adopted, moved if its levels
must change, other working orders of an earlier run are cancelled). Where the fill model cannot hold live:
fills are the broker's prices, not a bar's open; an expiring option closes at its last bar's open instead
of the close. Staged conversions trade live as the engines trade them (:mod:`brokers.live.staged`);
futures trade on Tradier with ``FARM_ENABLE_FUTURES=1``, one listed contract at a time
(:mod:`brokers.live.futures`). Refused live (:func:`live_problem`): what ``brokers.markets`` routes
elsewhere or keeps behind a flag (forex on Tradier, stocks and options on TradeLocker, futures without the
flag).

Lumibot live behaviours the live mode works around (lumibot 4.6.30):

9. ``Strategy.get_last_price`` caches prices per broker clock tick in any process where Lumibot read
   ``IS_BACKTESTING=true`` at import (:mod:`evaluator.lumibot` imports it so); a live broker's clock never ticks, so
   live prices would never change. The import-time snapshot is reset (backtests are recognised by their
   broker as well).
10. Strategy callbacks for events that happen during the first iteration are dropped, and
    ``on_trading_iteration`` runs on a worker thread while the executor thread delivers callbacks: the
    strategy follows its orders' states (which the broker's polling thread keeps current) at every
    iteration and callback, under one lock; an entry waits a few seconds for its fills so its resting
    exits follow at once, not one iteration later.
11. Lumibot's Tradier data source (the deployments' Tradier data, :mod:`brokers.lumibot_tradier`) treats
    paper accounts' data as 15 minutes late: decisions use the bars as delivered with the clock's bar as
    "now". A position taken over after a restart gets its entry from the adapter's average price (Tradier:
    its cost basis).
12. Lumibot's Tradier data source counts 1,440 minutes a day when it picks the first day to fetch, so the
    default lookback asks for three days of bars; ``get_chain_full_info`` is given the underlying price and
    a zero rate (else it fetches them); ``Order.get_fill_price`` rounds to cents, so fills are averaged here.

Modules: :mod:`~brokers.live.strategy` (:class:`LiveSpecStrategy`), :mod:`~brokers.live.reconcile` (the broker's
positions and working exits at each iteration and after a restart), :mod:`~brokers.live.factory` (what trades
live where, and the factory), :mod:`~brokers.live.bars` (broker bars as a Market, the live calendar and
session minutes), :mod:`~brokers.live.assets` (fill prices, broker symbols), :mod:`~brokers.live.chain`
(option contracts from the broker's chain), :mod:`~brokers.live.staged` (staged conversions),
:mod:`~brokers.live.futures` (the futures contract traded). The backtest engine never imports this package.
"""

from brokers.live.factory import UnsupportedLive, live_problem, live_strategy
from brokers.live.strategy import LiveSpecStrategy

__all__ = ["LiveSpecStrategy", "UnsupportedLive", "live_problem", "live_strategy"]
