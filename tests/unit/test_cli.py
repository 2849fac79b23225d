"""The ``wirefeed`` entry point, run in-process with no broker: what it prints and returns when the
settings, the arguments or the broker are wrong."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import kafka
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import CoordinatorNotAvailableError

from tests.worker_harness import PrivateRedis
from workers import SAMPLE_PAGES, cli, localstack, replay
from workers.app import create_app
from workers.settings import Settings

SECRET = "s3cr3t-hmac-key-0123456789"
NOWHERE = "127.0.0.1:1"  # a port nothing listens on


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Only the settings a test sets: no developer's WIREFEED_* variables or .env file, and the
    test process's logging and SIGTERM handler left as they are. A command that gets as far as
    connecting fails fast instead of reaching a broker someone runs on the default address."""
    on_sigterm = signal.getsignal(signal.SIGTERM)
    for name in [name for name in os.environ if name.startswith("WIREFEED_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.logs, "configure", lambda log_format, level, one_shot: None)
    monkeypatch.setenv("WIREFEED_KAFKA_BOOTSTRAP", NOWHERE)
    # kafka-python waits 30 s for a broker by default and the settings do not change that.
    for client in (KafkaConsumer, KafkaProducer, KafkaAdminClient):
        monkeypatch.setitem(client.DEFAULT_CONFIG, "bootstrap_timeout_ms", 300)
    yield
    signal.signal(signal.SIGTERM, on_sigterm)


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({"WIREFEED_ALERT_WEBHOOK_SECRETS": f'"{SECRET}"'}, id="field error"),
        pytest.param(
            {
                "WIREFEED_DEDUP_BANDS": "100",
                "WIREFEED_REDIS_URL": f"redis://:{SECRET}@redis:6379/0",
                "WIREFEED_ALERT_WEBHOOK_SECRETS": f'{{"newsdesk": "{SECRET}"}}',
            },
            id="model validator error",
        ),
        pytest.param({"WIREFEED_ALERT_WEBHOOK_SECRETS": f'{{"newsdesk": "{SECRET}"'}, id="malformed JSON"),
    ],
)
def test_invalid_settings_are_one_line_without_the_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], environment: dict[str, str]
):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["check"]) == 2
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert err.startswith("wirefeed: invalid settings")
    assert err.count("\n") == 1


def test_a_settings_error_names_the_field(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("WIREFEED_ALERT_WEBHOOK_SECRETS", f'"{SECRET}"')
    monkeypatch.setenv("WIREFEED_DEDUP_BANDS", "100")
    cli.main(["check"])
    err = capsys.readouterr().err
    assert "alert_webhook_secrets: Input should be a valid dictionary" in err


@pytest.mark.parametrize(
    "argv",
    [["replay", "--dry-run"], ["topics", "create"], ["produce", str(SAMPLE_PAGES / "ja-asahi.html")]],
    ids=["replay", "topics create", "produce"],
)
def test_an_unreachable_broker_is_one_line_naming_its_address(
    capsys: pytest.CaptureFixture[str], argv: list[str]
):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"wirefeed: Kafka at {NOWHERE} did not answer")
    assert err.count("\n") == 1  # no traceback


def test_an_unreachable_redis_is_one_line_naming_its_address_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("WIREFEED_REDIS_URL", f"redis://:{SECRET}@{NOWHERE}/0")
    assert cli.main(["alerts", "tail", "--no-follow"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"wirefeed: Redis at {NOWHERE}: ConnectionError")
    assert SECRET not in err
    assert err.count("\n") == 1  # no traceback


def test_an_unreachable_redis_socket_is_named_by_its_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    socket = tmp_path / "redis.sock"
    monkeypatch.setenv("WIREFEED_REDIS_URL", f"unix://{socket}?password={SECRET}")
    assert cli.main(["alerts", "tail", "--no-follow"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"wirefeed: Redis at {socket}: ConnectionError")
    assert SECRET not in err


@pytest.mark.parametrize("rate", ["-5", "0", "nan", "inf", "fast"])
def test_replay_refuses_a_rate_that_is_not_positive(capsys: pytest.CaptureFixture[str], rate: str):
    with pytest.raises(SystemExit) as exit:
        cli.main(["replay", "--rate", rate, "--dry-run"])
    assert exit.value.code == 2
    assert f"--rate: not a rate: '{rate}'" in capsys.readouterr().err


@pytest.mark.parametrize("to_offset", ["5", "10"])
def test_replay_refuses_an_empty_offset_range_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], to_offset: str
):
    def no_connection(**config: object) -> None:
        raise AssertionError("connected to Kafka")

    monkeypatch.setattr(replay, "KafkaConsumer", no_connection)
    assert cli.main(["replay", "--from-offset", "10", "--to-offset", to_offset]) == 2
    err = capsys.readouterr().err
    assert f"empty offset range 10..{to_offset}" in err
    assert "must be greater than --from-offset" in err


