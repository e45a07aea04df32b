"""InboxFirst pieces dlt does not ship: the re-read window over the campaign list,
the envelope check and the mailing-list ids from configuration."""

from __future__ import annotations

from typing import Any, Iterable, NoReturn, Optional, Sequence, Union
from urllib.parse import urlsplit

import dlt
import pendulum
from requests import HTTPError, Response

STATE_KEY = "campaign_window"


class InboxFirstError(Exception):
    """An InboxFirst answer we must not load: rejected credentials or ``success: false``.

    Not a ``requests`` exception, so dlt's retry logic never retries it.
    """


def parse_mailing_list_ids(value: Union[str, int, Sequence[Any]]) -> list[int]:
    """``"1,2,3"``, ``"[1, 2, 3]"``, ``[1, 2, 3]`` or ``3`` -> ``[1, 2, 3]``.

    Contract: there is no endpoint listing mailing lists, so the ids are configuration.
    """
    if isinstance(value, str):
        items: Iterable[Any] = value.strip().strip("[]").split(",")  # "1,2,3" or a JSON list
    else:
        items = value if isinstance(value, (list, tuple)) else [value]
    ids = [int(str(v).strip()) for v in items if str(v).strip()]
    if not ids:
        raise ValueError("inboxfirst: SOURCES__INBOXFIRST__MAILING_LIST_IDS is empty")
    return ids


def _fail(message: str) -> NoReturn:
    # dlt raises a child resource's error while handling its parent's StopIteration,
    # so __context__ would be that StopIteration and the runner (which reports the
    # innermost cause) would print "StopIteration:". An explicit cause wins.
    raise InboxFirstError(message) from InboxFirstError(message)


def check_envelope(response: Response, *args: Any, **kwargs: Any) -> None:
    """Response hook: fail on rejected credentials and on ``success: false``.

    Contract: every answer is ``{"success", "data", "error_code", "error_message"}``
    and 401/403 are not retried. 429 and 5xx are left to dlt's retrying client;
    anything else that is not a success is an error naming the endpoint, never an
    empty page.
    """
    status = response.status_code
    endpoint = f"{response.request.method} {urlsplit(response.url).path}"  # no query string, no credentials
    if status == 429 or status >= 500:
        # An HTTPError carrying the response: dlt's client retries it (Retry-After
        # honoured) and re-raises it once its bounded retries are spent.
        message = f"inboxfirst: {endpoint} answered {status} {response.reason or ''}".strip()
        raise HTTPError(message, response=response) from HTTPError(message)
    try:
        body = response.json()
    except ValueError:
        body = None
    code = body.get("error_code") if isinstance(body, dict) else None
    message = body.get("error_message") if isinstance(body, dict) else None
    if status in (401, 403):
        _fail(
            f"inboxfirst: {endpoint} answered {status} ({code}: {message}); "
            "check SOURCES__INBOXFIRST__USERNAME and SOURCES__INBOXFIRST__API_KEY"
        )
    if status >= 400:
        _fail(f"inboxfirst: {endpoint} answered {status} ({code}: {message})")
    if not isinstance(body, dict) or body.get("success") is not True:
        _fail(f"inboxfirst: {endpoint} answered {status} without success ({code}: {message})")


def _moment(value: Any) -> Optional[pendulum.DateTime]:
    if value in (None, ""):
        return None
    return pendulum.instance(value) if hasattr(value, "tzinfo") else pendulum.parse(str(value))  # type: ignore[return-value]


