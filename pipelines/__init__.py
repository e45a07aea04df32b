"""The marketing-etl command line and the run/transform/publish machinery."""

import os

# dlt sends anonymous usage telemetry by default; a scheduled data pipeline should
# not call home unasked. Users may opt in with RUNTIME__DLTHUB_TELEMETRY=true.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

# Arrow allocates from glibc (tuned by pipelines/memory.py, trimmed between steps),
# not from its own mimalloc pool, which kept 40-60 MB of freed batches resident:
# every source at scale 3, alternated, peak RSS 478-504 MB with mimalloc, 424-440 MB
# with the system pool, 100-104 s either way. pyarrow reads it once, when imported.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

# The warehouse file `run`, `status`, `backfill` and `transform` use unless told otherwise.
DEFAULT_WAREHOUSE = "marketing.duckdb"