@pytest.mark.parametrize("option", ["--from-offset", "--to-offset"])
@pytest.mark.parametrize("offset", ["-1", "1.5", "first"])
def test_replay_refuses_an_offset_that_is_not_a_whole_number(
    capsys: pytest.CaptureFixture[str], option: str, offset: str
):
    with pytest.raises(SystemExit) as exit:
        cli.main(["replay", option, offset, "--dry-run"])
    assert exit.value.code == 2
    assert f"{option}: not an offset: '{offset}'" in capsys.readouterr().err


@pytest.mark.parametrize("until", ["2026-11-01T00:00:00+00:00", "2026-10-31T00:00:00+00:00"])
def test_replay_refuses_an_empty_time_range_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], until: str
):
    def no_connection(**config: object) -> None:
        raise AssertionError("connected to Kafka")

    monkeypatch.setattr(replay, "KafkaConsumer", no_connection)
    assert cli.main(["replay", "--since", "2026-11-01T00:00:00+00:00", "--until", until]) == 2
    err = capsys.readouterr().err
    assert "empty time range 2026-11-01T00:00:00+00:00.." in err
    assert "must be later than --since" in err


@pytest.mark.parametrize("argv", [["--help"], ["replay", "--help"]], ids=["wirefeed", "replay"])
def test_help_is_written_for_users(capsys: pytest.CaptureFixture[str], argv: list[str]):
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out
    assert "Settings are built here" not in out


