"""Where the settings say Redis is, in messages: the address, never the URL's credentials."""

import pytest

from workers import cli
from workers.settings import Settings

SECRET = "s3cr3t-redis-password"


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://127.0.0.1:16379/0", "127.0.0.1:16379"),
        (f"rediss://wirefeed:{SECRET}@redis.internal/2", "redis.internal:6379"),
        ("redis://[::1]:6380", "[::1]:6380"),
        (f"unix:///run/redis/redis.sock?db=1&password={SECRET}", "/run/redis/redis.sock"),
        (f"unix://wirefeed:{SECRET}@/var/run/redis.sock", "/var/run/redis.sock"),
    ],
)
def test_the_redis_address_is_its_host_and_port_or_its_socket(url: str, address: str) -> None:
    assert Settings(_env_file=None, redis_url=url).redis_address == address


@pytest.mark.parametrize("password", [f"{SECRET}/x9Qz", f"{SECRET}#x9Qz", f"{SECRET}?x9Qz"])
def test_a_redis_url_that_does_not_parse_is_refused_without_quoting_it(
    password: str, monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A password from `openssl rand -base64` holds "/": its first use raised a ValueError that
    quoted the password up to it, in the readiness probe's output."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WIREFEED_REDIS_URL", f"redis://wirefeed:{password}@redis.internal:6379/0")
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err
    assert "percent-encode" in err and SECRET not in err


# --- found by a review of the command line (the nineteenth session) ---------------------------------


@pytest.mark.parametrize(
    "url",
    [
        # an "@" and "/" of the password left unencoded: its first part became the host shown
        f"redis://:{SECRET[:4]}@xq/{SECRET[4:]}@redis.internal:6379/0",
        "not a url", "http://redis.internal:6379/0",
        # a "#" or "?" after digits: those digits parsed as a port ("Redis at 127.0.0.1:<them>"),
        # and redis-py went to localhost without the password
        "redis://:48213#Kq!z@redis.prod:6379/0",
        "redis://default:4821?Kq@redis.prod:6379/0",
    ],
)
def test_a_redis_url_that_is_no_redis_address_is_one_line_without_quoting_it(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WIREFEED_REDIS_URL", url)
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err
    assert "redis_url" in err and len(err.strip().splitlines()) == 1 and SECRET[:4] not in err and "4821" not in err


@pytest.mark.parametrize(("name", "value"), [("REDIS_TIMEOUT_S", "inf"), ("ARTICLE_TTL_DAYS", "nan"), ("REDIS_TIMEOUT_S", "1e300")])
def test_an_infinite_or_absurd_number_in_the_settings_is_refused_at_start(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    # inf passed "greater than 0" and the worker died at start with an OverflowError traceback
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(f"WIREFEED_{name}", value)
    assert cli.main(["check"]) == 2
    assert name.lower() in capsys.readouterr().err


# --- found by a review of the worker's configuration (the twentieth session) --------------------


def test_a_session_timeout_the_worker_s_consumer_refuses_is_refused_with_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Faust refuses a session timeout above its 90 s request timeout, with a traceback, once the
    # topics were made: a setting the worker cannot run with is refused with the others.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WIREFEED_SESSION_TIMEOUT_S", "120")
    assert cli.main(["check"]) == 2
    assert "session_timeout_s" in capsys.readouterr().err
