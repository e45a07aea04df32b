"""Loops constants (see docs/sources/loops.md)."""

from dlt.common.schema.typing import TColumnSchema

from sources._shared.schema import timestamp_columns

# The documented host (doc "Contacts": https://app.loops.so/api/v1/...);
# configuration (SOURCES__LOOPS__BASE_URL) overrides it.
DEFAULT_BASE_URL = "https://app.loops.so"

FIND_PATH = "api/v1/contacts/find"

# Doc "Rate Limiting": 10 requests per second per team. The shared limiter paces
# every request just under it, so a full load never meets a 429.
RATE_PER_SECOND = 9.0

# A known contact is looked up again once its last lookup is this old
# (SOURCES__LOOPS__REFRESH_DAYS): no endpoint lists changed contacts (contract).
REFRESH_DAYS = 7.0
# An email that found no contact ([]) is asked again once this old
# (SOURCES__LOOPS__RETRY_NOT_FOUND_HOURS): the contact may be created later.
RETRY_NOT_FOUND_HOURS = 24.0

# Other raw tables of the same warehouse whose values are emails to look up:
# (dataset, table, column); SOURCES__LOOPS__EMAIL_COLUMNS (["dataset.table.column",
# ...]) overrides it. Our assumption, in neither doc: that calls carry the caller's
# email in a tag named `email` (Retreaver's doc shows no such tag; tags are the
# account's own), which the Retreaver source flattens into tag_email.
EMAIL_COLUMNS = (("retreaver", "calls", "tag_email"),)

# The doc shows no error body; Loops' public API answers {"success": false,
# "message": "..."} (sandbox choice). Only quoted in error messages.
ERROR_DETAIL_FIELD = "message"

# Raw table -> typed columns (sources/catalog.py). The doc shows no contact object:
# `email` (the key) and the fields of its Add/Update bodies are all it names.
# `id`, `subscribed`, `createdAt` are what Loops' public API adds (not in the doc):
# typed so they exist, null, when an answer lacks them. No staging model reads
# Loops today. Names as stored (dlt snake_cases firstName -> first_name).
TABLE_COLUMNS: dict[str, dict[str, TColumnSchema]] = {
    "contacts": {
        "email": {"data_type": "text", "nullable": False},
        **{name: {"data_type": "text"} for name in ("first_name", "last_name", "user_group", "source", "user_id")},  # type: ignore[misc]
        # Explicitly nullable: tables made when `id` was the key stored it NOT NULL,
        # and a tombstone (deletes by email) has no id.
        "id": {"data_type": "text", "nullable": True},
        "subscribed": {"data_type": "bool"},
        **timestamp_columns(("created_at", "looked_up_at")),
    }
}
