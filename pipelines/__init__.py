"""The marketing-etl command line and the run/transform/publish machinery."""

import os

# dlt sends anonymous usage telemetry by default; a scheduled data pipeline should
# not call home unasked. Users may opt in with RUNTIME__DLTHUB_TELEMETRY=true.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

# The warehouse file `run`, `status`, `backfill` and `transform` use unless told otherwise.
DEFAULT_WAREHOUSE = "marketing.duckdb"
