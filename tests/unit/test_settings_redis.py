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