def test_a_stack_that_cannot_be_used_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("WIREFEED_KAFKA_BOOTSTRAP", "kafka.newsroom.example:9092")
    assert cli.main(["stack", "status"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "wirefeed: kafka_bootstrap='kafka.newsroom.example:9092': the local stack runs one broker on 127.0.0.1, "
        "so it must be 127.0.0.1:PORT"
    ]


def test_a_setting_that_does_not_exist_is_named_in_a_warning_in_the_log_format_set(tmp_path: Path):
    """Run as a deployment runs it (its own process, its own logging): with LOG_FORMAT=json the
    warning is one JSON object a line, which a log collector reads; it was a plain line."""
    (tmp_path / ".env").write_text("WIREFEED_REDIS_PREFX=newsroom\nWIREFEED_LOG_FORMAT=json\nOTHER=1\n")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("WIREFEED_")}
    done = subprocess.run(
        [sys.executable, "-m", "workers", "check", "--timeout", "0.2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env=environment | {"WIREFEED_WEBHOOK_MAX_ATEMPTS": "3", "WIREFEED_KAFKA_BOOTSTRAP": NOWHERE,
                           "WIREFEED_REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert done.returncode == 1  # nothing listens: the warning is the point
    entries = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    warning = "no such setting, ignored: WIREFEED_REDIS_PREFX, WIREFEED_WEBHOOK_MAX_ATEMPTS"
    assert ("WARNING", warning) in [(entry["level"], entry["message"]) for entry in entries], done.stderr


def test_produce_checks_every_page_before_connecting_and_names_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A bad page halfway through a directory: named, and nothing sent (no broker needed to see
    it), instead of the pages before it published and a bare validation error."""
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a.html").write_bytes((SAMPLE_PAGES / "ja-asahi.html").read_bytes())
    (pages / "b.html").write_text('<html><head><link rel="canonical" href="https://a b/x"></head></html>')
    assert cli.main(["produce", str(pages)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wirefeed produce: {pages / 'b.html'}: not a pages.raw message: url: ")
    assert err.count("\n") == 1


@pytest.mark.timeout(20)  # without the refusal, the check drains the pipe and the send waits for ever
def test_produce_refuses_a_named_pipe_before_reading_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    fifo = tmp_path / "pages.jsonl"
    os.mkfifo(fifo)
    assert cli.main(["produce", str(SAMPLE_PAGES / "ja-asahi.html"), str(fifo)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wirefeed produce: not a regular file or directory (every input is read twice")
    assert err.endswith(f": {fifo}\n")
    assert err.count("\n") == 1


def test_check_names_each_service_it_cannot_reach_and_nothing_else(tmp_path: Path):
    """As a user runs it, with the command's own logging: kafka-python, which logs every refused
    connection at ERROR and every retry at WARNING, says nothing."""
    environment = {**os.environ, "WIREFEED_REDIS_URL": f"redis://:{SECRET}@{NOWHERE}/0"}
    done = subprocess.run(
        [sys.executable, "-m", "workers", "check", "--timeout", "1"],
        env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    kafka_line, redis_line = done.stdout.splitlines()
    assert kafka_line == f"unreachable: Kafka at {NOWHERE} did not answer (KafkaTimeoutError: Unable to bootstrap from {NOWHERE})"
    assert redis_line.startswith(f"unreachable: Redis at {NOWHERE}: ConnectionError: ")
    assert SECRET not in done.stdout
    assert done.stderr == ""


class BrokerLoadingItsCoordinator:
    """An admin client of a broker that answers, but whose group coordinator is not available for
    the first ``unavailable`` requests (a fresh broker creating __consumer_offsets)."""

    DEFAULT_CONFIG = KafkaAdminClient.DEFAULT_CONFIG
    unavailable = 2
    coordinator_requests = 0

    def __init__(self, **options: object) -> None:
        pass

    def list_topics(self) -> list[str]:
        # the broker itself answers
        return []

    def list_group_offsets(self, group_id: str) -> dict[str, dict]:
        type(self).coordinator_requests += 1
        if self.coordinator_requests <= self.unavailable:
            raise CoordinatorNotAvailableError(f"FindCoordinatorResponse error for GROUP/{group_id}")
        return {group_id: {}}

    def close(self) -> None:
        pass


@pytest.fixture
def coordinator_loading(monkeypatch: pytest.MonkeyPatch) -> type[BrokerLoadingItsCoordinator]:
    monkeypatch.setattr(kafka, "KafkaAdminClient", BrokerLoadingItsCoordinator)
    monkeypatch.setattr(BrokerLoadingItsCoordinator, "coordinator_requests", 0)
    monkeypatch.setattr(BrokerLoadingItsCoordinator, "unavailable", 2)
    monkeypatch.setattr(redis.Redis, "ping", lambda client: True)
    monkeypatch.setattr(redis.Redis, "info", lambda client, section=None: {"maxmemory_policy": "noeviction"})
    return BrokerLoadingItsCoordinator


def test_check_is_not_ready_while_the_group_coordinator_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
    coordinator_loading: type[BrokerLoadingItsCoordinator],
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.setattr(coordinator_loading, "unavailable", 1000)
    assert cli.main(["check", "--timeout", "0.2"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"unreachable: Kafka at {NOWHERE}: the coordinator of consumer group {Settings().group_id} is not ready "
        "(CoordinatorNotAvailableError)"
    ]


def test_stack_up_returns_once_the_group_coordinator_answers(
    monkeypatch: pytest.MonkeyPatch, coordinator_loading: type[BrokerLoadingItsCoordinator]
):
    """A worker started on a fresh stack right after `stack up` logged the coordinator's errors
    (GroupCoordinatorNotAvailableError, "Marking the coordinator dead") while it loaded."""
    monkeypatch.setattr(localstack, "_run", lambda command, settings: 0)  # stack.sh started the broker
    assert cli.main(["stack", "up"]) == 0
    assert coordinator_loading.coordinator_requests == coordinator_loading.unavailable + 1


def test_the_worker_has_no_spinner_when_its_output_is_not_a_terminal(capsys: pytest.CaptureFixture[str]):
    """Faust's start-up spinner writes cursor codes and backspaces whatever its output is."""
    settings = Settings()  # capsys: sys.stdout is not a terminal
    assert cli.faust_worker(create_app(settings), settings, "warning").spinner is None


def test_the_example_rules_validate_with_the_command_their_header_gives(tmp_path: Path):
    """Its webhook names a secret: the header's command must not require it to be set. Run as a
    user runs it (in-process, the command prints to the stdout of the test that first imported it)."""
    example = Path(__file__).resolve().parents[2] / "examples" / "rules.yaml"
    (command,) = [line for line in example.read_text().splitlines() if line.startswith("#   wirefeed rules check")]
    argv = command.removeprefix("#   wirefeed ").split("  ")[0].split()
    done = subprocess.run(
        [sys.executable, "-m", "workers", *[str(example) if word == "examples/rules.yaml" else word for word in argv]],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"{example}: valid\n")


DUPLICATE_RULE = "version: 1\nrules:\n  - {id: a, kind: article, match: {urgent: true}}\n  - {id: a, kind: article, match: {urgent: false}}\n"
SECRET_MISSING = (
    "version: 1\nwebhooks: {desk: {url: 'https://hooks.newsroom.example/x', secret: desk}}\n"
    "rules: [{id: a, kind: article, match: {urgent: true}, deliver: {webhooks: [desk]}}]\n"
)


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        pytest.param(DUPLICATE_RULE, "rules/1 (a): duplicate rule id", id="duplicate rule id"),
        pytest.param(SECRET_MISSING, "webhooks/desk: secret 'desk' is not in WIREFEED_ALERT_WEBHOOK_SECRETS", id="secret missing"),
        pytest.param(None, "cannot read", id="missing file"),
        pytest.param("version: 1\nrules: [{id: a, kind: article\n", "not valid YAML", id="not YAML"),
    ],
)
def test_the_worker_does_not_start_with_rules_it_cannot_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], rules: str | None, problem: str
):
    """Started, its agents failed to load them and were restarted every 5 s, for ever, while the
    worker answered its health checks. Checked before the broker is reached (NOWHERE)."""
    path = tmp_path / "rules.yaml"
    if rules is not None:
        path.write_text(rules, encoding="utf-8")
    monkeypatch.setenv("WIREFEED_ALERT_RULES_PATH", str(path))
    assert cli.main(["worker"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wirefeed: invalid alert rules: {path}: ")
    assert problem in err
    assert err.count("\n") == 1


@pytest.fixture
def services_answer(coordinator_loading: type[BrokerLoadingItsCoordinator], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coordinator_loading, "unavailable", 0)


@pytest.mark.usefixtures("services_answer")
def test_check_names_the_problems_of_the_rules_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "rules.yaml"
    path.write_text(DUPLICATE_RULE, encoding="utf-8")
    monkeypatch.setenv("WIREFEED_ALERT_RULES_PATH", str(path))
    assert cli.main(["check", "--timeout", "0.2"]) == 1
    assert capsys.readouterr().out.splitlines() == [f"invalid alert rules: {path}: rules/1 (a): duplicate rule id"]
    path.unlink()
    assert cli.main(["check", "--timeout", "0.2"]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"invalid alert rules: {path}: cannot read: ")


@pytest.mark.usefixtures("services_answer")
def test_check_takes_a_valid_rules_file_with_its_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "rules.yaml"
    path.write_text(SECRET_MISSING, encoding="utf-8")
    monkeypatch.setenv("WIREFEED_ALERT_RULES_PATH", str(path))
    monkeypatch.setenv("WIREFEED_ALERT_WEBHOOK_SECRETS", f'{{"desk": "{SECRET}"}}')
    assert cli.main(["check", "--timeout", "0.2"]) == 0
    assert capsys.readouterr().out == "ok\n"


@pytest.mark.parametrize("allowed", [False, True])
def test_rules_check_reads_a_private_webhook_as_the_workers_of_the_settings_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], allowed: bool
):
    """A newsroom tool on the internal network, with the setting that allows it: the command
    refused the file the workers run with."""
    path = tmp_path / "rules.yaml"
    path.write_text(SECRET_MISSING.replace("https://hooks.newsroom.example/x", "http://10.0.4.7:8080/x"), encoding="utf-8")
    monkeypatch.setenv("WIREFEED_ALERT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", str(allowed).lower())
    assert cli.main(["rules", "check", "--no-secrets", str(path)]) == (0 if allowed else 1)
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: valid\n" if allowed else f"{path}: INVALID (1 problem(s))\n"), out