class CampaignWindow:
    """Which sends a run asks for and which of them it re-reads.

    dlt's incremental offers ``last_value - lag``; we need ``min(last cursor,
    now - window)`` (contract: stats of sends younger than the window still change,
    older ones are final) and the first run from ``start_date``. The cursor (latest
    ``dispatch.started_at`` loaded) lives in the source state and is committed by
    dlt only when the run's extract succeeds.
    """

    def __init__(self, start_date: pendulum.DateTime, window_days: int, now: pendulum.DateTime) -> None:
        self.start_date = start_date
        self.window_start = now - pendulum.duration(days=window_days)
        self._previous: Optional[pendulum.DateTime] = None
        self._read = False

    def _state(self) -> dict[str, Any]:
        return dlt.current.source_state().setdefault(STATE_KEY, {})  # type: ignore[no-any-return]

    @property
    def previous_cursor(self) -> Optional[pendulum.DateTime]:
        """The cursor as the run found it (later updates in this run do not count)."""
        if not self._read:
            self._previous = _moment(self._state().get("last_started_at"))
            self._read = True
        return self._previous

    def since(self) -> pendulum.DateTime:
        """``started_at__start`` for this run."""
        previous = self.previous_cursor
        if previous is None:
            return self.start_date
        return min(previous, self.window_start)

    def since_param(self) -> str:
        # Doc: started_at__start takes "a UNIX integer timestamp or ISO-8601 datetime string".
        return self.since().in_timezone("UTC").format("YYYY-MM-DDTHH:mm:ss[Z]")

    def keep(self, row: dict[str, Any]) -> bool:
        """A listed send is (re-)read if new since the cursor or still inside the window.

        The filter is inclusive (doc: "earliest started_at time to include"), so the
        send at the cursor itself comes back: skip it once it is older than the window.
        """
        started = _moment((row.get("dispatch") or {}).get("started_at"))
        previous = self.previous_cursor
        if started is None:
            # Doc: with the filter only sending/finished/cancelled/failed sends are
            # listed; one without started_at cannot be placed in the window: read it.
            return True
        if previous is None:
            return started >= self.start_date
        return started > previous or started >= self.window_start

    def track(self, row: dict[str, Any]) -> dict[str, Any]:
        """Advance the cursor to the latest ``started_at`` seen."""
        started = _moment((row.get("dispatch") or {}).get("started_at"))
        if started is not None:
            state = self._state()
            current = _moment(state.get("last_started_at"))
            if current is None or started > current:
                state["last_started_at"] = started.in_timezone("UTC").isoformat()
        return row


def rename_parent_id(row: dict[str, Any]) -> dict[str, Any]:
    """rest_api names the copied parent id ``_campaigns_id``; the table calls it ``campaign_id``."""
    row["campaign_id"] = row.pop("_campaigns_id")
    return row


def _utc_param(moment: pendulum.DateTime) -> str:
    # Doc: started_at__start/__end take "a UNIX integer timestamp or ISO-8601 datetime string".
    return moment.in_timezone("UTC").format("YYYY-MM-DDTHH:mm:ss[Z]")


class BackfillWindow:
    """The sends started in ``[start, end)`` (backfill window mode), with no state.

    Unlike ``CampaignWindow`` it never touches the source state (not even the
    ``setdefault`` of ``STATE_KEY``): a backfill must leave the cursor of normal runs
    exactly as it found it. Dates without a time are UTC midnights.

    Hand-written rather than a dlt ``incremental(end_value=...)`` (which would also
    leave state alone): the list's lower bound travels in the parent rows
    (``started_since``, shared with the normal mode) and the documented upper bound
    is inclusive, so the exclusive end needs this client-side check anyway.
    """

    def __init__(self, start: pendulum.DateTime, end: pendulum.DateTime) -> None:
        self.start = start
        self.end = end

    @classmethod
    def from_args(cls, start_date: Optional[str], end_date: Optional[str]) -> Optional["BackfillWindow"]:
        if end_date is None:
            return None
        if not start_date:
            raise ValueError("inboxfirst: end_date (backfill window) needs start_date; got start_date=None")
        start, end = _moment(start_date), _moment(end_date)
        if start is None or end is None:
            raise ValueError(f"inboxfirst: empty start_date/end_date ({start_date!r}, {end_date!r})")
        if end <= start:
            raise ValueError(f"inboxfirst: end_date {end_date} must be after start_date {start_date} (end is exclusive)")
        return cls(start, end)

    def since_param(self) -> str:
        return _utc_param(self.start)

    def until_param(self) -> str:
        # Doc: started_at__end is "the latest started_at time to include" (inclusive):
        # a send started exactly at ``end`` is listed and dropped by ``keep``.
        return _utc_param(self.end)

    def keep(self, row: dict[str, Any]) -> bool:
        """Started in [start, end). A listed send without started_at cannot be placed
        in the window: left to the normal runs (which read it)."""
        started = _moment((row.get("dispatch") or {}).get("started_at"))
        return started is not None and self.start <= started < self.end
