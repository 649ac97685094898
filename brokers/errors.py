"""Broker errors, secret masking and the ``retrier`` decorator.

Exception hierarchy::

    BrokerError                      any failure talking to a broker; message is secret-free
     ├── TemporaryBrokerError        timeouts, connection resets, HTTP 429 and 5xx: try again later
     │                               (``retrier`` retries these with backoff, never anything else)
     ├── AuthenticationError         bad / expired API key or password, HTTP 401/403: needs a human
     ├── InvalidOrderError           the broker refused the order as malformed or not allowed
     ├── InsufficientFundsError      the broker refused the order for lack of buying power
     ├── NotSupportedError           the adapter or its configuration cannot do this (e.g. futures off)
     └── OrderNotFoundError          no order with that id at the broker

Vendor errors (httpx exceptions, HTTP status codes, error bodies) are translated into this
hierarchy at the adapter boundary with ``raise ... from exc``, so callers never see httpx types.

Every message that might contain a credential goes through :func:`redact` before the exception is
built: the secret is replaced by :func:`mask_secret`'s form (first four characters and a marker).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from email.utils import parsedate_to_datetime
from typing import Any, ParamSpec, TypedDict, TypeVar, Unpack

import httpx

logger = logging.getLogger(__name__)

_MASK_MARKER = "…(masked)"
# Secrets this short reveal too much even as a 4-character prefix: mask them completely.
_MIN_LEN_FOR_PREFIX = 8


def mask_secret(secret: str | None) -> str:
    """Return a loggable stand-in for ``secret``: ``"abcd1234efgh"`` -> ``"abcd…(masked)"``.

    Secrets shorter than 8 characters are masked completely (``"…(masked)"``); ``None`` and ``""``
    give ``"<empty>"`` so a missing key is still visible in a message.
    """
    if not secret:
        return "<empty>"
    if len(secret) < _MIN_LEN_FOR_PREFIX:
        return _MASK_MARKER
    return secret[:4] + _MASK_MARKER


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each non-empty secret in ``text`` by its masked form.

    Longer secrets are replaced first so a secret that contains another one is masked whole.
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, mask_secret(secret))
    return text


class BrokerError(Exception):
    """Base class of every broker failure.

    ``broker`` names the adapter ("tradier", "tradelocker"); ``status_code`` is the HTTP status when
    the failure came from a response. Build instances with ``secrets=`` to scrub the message.
    """

    def __init__(
        self,
        message: str,
        *,
        broker: str | None = None,
        status_code: int | None = None,
        secrets: Iterable[str | None] = (),
    ) -> None:
        clean = redact(message, secrets)
        super().__init__(clean)
        self.message = clean
        self.broker = broker
        self.status_code = status_code

    def __str__(self) -> str:
        prefix = f"[{self.broker}] " if self.broker else ""
        return prefix + self.message


class _ErrorContext(TypedDict, total=False):
    """:class:`BrokerError`'s keywords, which its subclasses pass on as they are."""

    broker: str | None
    status_code: int | None
    secrets: Iterable[str | None]


class TemporaryBrokerError(BrokerError):
    """A failure that may go away by itself (timeout, 429, 5xx, dropped connection).

    ``retry_after`` carries the server's ``Retry-After`` hint in seconds when it sent one.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, **context: Unpack[_ErrorContext]
    ) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class AuthenticationError(BrokerError):
    """Credentials were rejected. Retrying cannot help: fix the key/password in the environment."""


class InvalidOrderError(BrokerError, ValueError):
    """The order was refused as malformed or not allowed (bad symbol, price, side, session...).

    Also raised locally when an :class:`~brokers.base.OrderRequest` is built with bad fields, hence
    a ``ValueError`` too.
    """


class InsufficientFundsError(BrokerError):
    """The order was refused for lack of buying power / margin."""


class NotSupportedError(BrokerError):
    """The adapter (or its current configuration) does not offer this operation or asset class."""


class OrderNotFoundError(BrokerError):
    """The broker has no order with the given id."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None when absent/garbled."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def translate_transport_error(
    exc: httpx.HTTPError, *, broker: str, what: str, secrets: Iterable[str | None] = ()
) -> TemporaryBrokerError:
    """Map an httpx exception raised before any response arrived to a :class:`TemporaryBrokerError`.

    Use as ``raise translate_transport_error(exc, ...) from exc``. A timeout on a submit means the
    outcome is unknown: the caller must reconcile, which :meth:`BrokerAdapter.place_order` does.
    """
    if isinstance(exc, httpx.TimeoutException):
        reason = f"timed out ({type(exc).__name__})"
    else:
        reason = f"network error ({type(exc).__name__}: {exc})"
    return TemporaryBrokerError(f"{what} {reason}", broker=broker, secrets=secrets)


