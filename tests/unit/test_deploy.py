"""The deployment files against the code they configure: setting names, the memory a pod needs,
and what the readiness probe's command loads."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from tests.shared_data import REPO
from workers.settings import MIB, Settings

K8S = REPO / "deploy" / "k8s"
# Every file that names settings for a deployment: a misspelt name is ignored by the worker.
DEPLOY_FILES = [
    *sorted(K8S.glob("*.yaml")), K8S / "config.env", REPO / "docker-compose.yml", REPO / "deploy" / "Dockerfile",
]
# The worker process (Faust, aiokafka's buffers, dedup and alert state), the extraction pool's
# forkserver and a readiness probe, measured at about 0.5, 0.22 and 0.1 GiB, with room.
WORKER_OVERHEAD_MIB = 1024


def config_env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (K8S / "config.env").read_text().splitlines() if line and line[0] != "#")
    return {name: value for name, value in pairs}


def test_every_setting_the_deployment_files_name_is_a_setting():
    known = {f"WIREFEED_{name.upper()}" for name in Settings.model_fields}
    named = {name for path in DEPLOY_FILES for name in re.findall(r"\bWIREFEED_[A-Z0-9_]+", path.read_text())}
    assert named, "no settings found: the files moved?"
    assert named - known == set()


def test_no_pod_takes_the_variables_kubernetes_makes_of_the_namespace_s_services():
    # A Service named wirefeed-web injects WIREFEED_WEB_PORT=tcp://10.96.14.2:6066 into every pod
    # with service links on: each new worker and topics pod exits 2 on its settings.
    for path in (K8S / "worker-deployment.yaml", K8S / "topics-job.yaml"):
        (manifest,) = yaml.safe_load_all(path.read_text())
        assert manifest["spec"]["template"]["spec"]["enableServiceLinks"] is False, path.name


def test_the_worker_pod_memory_limit_holds_what_the_settings_let_the_worker_use():
    """The pod's limit against the worker's bounds (README, MAX_IN_FLIGHT): each extraction
    process's address-space cap, and about 5 x MAX_IN_FLIGHT raw records of MAX_MESSAGE_BYTES."""
    env = config_env()
    settings = Settings(**{name.removeprefix("WIREFEED_").lower(): value for name, value in env.items()})
    (deployment,) = yaml.safe_load_all((K8S / "worker-deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    resources = container["resources"]
    limit_mib = int(resources["limits"]["memory"].removesuffix("Gi")) * 1024
    needed_mib = (
        settings.extraction_processes * settings.extraction_memory_limit_mb
        + 5 * settings.max_in_flight * settings.max_message_bytes // MIB
        + WORKER_OVERHEAD_MIB
    )
    assert needed_mib <= limit_mib, f"{needed_mib} MiB needed, {limit_mib} MiB allowed"
    assert resources["requests"]["memory"] == resources["limits"]["memory"]  # never overcommitted
    assert int(resources["limits"]["cpu"]) == settings.extraction_processes


def test_the_readiness_probe_command_does_not_load_the_extractor():
    """``wirefeed check`` runs every 30 s in each pod, within its CPU and memory limits: building
    the command line must not import trafilatura or load the language model (seconds of CPU and
    a 65 MiB temporary file each time)."""
    probe = (
        "import sys; from workers import cli; cli._parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('trafilatura', 'py3langid', 'htmldate')"
        " or m == 'workers.stages.extract'))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert loaded.stdout.strip() == "[]", loaded.stdout
