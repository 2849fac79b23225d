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


# --- found by a review of the settings' values (the twenty-sixth session) ------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (f"redis://wirefeed:{SECRET}@redis.internal:6379/0?socket_timeout=5s", "'socket_timeout'"),
        (f"redis://wirefeed:{SECRET}@redis.internal:6379/0?db=zero", "'db'"),
        (f"redis://wirefeed:{SECRET}@redis.internal:6379/0?sockettimeout=5", "sockettimeout"),
        # redis-py's option for rediss:// only: a plain connection refuses it
        (f"redis://wirefeed:{SECRET}@redis.internal:6379/0?ssl_cert_reqs=none", "ssl_cert_reqs"),
        # parse_url types it, but only a BlockingConnectionPool takes it
        (f"redis://wirefeed:{SECRET}@redis.internal:6379/0?timeout=5", "timeout"),
    ],
)
def test_a_redis_url_option_redis_py_cannot_use_is_refused_with_the_settings_naming_it(
    url: str, named: str, monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """redis-py reads the query when it first connects: a value not of its option's type ended the
    readiness probe and the worker in a ValueError traceback, an option it does not know in a
    TypeError ("unexpected keyword argument")."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WIREFEED_REDIS_URL", url)
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wirefeed: invalid settings") and len(err.strip().splitlines()) == 1
    assert "redis_url" in err and named in err
    assert SECRET not in err and "5s" not in err and "zero" not in err


def test_the_rest_of_a_query_password_is_not_named_as_an_unknown_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an unencoded "&" in a unix socket URL's password makes its rest an option of its own
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WIREFEED_REDIS_URL", f"unix:///run/redis/redis.sock?db=1&password={SECRET[:8]}&{SECRET[8:]}=x")
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err
    assert "redis_url has query options redis-py does not know" in err and SECRET[8:] not in err


@pytest.mark.parametrize(
    "url",
    [
        "rediss://wirefeed:pw@redis.internal:6380/0?ssl_cert_reqs=none&socket_timeout=2.5&client_name=wirefeed",
        "redis://redis.internal?max_connections=20&health_check_interval=30&protocol=3",
        "unix:///run/redis/redis.sock?db=1&password=pw&socket_connect_timeout=2",
    ],
)
def test_redis_url_options_redis_py_takes_are_accepted(url: str) -> None:
    Settings(_env_file=None, redis_url=url)