def temporary_from_response(
    response: httpx.Response, *, broker: str, what: str, detail: str, secrets: Iterable[str | None] = ()
) -> TemporaryBrokerError | None:
    """A :class:`TemporaryBrokerError` for HTTP 429 and 5xx responses, else None."""
    code = response.status_code
    if code == 429 or code >= 500:
        kind = "rate limited" if code == 429 else "server error"
        return TemporaryBrokerError(
            f"{what} failed: {kind} (HTTP {code}): {detail}",
            broker=broker,
            status_code=code,
            secrets=secrets,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    return None


def response_json(response: httpx.Response, *, broker: str, what: str, secrets: Iterable[str | None] = ()) -> Any:
    """The JSON body of a successful response; a body that is not JSON is a :class:`BrokerError`."""
    try:
        return response.json()
    except ValueError as exc:
        raise BrokerError(
            f"{what}: response is not JSON: {response.text[:200]!r}", broker=broker, secrets=secrets
        ) from exc


def refusal_error(
    what: str,
    code: int,
    detail: str,
    *,
    broker: str,
    invalid: bool,
    funds_markers: Iterable[str],
    secrets: Iterable[str | None] = (),
) -> BrokerError:
    """The error of a request the broker refused: :class:`InsufficientFundsError` when ``detail`` says so
    (one of the broker's ``funds_markers``), else :class:`InvalidOrderError` when ``invalid``, else
    :class:`BrokerError`."""
    lowered = detail.lower()
    error_type: type[BrokerError] = InvalidOrderError if invalid else BrokerError
    if any(marker in lowered for marker in funds_markers):
        error_type = InsufficientFundsError
    return error_type(f"{what} refused (HTTP {code}): {detail}", broker=broker, status_code=code, secrets=secrets)


def error_from_response(
    response: httpx.Response,
    *,
    broker: str,
    what: str,
    detail: str,
    auth_message: Callable[[int], str],
    invalid: Callable[[int], bool],
    funds_markers: Iterable[str],
    not_found: Callable[[], BrokerError] | None = None,
    secrets: Iterable[str | None] = (),
) -> BrokerError:
    """The error of a failed HTTP response, the same rule for every adapter: 429 / 5xx temporary, 401 / 403
    :class:`AuthenticationError` (``auth_message(code)`` says which credential to check), 404 ``not_found()``
    when given, anything else a refusal (:func:`refusal_error`, ``invalid(code)`` for an invalid order)."""
    temporary = temporary_from_response(response, broker=broker, what=what, detail=detail, secrets=secrets)
    if temporary is not None:
        return temporary
    code = response.status_code
    if code in (401, 403):
        return AuthenticationError(auth_message(code), broker=broker, status_code=code, secrets=secrets)
    if code == 404 and not_found is not None:
        return not_found()
    return refusal_error(
        what, code, detail, broker=broker, invalid=invalid(code), funds_markers=funds_markers, secrets=secrets
    )


P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_MAX_BACKOFF = 8.0


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped.

    A server ``Retry-After`` hint wins when it is longer, but is capped as well so one bad header
    cannot park a trading loop for an hour.
    """
    delay = min(cap, base * (2 ** (attempt - 1)))
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return max(0.0, delay)


def retrier(
    _func: Callable[P, R] | None = None, *, retries: int | None = None
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Retry a method on :class:`TemporaryBrokerError` with exponential backoff (freqtrade style).

    Usable bare (``@retrier``) or with a count (``@retrier(retries=5)``). Only temporary errors are
    retried; authentication, invalid-order and all other errors propagate at once. The decorated
    callable must be a method: the backoff settings are read from the instance
    (``retry_backoff_base``, ``retry_max_backoff``, ``retry_count`` attributes, falling back to the
    module defaults), so tests can make retries instant without patching ``time.sleep``.

    Never put this on an order *submit*: a retried POST can create a duplicate order. Submits go
    through :meth:`brokers.base.BrokerAdapter.place_order`, which looks the order up by client id
    before any retry.
    """

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            owner: Any = args[0] if args else None
            count = retries if retries is not None else getattr(owner, "retry_count", DEFAULT_RETRIES)
            base = getattr(owner, "retry_backoff_base", DEFAULT_BACKOFF_BASE)
            cap = getattr(owner, "retry_max_backoff", DEFAULT_MAX_BACKOFF)
            attempt = 0
            while True:
                try:
                    return func(*args, **kwargs)
                except TemporaryBrokerError as exc:
                    attempt += 1
                    if attempt > count:
                        logger.warning("%s: giving up after %d retries: %s", func.__qualname__, count, exc)
                        raise
                    delay = backoff_delay(attempt, base, cap, exc.retry_after)
                    logger.info(
                        "%s: temporary error (%s), retry %d/%d in %.2fs",
                        func.__qualname__,
                        exc,
                        attempt,
                        count,
                        delay,
                    )
                    if delay:
                        time.sleep(delay)

        return wrapper

    if _func is not None:
        return decorator(_func)
    return decorator


__all__ = [
    "AuthenticationError",
    "BrokerError",
    "InsufficientFundsError",
    "InvalidOrderError",
    "NotSupportedError",
    "OrderNotFoundError",
    "TemporaryBrokerError",
    "backoff_delay",
    "error_from_response",
    "mask_secret",
    "parse_retry_after",
    "redact",
    "refusal_error",
    "response_json",
    "retrier",
    "temporary_from_response",
    "translate_transport_error",
]
