"""Local fake broker servers (threaded HTTP on 127.0.0.1) speaking Tradier's and TradeLocker's wire formats."""

from ._server import FakeServer, Fault, RecordedRequest
from .tradelocker_fake import FakeTradeLocker
from .tradier_fake import FakeTradier

__all__ = ["FakeServer", "FakeTradeLocker", "FakeTradier", "Fault", "RecordedRequest"]
