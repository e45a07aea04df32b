"""InboxFirst pieces dlt does not ship: the re-read window over the campaign list,
the envelope check and the mailing-list ids from configuration."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

import dlt
import pendulum
from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException
from requests import Response

from sources._shared.http import record_skip

# Source state: {mailing list id (str): latest dispatch.started_at loaded from it}.
STATE_KEY = "send_cursors"
# Earlier versions: {"last_started_at": ...}, one cursor for every list (see CampaignWindow).
LEGACY_STATE_KEY = "campaign_window"
# rest_api copies the configured list id into each listed campaign under this name
# (include_from_parent): the cursor follows the list we asked, not a body field.
PARENT_LIST_ID = "_mailing_lists_id"
# Orders CampaignWindow's cursor updates across threads (see there). Module-level:
# rest_api deep-copies its config (bound methods included) to validate it, and a
# lock cannot be copied.
_WINDOW_LOCK = threading.RLock()


class InboxFirstError(Exception):
    """An InboxFirst answer we must not load: a 2xx whose envelope reports an error.

    Not a ``requests`` exception, so dlt's retry logic never retries it.
    """


def parse_mailing_list_ids(value: str | int | Sequence[Any]) -> list[int]:
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


def envelope_error(response: Response) -> str | None:
    """Why a 2xx answer must not be loaded, or None.

    Contract: the envelope ``{"success", "data", "error_code", "error_message"}`` may
    come without ``success`` (the doc's campaign-list example has only
    ``error_message`` and ``data``): an answer is an error when ``success`` is false
    or ``error_code``/``error_message`` is set, never because a key is missing.
    """
    endpoint = f"{response.request.method} {urlsplit(response.url).path}"  # no query string, no credentials
    where = f"inboxfirst: {endpoint} answered {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return f"{where} without a JSON body"
    if not isinstance(body, dict) or "data" not in body:
        return f"{where} without the data envelope"
    code, message = body.get("error_code"), body.get("error_message")
    if body.get("success") is False or code not in (None, "") or message not in (None, ""):
        return f"{where} with an error ({code}: {message})"
    return None


def check_envelope(response: Response, *args: Any, **kwargs: Any) -> Response:
    """Response hook after ``error_hook`` (which has failed every non-2xx): an
    envelope that reports an error fails the resource, naming the endpoint."""
    problem = envelope_error(response)
    if problem:
        _fail(problem)
    return response


def skip_bad_envelope(response: Response, *args: Any, **kwargs: Any) -> Response:
    """``check_envelope`` for the per-campaign endpoints (after
    ``entity_error_hook``): an error envelope for one campaign is recorded and
    counted in ops.runs and that campaign skipped, like a 404 for it."""
    problem = envelope_error(response)
    if problem:
        record_skip("inboxfirst", f"{response.request.method} {urlsplit(response.url).path}", response.status_code, problem)
        raise IgnoreResponseException(problem)
    return response


def _moment(value: Any) -> pendulum.DateTime | None:
    if value in (None, ""):
        return None
    return pendulum.instance(value) if hasattr(value, "tzinfo") else pendulum.parse(str(value))  # type: ignore[return-value]


class CampaignWindow:
    """Which sends a run asks for and which of them it re-reads, per mailing list.

    dlt's incremental offers ``last_value - lag``; we need ``min(last cursor,
    now - window)`` (contract: stats of sends younger than the window still change,
    older ones are final) and the first run from ``start_date``. One cursor per
    mailing list (latest ``dispatch.started_at`` loaded from it), so a list added to
    the configuration later starts from ``start_date`` instead of the other lists'
    cursor. The cursors live in the source state, committed by dlt only when the
    run's extract succeeds.

    Earlier versions kept one cursor for all lists (``LEGACY_STATE_KEY``). It does
    not say which lists it covered, so a list configured together with the upgrade
    would be taken for an old one and lose its history before the window. The run
    that finds it therefore reads every list from ``min(start_date, legacy cursor)``
    (nothing is lost; the cost is one longer run, merged on the same keys) and
    replaces it with per-list cursors.

    Thread-safe: ``hold`` runs in the response hooks of per-send requests, which
    dlt's extract pool sends side by side while ``track`` advances the cursors of
    the next list (settings.MAX_CONCURRENT_REQUESTS); one lock orders them, so a
    hold is never overwritten by a later advance.
    """

    def __init__(self, start_date: pendulum.DateTime, window_days: int, now: pendulum.DateTime) -> None:
        self.start_date = start_date
        self.window_start = now - pendulum.duration(days=window_days)
        self._previous: dict[str, pendulum.DateTime] | None = None
        self._first_since = start_date
        self._listed: dict[str, tuple[str, pendulum.DateTime]] = {}  # campaign id -> (list, started_at)
        self._held: set[str] = set()  # lists whose cursor a skipped send holds back

    def _cursors(self) -> dict[str, Any]:
        state = dlt.current.source_state()
        legacy = _moment((state.pop(LEGACY_STATE_KEY, None) or {}).get("last_started_at"))
        if legacy is not None and legacy < self._first_since:
            self._first_since = legacy
        return state.setdefault(STATE_KEY, {})  # type: ignore[no-any-return]

    def previous_cursor(self, list_id: Any) -> pendulum.DateTime | None:
        """The list's cursor as the run found it (later updates in this run do not count)."""
        with _WINDOW_LOCK:
            if self._previous is None:
                self._previous = {key: moment for key, value in self._cursors().items() if (moment := _moment(value))}
            return self._previous.get(str(list_id))

    def since(self, list_id: Any) -> pendulum.DateTime:
        """``started_at__start`` for this run and list."""
        previous = self.previous_cursor(list_id)
        if previous is None:
            return self._first_since
        return min(previous, self.window_start)

    def since_param(self, list_id: Any) -> str:
        return _utc_param(self.since(list_id))

    def keep(self, row: dict[str, Any]) -> bool:
        """A listed send is (re-)read if new since its list's cursor or still inside the window.

        The filter is inclusive (doc: "earliest started_at time to include"), so the
        send at the cursor itself comes back: skip it once it is older than the window.
        """
        started = _moment((row.get("dispatch") or {}).get("started_at"))
        previous = self.previous_cursor(row[PARENT_LIST_ID])
        if started is None:
            # Doc: with the filter only sending/finished/cancelled/failed sends are
            # listed, and ``dispatch`` "comes from the server only if delivery settings
            # ... are defined": one without started_at cannot be placed in the window: read it.
            return True
        if previous is None:
            return started >= self._first_since
        return started > previous or started >= self.window_start

    def track(self, row: dict[str, Any]) -> dict[str, Any]:
        """Advance the row's list cursor to the latest ``started_at`` seen."""
        started = _moment((row.get("dispatch") or {}).get("started_at"))
        if started is not None:
            with _WINDOW_LOCK:
                cursors = self._cursors()
                key = str(row[PARENT_LIST_ID])
                self._listed[str(row.get("id"))] = (key, started)
                if key in self._held:
                    return row  # held below a skipped send for the rest of the run
                current = _moment(cursors.get(key))
                if current is None or started > current:
                    cursors[key] = started.in_timezone("UTC").isoformat()
        return row


    def hold(self, url: str) -> None:
        """A campaign of this run was skipped (its details or link stats stayed an
        error): keep its list's cursor below the send, so the next run lists and
        reads it again even once it is older than the window (found by the fault
        matrix: a skip of an old send was never repaired)."""
        match = re.search(r"/campaigns/(\d+)", urlsplit(url or "").path)
        with _WINDOW_LOCK:
            listed = self._listed.get(match.group(1)) if match else None
            if listed is None:
                return  # backfill (no cursor), or a campaign this run did not list
            key, started = listed
            self._held.add(key)
            cursors = self._cursors()
            held = started - pendulum.duration(seconds=1)
            current = _moment(cursors.get(key))
            if current is None or held < current:
                cursors[key] = held.in_timezone("UTC").isoformat()

    def holding(self, hook: Any) -> Any:
        """``hook`` (a per-campaign response action) that holds the cursor when it skips."""

        def wrapped(response: Response, *args: Any, **kwargs: Any) -> Response:
            try:
                return hook(response, *args, **kwargs)
            except IgnoreResponseException:
                self.hold(response.url)
                raise

        return wrapped


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
    def from_args(cls, start_date: str | None, end_date: str | None) -> BackfillWindow | None:
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