@pytest.mark.parametrize(("policy", "ready"), [("noeviction", True), ("volatile-lru", False), ("allkeys-lru", False)])
def test_check_fails_on_a_redis_that_evicts_keys_when_full(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str, ready: bool
):
    """Under any eviction policy a full Redis drops keys with a TTL, the once-only alert ledger's
    among them, and alerts fire again: managed Redis services often default to volatile-lru."""
    server = PrivateRedis(tmp_path / "redis").start()
    try:
        redis.Redis(port=server.port).config_set("maxmemory-policy", policy)
        monkeypatch.setenv("WIREFEED_REDIS_URL", server.url)
        monkeypatch.setattr(localstack, "unreachable_services", lambda settings, timeout_s: [])
        assert cli.main(["check", "--timeout", "2"]) == (0 if ready else 1)
    finally:
        server.stop()
    out = capsys.readouterr().out
    expected = "ok\n" if ready else (
        f"misconfigured: Redis at 127.0.0.1:{server.port}: maxmemory-policy is {policy}: when Redis is full it "
        "evicts keys, the once-only alert ledger's too, and alerts fire again; set it to noeviction\n"
    )
    assert out == expected


def test_a_sigterm_before_faust_handles_signals_ends_the_command_even_as_process_1() -> None:
    # As a container's process 1 a signal without a handler is ignored: a SIGTERM during the
    # worker's start-up was thrown away. Killed by the signal, the command would end with -15.
    env = {**os.environ, "WIREFEED_KAFKA_BOOTSTRAP": NOWHERE}
    command = subprocess.Popen([sys.executable, "-m", "workers", "check"], env=env, stderr=subprocess.DEVNULL)
    time.sleep(1.5)  # past the imports, waiting for the broker
    command.send_signal(signal.SIGTERM)
    assert command.wait(timeout=20) == 128 + signal.SIGTERM


