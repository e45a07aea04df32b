"""Loops constants (see docs/sources/loops.md)."""

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
# (dataset, table, column). Retreaver flattens a call's `email` tag into tag_email.
EMAIL_COLUMNS = (("retreaver", "calls", "tag_email"),)

TIMESTAMP_FIELDS = ("createdAt", "looked_up_at")
