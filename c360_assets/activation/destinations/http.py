"""What the HTTP destinations share (`salesforce`, `webhook`): one session, the token
bucket and timeout of their config, and one reading of answers - 429 with Retry-After
(`RateLimited`), 5xx, timeouts and dropped connections (`Transient`, the outcome of a
write unknown), 401/403 (`DestinationError`: the run stops), other 4xx
(`BatchRejected`: halved), an unreadable 2xx body (`Transient`)."""

from __future__ import annotations

import datetime as dt

import requests

from c360_assets.activation.destinations.base import (
    BatchRejected,
    Destination,
    DestinationError,
    RateLimited,
    TokenBucket,
    Transient,
)


def retry_after(response: requests.Response, default: float = 1.0) -> float:
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = dt.datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.UTC)
        except ValueError:
            return default
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def answer(response: requests.Response):  # noqa: ANN202
    """The JSON of a 2xx answer; an unreadable one leaves the outcome unknown."""
    try:
        return response.json()
    except ValueError as exc:
        raise Transient(f"HTTP {response.status_code} with an unreadable body: "
                        f"{response.text[:100]!r}", uncertain=True) from exc


def check(response: requests.Response, what: str) -> None:
    """Raise the engine's exception for a failed answer."""
    code = response.status_code
    if code == 429:
        raise RateLimited(retry_after(response), f"{what}: HTTP 429")
    if code >= 500:
        raise Transient(f"{what}: HTTP {code}", uncertain=True)
    if code in (401, 403):
        raise DestinationError(f"{what}: HTTP {code} (check the token): {response.text[:200]}")
    if code >= 400:
        raise BatchRejected(f"{what}: HTTP {code}: {response.text[:300]}")



class HttpDestination(Destination):
    """A destination over HTTP: `spec.destination` has `batch_rows`, `rate_per_s`,
    `burst` and `timeout_s`."""

    def __init__(self, spec):  # noqa: ANN001
        super().__init__(spec)
        d = spec.destination
        self.timeout = d.timeout_s
        self.batch_rows = d.batch_rows
        self.bucket = TokenBucket(d.rate_per_s, d.burst)
        self.session = requests.Session()

    def call(self, method: str, url: str, what: str, answers: tuple[int, ...] = (),
             **kwargs) -> requests.Response:
        """One request; `answers`: status codes that are answers here, not failures (a
        lookup's 300, 404)."""
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise Transient(f"{what}: {type(exc).__name__}", uncertain=True) from exc
        if response.status_code not in answers:
            check(response, what)
        return response

    def close(self) -> None:
        self.session.close()
