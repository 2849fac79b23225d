#!/usr/bin/env bash
# Installs what the local stack (deploy/local/stack.sh) and `make venv` need on a fresh
# Debian/Ubuntu machine: redis-server + redis-cli, a Java 17+ runtime, Maven, make, a C compiler
# (a test builds a shim), and python3-venv when `python3 -m venv` does not work. Prints nothing and changes nothing when
# all of it is already there; runs `apt-get update` once, only when something is missing.
set -euo pipefail

packages=()

have() {
    command -v "$1" >/dev/null 2>&1
}

# Kafka needs Java 17 or newer (stack.sh checks). The distribution's default runtime is that on
# Debian 12 (17) and 13 (21, which has no openjdk-17) but not on Ubuntu 22.04 (11): there,
# openjdk-17. Decided after `apt-get update`, since a fresh image has no package lists.
java_package() {
    local major
    major="$(apt-cache depends default-jre-headless 2>/dev/null \
        | sed -n 's/.*Depends: openjdk-\([0-9][0-9]*\)-jre-headless.*/\1/p' | head -n 1)"
    if [[ -n "${major}" ]] && (( major >= 17 )); then
        echo default-jre-headless
    else
        echo openjdk-17-jre-headless
    fi
}

# A Java older than 17 counts as missing: stack.sh would refuse it only later.
java_major() {
    java -version 2>&1 | sed -n 's/.*version "\(1\.\)\{0,1\}\([0-9][0-9]*\).*/\2/p' | head -n 1
}

python="${PYTHON:-python3}"
need_java=no
installs_redis=no
have redis-server || { packages+=(redis-server); installs_redis=yes; }
have redis-cli || packages+=(redis-tools)
# the tests build a small LD_PRELOAD shim (tests/integration/test_extraction_pool.py)
have cc || packages+=(gcc libc6-dev)
if ! have java || (( $(java_major || echo 0) < 17 )); then
    need_java=yes
fi
have mvn || packages+=(maven)
have make || packages+=(make)

if have "${python}"; then
    if ! "${python}" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "install-deps: error: wirefeed needs Python 3.11 or newer; ${python} is" \
            "$("${python}" --version 2>&1). Install python3.11 and python3.11-venv (Ubuntu 22.04:" \
            "from its universe or deadsnakes), then run make with PYTHON=python3.11" >&2
        exit 1
    fi
    probe="$(mktemp -d)"
    trap 'rm -rf "${probe}"' EXIT
    # What `python3 -m venv` needs: the venv module, and ensurepip with its bundled pip
    # (Debian moves both pieces into python3-venv). The cheap form of a full venv, which
    # would take seconds on every `make`.
    if ! "${python}" -m venv --without-pip "${probe}/venv" >/dev/null 2>&1 \
            || ! "${python}" -c 'import ensurepip; ensurepip.version()' >/dev/null 2>&1; then
        packages+=(python3-venv)
    fi
else
    packages+=(python3 python3-venv)
fi

if [[ ${#packages[@]} -eq 0 && "${need_java}" == no ]]; then
    exit 0
fi

wanted=("${packages[@]}")
[[ "${need_java}" == yes ]] && wanted+=("a Java 17+ runtime")
echo "install-deps: missing, installing: ${wanted[*]}"
if ! have apt-get; then
    echo "install-deps: error: no apt-get here; install these by hand: ${wanted[*]}" >&2
    exit 1
fi

sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
    if ! have sudo; then
        echo "install-deps: error: not root and no sudo; run this script as root (missing: ${wanted[*]})" >&2
        exit 1
    fi
    # Without a terminal (CI) nobody can type a password: -n fails at once instead of waiting.
    # At a terminal, sudo may ask for it.
    if [[ -n "${CI:-}" || ! -t 0 ]]; then
        sudo_cmd=(sudo -n)
    else
        sudo_cmd=(sudo)
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
[[ "${need_java}" == yes ]] && packages+=("$(java_package)")
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps: installed ${packages[*]}"

# Debian's redis-server package starts a system-wide Redis on 6379 where systemd runs, the port
# of the local stack's own Redis. One this script installed is only there for its binary.
if [[ "${installs_redis}" == yes ]] && have systemctl && systemctl is-active --quiet redis-server 2>/dev/null; then
    "${sudo_cmd[@]}" systemctl disable --now redis-server >/dev/null 2>&1 \
        && echo "install-deps: stopped and disabled the system redis-server service it started" \
            "(the local stack runs its own Redis on 6379)"
elif have systemctl && systemctl is-active --quiet redis-server 2>/dev/null; then
    echo "install-deps: note: the system redis-server service is running on 6379;" \
        "'sudo systemctl disable --now redis-server' frees that port for the local stack"
fi
