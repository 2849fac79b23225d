"""Log output: text for a terminal, or one JSON object a line for a log collector
(``WIREFEED_LOG_FORMAT=json``, as the container manifests set it). JSON holds in every command, in
the Faust worker (which installs it through its own ``logging_config``) and in the extraction
processes (their pool's initializer), so that one worker's output is all one format; Python
warnings are logged too, not printed. In text mode the Faust worker keeps its own formatter, which
renders partition assignments and subscriptions as tables.

The one-shot commands (every one but ``worker``) hear nothing from kafka-python: it logs each
refused connection at ERROR and each retry at WARNING, a screenful before the command's own line
that names the broker's address and what went wrong.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that narrate every connection (kafka-python) or page (the extractors) at INFO.
_QUIET_LOGGERS = ("kafka", "trafilatura", "htmldate")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(log_format: LogFormat, level: str, *, one_shot: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` configuration: the root logger at ``level`` to stderr;
    ``one_shot`` (a command that reports its own outcome) silences kafka-python."""
    level_number = logging.getLevelName(level.upper())
    formatter: dict[str, Any] = {"()": JsonFormatter} if log_format == "json" else {"format": _TEXT}
    loggers = {name: {"level": max(logging.WARNING, level_number)} for name in _QUIET_LOGGERS}
    # aiokafka logs every request it sends at DEBUG, with its bytes: a SASL PLAIN authentication
    # holds the password in the clear.
    loggers["aiokafka.conn"] = {"level": max(logging.INFO, level_number)}
    if one_shot:
        # kafka-python logs nothing at CRITICAL
        loggers["kafka"] = {"level": logging.CRITICAL}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level_number, "handlers": ["default"]},
        "loggers": loggers,
    }


def configure(log_format: LogFormat, level: str, *, one_shot: bool = False) -> None:
    apply(logging_config(log_format, level, one_shot=one_shot))


def apply(config: dict[str, Any]) -> None:
    """Install a :func:`logging_config` (in an extraction process, the worker's)."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