# --- found by a review of the settings' values (the twenty-sixth session) ------------------------


@pytest.mark.parametrize(
    ("bootstrap", "command"),
    [
        ("kafka:909two", ["topics", "create"]),
        ("localhost", ["stack", "status"]),
        ("kafka-1:9092,", ["check"]),
        ("kafka-1:9092,kafka-2:65536", ["check"]),
        ("::1:9092", ["check"]),
        ("[::1]", ["stack", "status"]),
    ],
)
def test_a_kafka_bootstrap_that_is_not_hosts_and_ports_is_refused_with_the_settings(
    bootstrap: str, command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """A typo in a port passed the settings and ended `topics create` in a ValueError traceback
    (int()), and a server without its port ended `stack status` in an IndexError."""
    monkeypatch.setenv("WIREFEED_KAFKA_BOOTSTRAP", bootstrap)
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("wirefeed: invalid settings") and len(err.strip().splitlines()) == 1
    assert "kafka_bootstrap must be HOST:PORT servers" in err


def test_a_kafka_bootstrap_of_servers_and_ports_is_accepted():
    assert Settings(_env_file=None, kafka_bootstrap="kafka-1:9092,kafka_2.internal:9093,[fd00::7]:9094")
    # the local stack's broker on IPv6 loopback: its port is the Kafka port
    assert localstack.stack_args(Settings(_env_file=None, kafka_bootstrap="[::1]:29092"))[3] == "29092"


def test_produce_refuses_a_directory_without_html_files_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A mirror's pages saved without an .html suffix (wget, httrack: index, article.php?id=3) were
    not read, and the command said "published 0 page(s)" and succeeded."""
    mirror = tmp_path / "mirror"
    (mirror / "news").mkdir(parents=True)
    (mirror / "news" / "article.php?id=3").write_bytes((SAMPLE_PAGES / "ja-asahi.html").read_bytes())
    (mirror / "README.txt").write_text("notes")
    assert cli.main(["produce", str(SAMPLE_PAGES / "ja-asahi.html"), str(mirror)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"wirefeed produce: {mirror}: no .htm, .html, .xhtml file in this directory or under it "
        "(a page under another name is read when given by its own path)\n"
    )


@pytest.mark.parametrize("content", [b"", b"\n  \n\r\n", b"\xef\xbb\xbf\n"])
def test_produce_refuses_a_jsonl_file_without_pages_naming_it(
    content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """An export cut off before its first line, or the wrong file, said "published 0 page(s)"
    and succeeded."""
    export = tmp_path / "crawl.jsonl"
    export.write_bytes(content)
    assert cli.main(["produce", str(SAMPLE_PAGES / "ja-asahi.html"), str(export)]) == 2
    assert capsys.readouterr().err == (
        f"wirefeed produce: {export}: no page in this file (JSON Lines: one pages.raw message per line)\n"
    )


# --- found by a review of `wirefeed replay` and `produce` (the twenty-seventh session) -------------------


@pytest.mark.parametrize("name", ["pages.raw ", "pages,raw", "..", "x" * 250])
@pytest.mark.parametrize("option", [["replay", "--into"], ["replay", "--topic"], ["produce", "x.html", "--topic"]])
def test_a_topic_name_kafka_does_not_allow_is_refused_before_connecting(
    option: list[str], name: str, capsys: pytest.CaptureFixture[str]
):
    """The broker's metadata answers INVALID_TOPIC_EXCEPTION for one, not "does not exist": the
    replay printed its plan, then its first send raised a 28-line traceback."""
    with pytest.raises(SystemExit) as stopped:
        cli.main([*option, name])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f"{option[-1]}: not a topic name: {name!r} (1 to 249 of the characters a-z A-Z 0-9 . _ -, not . or ..)"
    )
