"""Where the settings say Redis is, in messages: the address, never the URL's credentials."""

import pytest

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
