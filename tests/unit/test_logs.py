"""JSON log lines: one object a line, with the exception's traceback when there is one, and
any script as it is (not escaped)."""

import json
import logging

from workers.logs import JsonFormatter, logging_config


def format_record(message: str, *, exc_info=None) -> dict:
    record = logging.LogRecord("workers.pipeline", logging.ERROR, __file__, 1, message, (), exc_info)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return json.loads(line)


def test_a_record_is_one_json_object_with_its_traceback():
    try:
        raise ValueError("the topic refused the record")
    except ValueError as exc:
        entry = format_record("alerts failed for https://masr-news.example/حلب", exc_info=(type(exc), exc, exc.__traceback__))
    assert (entry["level"], entry["logger"]) == ("ERROR", "workers.pipeline")
    assert entry["message"] == "alerts failed for https://masr-news.example/حلب"
    assert "ValueError: the topic refused the record" in entry["exception"]
    assert "exception" not in format_record("no error here")


def test_chatty_libraries_log_at_warning_or_above_whatever_the_level():
    assert logging_config("text", "error")["loggers"]["kafka"]["level"] == logging.ERROR
    debug = logging_config("text", "debug")
    assert (debug["root"]["level"], debug["loggers"]["trafilatura"]["level"]) == (logging.DEBUG, logging.WARNING)


def test_one_shot_commands_hear_nothing_from_kafka_python_and_the_worker_its_warnings():
    """A command that reports its own outcome names the broker in one line; kafka-python would log
    every refused connection at ERROR before it."""
    for level in ("debug", "info", "error"):
        assert logging_config("text", level, one_shot=True)["loggers"]["kafka"]["level"] == logging.CRITICAL
    assert logging_config("json", "info")["loggers"]["kafka"]["level"] == logging.WARNING


def test_aiokafka_requests_are_never_logged_whatever_the_level():
    """At DEBUG aiokafka logs each request's bytes: a SASL PLAIN authentication's hold the
    password (user\\0user\\0password), which then went to the log collector."""
    for level in ("debug", "info"):
        config = logging_config("json", level)
        assert config["root"]["level"] == logging.getLevelName(level.upper())
        assert config["loggers"]["aiokafka.conn"]["level"] >= logging.INFO
