"""Logs and progress for people at a terminal and for schedulers.

* On a terminal: ``run``, ``demo`` and ``backfill`` show one live view
  (pipelines/live.py: a line per source with its stage, rows, requests, 429s),
  other records print above it as short human lines. ``progress_factory`` (dlt's
  own ``LogCollector``: rows and pages per resource every few seconds) remains for
  callers that want dlt's blocks.
* Elsewhere (cron, Airflow, CI): no progress blocks, one ``logfmt`` line per event
  (``ts=... level=info event=source_finished source=retreaver rows=... requests=...``),
  which log shippers parse without configuration.
* ``--quiet``: warnings and errors only; ``--verbose``: our debug lines and dlt's
  INFO logs. Every record is masked for secrets while sources run
  (pipelines.runner.redacted_logging), whatever the level.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

LOGGER = "marketing_etl"
# Fields a record may carry (``extra=``) that are printed as key=value.
_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def _value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    """``ts=2026-12-02T18:00:00Z level=info logger=marketing_etl event=... msg=...``"""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        parts = [f"ts={ts}", f"level={record.levelname.lower()}", f"logger={record.name}"]
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        parts += [f"{k}={_value(v)}" for k, v in extra.items()]
        parts.append(f"msg={_value(record.getMessage())}")
        if record.exc_info:
            parts.append(f"exc={_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class HumanFormatter(logging.Formatter):
    """``18:00:00 retreaver  source loaded  rows=11462 requests=168``"""

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        who = extra.pop("source", "")
        extra.pop("event", None)
        fields = " ".join(f"{k}={v}" for k, v in extra.items())
        level = "" if record.levelno == logging.INFO else f"{record.levelname}: "
        return f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {level}{who + '  ' if who else ''}{record.getMessage()}  {fields}".rstrip()


def is_terminal(stream: TextIO | None = None) -> bool:
    # sys.stderr is looked up per call, not bound at import: it may be replaced
    # (pytest's capture, a daemon redirecting it) after this module is imported.
    stream = sys.stderr if stream is None else stream
    return hasattr(stream, "isatty") and stream.isatty()


def configure(verbosity: str = "normal", terminal: bool | None = None, stream: TextIO | None = None) -> None:
    """Set up our logger and dlt's level. ``verbosity``: quiet | normal | verbose."""
    stream = sys.stderr if stream is None else stream
    terminal = is_terminal(stream) if terminal is None else terminal
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(HumanFormatter() if terminal else LogfmtFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel({"quiet": logging.WARNING, "verbose": logging.DEBUG}.get(verbosity, logging.INFO))
    # dlt configures its own logger from RUNTIME__LOG_LEVEL on every pipeline; an
    # explicit setting by the user wins. By default only dlt's errors show: its
    # warnings (e.g. "columns did not receive any data") are noise for a scheduler,
    # and what matters (retries, 429s, failures) is counted in our own lines.
    if "RUNTIME__LOG_LEVEL" not in os.environ:
        os.environ["RUNTIME__LOG_LEVEL"] = "INFO" if verbosity == "verbose" else "ERROR"
    # dlt may have set its logger up already (any config read does): re-read it now.
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

    Container()[PluggableRunContext].initialize_runtime()


def progress_factory(verbosity: str = "normal", terminal: bool | None = None, stream: TextIO | None = None) -> Callable[[str], Any] | None:
    """dlt progress collectors for a terminal; None (dlt's null collector) otherwise."""
    stream = sys.stderr if stream is None else stream
    terminal = is_terminal(stream) if terminal is None else terminal
    if verbosity == "quiet" or not terminal:
        return None
    from dlt.common.runtime.collector import LogCollector

    # One collector per pipeline: a collector follows one pipeline's steps.
    return lambda name: LogCollector(log_period=5.0, logger=stream, dump_system_stats=False)
