"""The HTTP boundary the REST adapters (Tradier, TradeLocker) share: one httpx client, and every failure turned
into a :mod:`brokers.errors` type by the same rules.

Before any response (timeout, dropped connection) a failure is temporary (:func:`translate_transport_error`); a
failed response goes through :func:`error_from_response`. What differs between brokers is only what each
adapter declares: where its error bodies keep their text (:meth:`HttpAdapter._detail_of`), which statuses
refuse an order (:meth:`HttpAdapter._refuses_order`), which words mean the account lacks the money
(``_funds_markers``), which credential a 401/403 should send the user to (:meth:`HttpAdapter._auth_message`)
and which secrets no message may carry (``_secrets``).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx

from brokers.base import BrokerAdapter
from brokers.credentials import is_live_url
from brokers.errors import BrokerError, error_from_response, translate_transport_error

logger = logging.getLogger(__name__)

# How much of an error body a message quotes.
_DETAIL_CHARS = 300


class HttpAdapter(BrokerAdapter):
    """A :class:`BrokerAdapter` that speaks a REST API through ``self._client`` (set by the subclass)."""

    _client: httpx.Client
    # The broker's live (real money) API: an adapter on its host needs allow_live=True.
    _live_url: ClassVar[str]
    # Lower-case words of a refusal that mean the account lacks the money (InsufficientFundsError).
    _funds_markers: ClassVar[tuple[str, ...]] = ()

    @property
    @abstractmethod
    def _secrets(self) -> tuple[str, ...]:
        """Every credential the adapter holds: scrubbed from each message it raises."""

    @abstractmethod
    def _auth_message(self, what: str, code: int, detail: str) -> str:
        """The message of a 401/403 answer to ``what``: which credential (environment variable) to check."""

    @staticmethod
    @abstractmethod
    def _refuses_order(code: int) -> bool:
        """True when a failed answer with status ``code`` (not 429/5xx, 401/403 or a known 404) refuses the
        order as invalid (InvalidOrderError), False when it is some other BrokerError."""

    @staticmethod
    @abstractmethod
    def _detail_of(body: Mapping[str, Any]) -> str | None:
        """The broker's own error text in a JSON object error body, None when it has none there."""

    def _refuse_unasked_live(self, url: str, *, allow_live: bool, setting: str, alternative: str) -> None:
        """Nothing trades live by default: ``url`` (the ``setting`` parameter) on the live host needs ``allow_live``;
        the error names ``alternative``, the paper environment to use instead."""
        if is_live_url(url, self._live_url) and not allow_live:
            raise ValueError(
                f"{setting} {url} is the live (real money) {self.name} API: pass allow_live=True to trade it, "
                f"or use {alternative}"
            )

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request; a failure before any response is a TemporaryBrokerError (the outcome is unknown)."""
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise translate_transport_error(exc, broker=self.name, what=what, secrets=self._secrets) from exc
        logger.debug("%s -> HTTP %d", what, response.status_code)
        return response

    def _error_detail(self, response: httpx.Response) -> str:
        """What a failed ``response`` says went wrong, shortened for a message."""
        try:
            body = response.json()
        except ValueError:
            return response.text.strip()[:_DETAIL_CHARS] or response.reason_phrase
        detail = self._detail_of(body) if isinstance(body, dict) else None
        return detail if detail is not None else str(body)[:_DETAIL_CHARS]

    def _response_error(
        self, response: httpx.Response, what: str, not_found: Callable[[], BrokerError] | None = None
    ) -> BrokerError:
        """The error of the failed ``response`` to ``what`` (raise it); ``not_found`` builds the error of a 404."""
        detail = self._error_detail(response)
        return error_from_response(
            response,
            broker=self.name,
            what=what,
            detail=detail,
            auth_message=lambda code: self._auth_message(what, code, detail),
            invalid=self._refuses_order,
            funds_markers=self._funds_markers,
            not_found=not_found,
            secrets=self._secrets,
        )

    def close(self) -> None:
        self._client.close()


__all__ = ["HttpAdapter"]
