#!/usr/bin/env bash
# The local wirefeed stack without Docker: one Kafka broker (KRaft, jars from Maven Central)
# and one Redis, both bound to 127.0.0.1, with all their state under one directory.
#
#   stack.sh up|down|status [--dir DIR] [--kafka-port 9092] [--controller-port 9093]
#                           [--redis-port 6379] [--kafka-version 4.1.2]
#                           [--max-message-bytes 33554432] [--timeout 90]
#
# up      fetch the Kafka jars once (cached in ${XDG_CACHE_HOME:-~/.cache}/wirefeed), write the
#         configs, format the storage once, start what is not running and wait until both
#         answer. Idempotent. The broker's group coordinator is not waited for here: a fresh
#         broker creates it on a client's first request, and this script has no Kafka client.
#         `wirefeed stack up` (workers/localstack.py) runs this, then waits for it too.
# down    SIGTERM both, SIGKILL after 30 s. Idempotent. Needs only --dir.
# status  one line per service; exit 0 only when both are up.
#
# Layout of DIR:  kafka/{server.properties,log4j2.yaml,cluster-id,data/,broker.log,kafka.pid}
#                 redis/{redis.conf,data/,redis.log,redis.pid}
# Requirements: java >= 17, mvn (first run only), redis-server, redis-cli
# (deploy/local/install-deps.sh installs them on Debian/Ubuntu).
set -euo pipefail

readonly STARTED_LINE="Kafka Server started"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly POM="${SCRIPT_DIR}/kafka/pom.xml"

dir=".wirefeed/stack"
kafka_port=9092
controller_port=9093
redis_port=6379
kafka_version="4.1.2"
max_message_bytes=33554432
timeout_s=90
stop_timeout_s=30

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
    echo "stack.sh: error: $*" >&2
    exit 1
}

log() {
    echo "stack.sh: $*"
}

is_uint() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

# --- arguments --------------------------------------------------------------------------

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
command="$1"
shift
case "${command}" in
    up | down | status) ;;
    -h | --help | help) usage; exit 0 ;;
    *) echo "stack.sh: unknown command '${command}'" >&2; usage >&2; exit 2 ;;
esac

while [[ $# -gt 0 ]]; do
    option="$1"
    value=""
    if [[ "${option}" == --*=* ]]; then
        value="${option#*=}"
        option="${option%%=*}"
    elif [[ "${option}" != "-h" && "${option}" != "--help" ]]; then
        [[ $# -ge 2 ]] || { echo "stack.sh: ${option} needs a value" >&2; exit 2; }
        value="$2"
        shift
    fi
    shift
    case "${option}" in
        --dir) dir="${value}" ;;
        --kafka-port) kafka_port="${value}" ;;
        --controller-port) controller_port="${value}" ;;
        --redis-port) redis_port="${value}" ;;
        --kafka-version) kafka_version="${value}" ;;
        --max-message-bytes) max_message_bytes="${value}" ;;
        --timeout) timeout_s="${value}" ;;
        -h | --help) usage; exit 0 ;;
        *) echo "stack.sh: unknown option '${option}'" >&2; usage >&2; exit 2 ;;
    esac
done

for name in kafka_port controller_port redis_port max_message_bytes timeout_s; do
    is_uint "${!name}" || { echo "stack.sh: --${name//_/-} must be a number, got '${!name}'" >&2; exit 2; }
done
for name in kafka_port controller_port redis_port; do
    if (( ${!name} < 1 || ${!name} > 65535 )); then
        echo "stack.sh: --${name//_/-} out of range: ${!name}" >&2
        exit 2
    fi
done
if (( kafka_port == controller_port || kafka_port == redis_port || controller_port == redis_port )); then
    echo "stack.sh: kafka, controller and redis ports must differ" >&2
    exit 2
fi
[[ "${kafka_version}" =~ ^[0-9A-Za-z.+-]+$ ]] || { echo "stack.sh: bad --kafka-version '${kafka_version}'" >&2; exit 2; }
[[ -n "${dir}" ]] || { echo "stack.sh: --dir must not be empty" >&2; exit 2; }

# Absolute, so that the pid checks below (which look for DIR in a command line) are exact.
if [[ "${dir}" != /* ]]; then
    dir="${PWD}/${dir}"
fi
kafka_dir="${dir}/kafka"
redis_dir="${dir}/redis"
kafka_pidfile="${kafka_dir}/kafka.pid"
redis_pidfile="${redis_dir}/redis.pid"
kafka_log="${kafka_dir}/broker.log"
redis_log="${redis_dir}/redis.log"
kafka_config="${kafka_dir}/server.properties"
cache_root="${XDG_CACHE_HOME:-${HOME}/.cache}/wirefeed"
libs_dir="${cache_root}/kafka-${kafka_version}/libs"

# --- process helpers --------------------------------------------------------------------

# The command line of a live process, or nothing.
cmdline_of() {
    local pid="$1"
    if [[ -r "/proc/${pid}/cmdline" ]]; then
        tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null || true
    else
        ps -o args= -p "${pid}" 2>/dev/null || true
    fi
}

# Prints the pid recorded in PIDFILE when that process is alive and its command line
# contains NEEDLE (so a pid reused by another program after a crash is not ours).
live_pid() {
    local pidfile="$1" needle="$2" pid
    [[ -s "${pidfile}" ]] || return 1
    pid="$(tr -dc '0-9' <"${pidfile}")"
    [[ -n "${pid}" ]] || return 1
    kill -0 "${pid}" 2>/dev/null || return 1
    [[ "$(cmdline_of "${pid}")" == *"${needle}"* ]] || return 1
    echo "${pid}"
}

kafka_needle() { echo "${kafka_config}"; }
redis_needle() { echo "redis-server 127.0.0.1:${redis_port}"; }

kafka_pid() { live_pid "${kafka_pidfile}" "$(kafka_needle)"; }
redis_pid() {
    # redis rewrites its title to "redis-server 127.0.0.1:PORT"; the port may not be known
    # to `down` (it takes only --dir), so fall back to the bare program name there.
    live_pid "${redis_pidfile}" "$(redis_needle)" || live_pid "${redis_pidfile}" "redis-server"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

kafka_started() {
    [[ -f "${kafka_log}" ]] && grep -q "${STARTED_LINE}" "${kafka_log}" && port_open "${kafka_port}"
}

redis_ready() {
    [[ "$(redis-cli -h 127.0.0.1 -p "${redis_port}" ping 2>/dev/null)" == "PONG" ]]
}

clear_stale() {
    local pidfile="$1" service="$2"
    if [[ -e "${pidfile}" ]]; then
        log "${service}: removing stale pid file ${pidfile}"
        rm -f "${pidfile}"
    fi
}

# --- status -----------------------------------------------------------------------------

service_line() {
    local service="$1" pid="$2" port="$3" ready="$4"
    if [[ -n "${pid}" && "${ready}" == yes ]]; then
        printf '%-6s up       pid=%s port=%s\n' "${service}" "${pid}" "${port}"
    elif [[ -n "${pid}" ]]; then
        printf '%-6s starting pid=%s port=%s (not answering yet)\n' "${service}" "${pid}" "${port}"
    elif port_open "${port}"; then
        printf '%-6s down     port=%s (in use by a process this stack did not start)\n' "${service}" "${port}"
    else
        printf '%-6s down     port=%s\n' "${service}" "${port}"
    fi
}

cmd_status() {
    local kpid rpid kready=no rready=no
    kpid="$(kafka_pid || true)"
    rpid="$(redis_pid || true)"
    if [[ -n "${kpid}" ]] && kafka_started; then kready=yes; fi
    if [[ -n "${rpid}" ]] && redis_ready; then rready=yes; fi
    service_line kafka "${kpid}" "${kafka_port}" "${kready}"
    service_line redis "${rpid}" "${redis_port}" "${rready}"
    [[ "${kready}" == yes && "${rready}" == yes ]]
}

# --- down -------------------------------------------------------------------------------

cmd_down() {
    local kpid rpid pids=() deadline pid alive
    kpid="$(kafka_pid || true)"
    rpid="$(redis_pid || true)"
    if [[ -n "${kpid}" ]]; then
        pids+=("${kpid}")
        log "kafka: stopping pid ${kpid}"
    else
        clear_stale "${kafka_pidfile}" kafka
    fi
    if [[ -n "${rpid}" ]]; then
        pids+=("${rpid}")
        log "redis: stopping pid ${rpid}"
    else
        clear_stale "${redis_pidfile}" redis
    fi
    if [[ ${#pids[@]} -eq 0 ]]; then
        log "already down (${dir})"
        return 0
    fi
    kill -TERM "${pids[@]}" 2>/dev/null || true
    deadline=$((SECONDS + stop_timeout_s))
    while :; do
        alive=()
        for pid in "${pids[@]}"; do
            if kill -0 "${pid}" 2>/dev/null; then alive+=("${pid}"); fi
        done
        [[ ${#alive[@]} -gt 0 ]] || break
        if (( SECONDS >= deadline )); then
            log "still running after ${stop_timeout_s} s, sending SIGKILL to ${alive[*]}"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "${kafka_pidfile}" "${redis_pidfile}"
    log "down (${dir})"
}

# --- up ---------------------------------------------------------------------------------

require() {
    command -v "$1" >/dev/null 2>&1 || die "$1 not found; run deploy/local/install-deps.sh${2:+ ($2)}"
}

check_java() {
    require java
    local version major
    version="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)"
    major="${version%%.*}"
    if [[ "${major}" == 1 ]]; then major="$(echo "${version}" | cut -d. -f2)"; fi
    if is_uint "${major}" && (( major < 17 )); then
        die "Kafka ${kafka_version} needs Java 17 or newer, found ${version}"
    fi
}

# Kafka jars, fetched once per version into a cache that outlives clones of the repo.
fetch_kafka() {
    [[ -f "${libs_dir}/.complete" ]] && return 0
    require mvn "needed once to fetch the Kafka jars"
    [[ -f "${POM}" ]] || die "missing ${POM}"
    local parent work
    parent="$(dirname "${libs_dir}")"
    mkdir -p "${parent}"
    # One fetch at a time per version (two stacks coming up together share the cache).
    if command -v flock >/dev/null 2>&1; then
        exec 8>"${parent}/.lock"
        flock 8
        if [[ -f "${libs_dir}/.complete" ]]; then exec 8>&-; return 0; fi
    fi
    log "fetching Kafka ${kafka_version} jars from Maven Central into ${libs_dir}"
    work="$(mktemp -d "${parent}/fetch.XXXXXX")"
    cp "${POM}" "${work}/pom.xml"
    # (sed: Maven 3.8 prints colour resets even in batch mode.)
    if ! (cd "${work}" && mvn -q -B -Dstyle.color=never -Dkafka.version="${kafka_version}" \
            dependency:copy-dependencies -DoutputDirectory="${work}/libs" -DincludeScope=runtime \
            2>&1 | sed -e $'s/\x1b\\[[0-9;]*m//g'); then
        rm -rf "${work}"
        die "could not fetch Kafka ${kafka_version} with Maven (see the output above)"
    fi
    ls "${work}/libs"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "${work}"; die "Maven produced no kafka_2.13 jar"; }
    touch "${work}/libs/.complete"
    rm -rf "${libs_dir}"
    mv "${work}/libs" "${libs_dir}"
    rm -rf "${work}"
    if command -v flock >/dev/null 2>&1; then exec 8>&-; fi
}

write_kafka_config() {
    local socket_max=104857600
    # A request carries a whole message; keep the socket limit above the message limit.
    if (( max_message_bytes + 1048576 > socket_max )); then socket_max=$((max_message_bytes + 1048576)); fi
    mkdir -p "${kafka_dir}/data"
    cat >"${kafka_config}" <<EOF
# Written by deploy/local/stack.sh on every 'up'; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controller_port}
listeners=PLAINTEXT://127.0.0.1:${kafka_port},CONTROLLER://127.0.0.1:${controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:${kafka_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${kafka_dir}/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# Same limit as the producer (max.request.size) and the topics (max.message.bytes).
message.max.bytes=${max_message_bytes}
replica.fetch.max.bytes=${max_message_bytes}
socket.request.max.bytes=${socket_max}
EOF
    cat >"${kafka_dir}/log4j2.yaml" <<'EOF'
# Written by deploy/local/stack.sh. WARN and up, plus the line that says the broker is up.
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
        additivity: false
        AppenderRef:
          - ref: STDOUT
EOF
}

format_kafka() {
    [[ -f "${kafka_dir}/data/meta.properties" ]] && return 0
    local cluster_id
    if [[ -s "${kafka_dir}/cluster-id" ]]; then
        cluster_id="$(tr -d '[:space:]' <"${kafka_dir}/cluster-id")"
    else
        cluster_id="$(java -cp "${libs_dir}/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 | tr -d '[:space:]')"
        [[ ${#cluster_id} -eq 22 ]] || die "could not generate a Kafka cluster id (got '${cluster_id}')"
        echo "${cluster_id}" >"${kafka_dir}/cluster-id"
    fi
    log "kafka: formatting ${kafka_dir}/data (cluster id ${cluster_id})"
    if ! java -Dlog4j2.configurationFile="${kafka_dir}/log4j2.yaml" -cp "${libs_dir}/*" \
            kafka.tools.StorageTool format -t "${cluster_id}" -c "${kafka_config}" \
            >"${kafka_dir}/format.log" 2>&1; then
        cat "${kafka_dir}/format.log" >&2
        die "kafka storage format failed"
    fi
}

start_kafka() {
    local launcher=()
    if command -v setsid >/dev/null 2>&1; then launcher=(setsid); fi
    # Keep the previous run's log for post-mortems; the new one must not contain an old
    # "started" line.
    if [[ -f "${kafka_log}" ]]; then mv -f "${kafka_log}" "${kafka_log}.1"; fi
    log "kafka: starting on 127.0.0.1:${kafka_port} (controller ${controller_port}), log ${kafka_log}"
    # The inner shell writes its own pid and then becomes java (exec keeps the pid), so the
    # pid file names the broker itself, whether or not setsid had to fork.
    # shellcheck disable=SC2016  # $$ and "$@" are meant for the inner shell
    "${launcher[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' start-kafka "${kafka_pidfile}" \
        java -Xms256m -Xmx512m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="${kafka_dir}/log4j2.yaml" \
        -cp "${libs_dir}/*" kafka.Kafka "${kafka_config}" \
        </dev/null >"${kafka_log}" 2>&1 &
    # Wait for the pid file so that a concurrent 'status' or 'down' can see the broker.
    local _
    for _ in {1..50}; do
        [[ -s "${kafka_pidfile}" ]] && return 0
        sleep 0.1
    done
    die "kafka: the broker did not start (no pid file after 5 s)"
}

start_redis() {
    mkdir -p "${redis_dir}/data"
    cat >"${redis_dir}/redis.conf" <<EOF
# Written by deploy/local/stack.sh on every 'up'; edit the script, not this file.
bind 127.0.0.1
protected-mode yes
port ${redis_port}
daemonize yes
pidfile "${redis_pidfile}"
logfile "${redis_log}"
dir "${redis_dir}/data"
appendonly yes
appendfsync everysec
# full, refuse writes (the workers wait) rather than drop keys: README, "Redis"
maxmemory-policy noeviction
EOF
    log "redis: starting on 127.0.0.1:${redis_port}, log ${redis_log}"
    # daemonize: redis forks, writes the pid file itself and removes it on a clean exit.
    redis-server "${redis_dir}/redis.conf" || die "redis-server failed to start; see ${redis_log}"
}

fail_start() {
    local service="$1" logfile="$2" reason="$3"
    echo "stack.sh: error: ${service} ${reason}" >&2
    if [[ -f "${logfile}" ]]; then
        echo "--- last 40 lines of ${logfile} ---" >&2
        tail -n 40 "${logfile}" >&2
        echo "---" >&2
    fi
}

cmd_up() {
    local kpid rpid port started_kafka=no started_redis=no redis_started_at=0
    mkdir -p "${dir}"
    kpid="$(kafka_pid || true)"
    rpid="$(redis_pid || true)"
    # Running, but from an 'up' with other ports: say so instead of waiting for a port
    # that will never open.
    if [[ -n "${kpid}" ]] && ! grep -q "^listeners=PLAINTEXT://127.0.0.1:${kafka_port},CONTROLLER://127.0.0.1:${controller_port}\$" "${kafka_config}"; then
        die "kafka (pid ${kpid}) is running in ${dir} with other ports; run 'stack.sh down --dir ${dir}' first"
    fi
    if [[ -n "${rpid}" ]] && ! live_pid "${redis_pidfile}" "$(redis_needle)" >/dev/null; then
        die "redis (pid ${rpid}) is running in ${dir} on another port; run 'stack.sh down --dir ${dir}' first"
    fi
    if [[ -n "${kpid}" && -n "${rpid}" ]] && kafka_started && redis_ready; then
        log "already up (${dir})"
        cmd_status
        return 0
    fi

    if [[ -z "${kpid}" ]]; then
        clear_stale "${kafka_pidfile}" kafka
        for port in "${kafka_port}" "${controller_port}"; do
            if port_open "${port}"; then
                die "kafka: port ${port} is already in use by another process (choose other ports with --kafka-port/--controller-port)"
            fi
        done
        check_java
        fetch_kafka
        mkdir -p "${kafka_dir}"
        write_kafka_config
        format_kafka
    fi
    if [[ -z "${rpid}" ]]; then
        clear_stale "${redis_pidfile}" redis
        require redis-server
        require redis-cli "package redis-tools"
        if port_open "${redis_port}"; then
            die "redis: port ${redis_port} is already in use by another process (choose another with --redis-port)"
        fi
    fi

    if [[ -z "${kpid}" ]]; then start_kafka; started_kafka=yes; fi
    if [[ -z "${rpid}" ]]; then start_redis; started_redis=yes; redis_started_at=${SECONDS}; fi

    local deadline=$((SECONDS + timeout_s)) kafka_ok=no redis_ok=no problem=""
    while :; do
        [[ "${kafka_ok}" == yes ]] || { kafka_started && kafka_ok=yes; } || true
        [[ "${redis_ok}" == yes ]] || { redis_ready && redis_ok=yes; } || true
        [[ "${kafka_ok}" == yes && "${redis_ok}" == yes ]] && break
        if [[ "${kafka_ok}" != yes ]] && ! kafka_pid >/dev/null; then problem=kafka-died; break; fi
        # A daemonized redis writes its pid file right after the fork; none after 5 s (or
        # a dead pid) means it gave up, e.g. on an unusable dir: its log says why.
        if [[ "${redis_ok}" != yes ]] && ! redis_pid >/dev/null; then
            if [[ "${started_redis}" == no ]] || (( SECONDS - redis_started_at > 5 )); then
                problem=redis-died; break
            fi
        fi
        if (( SECONDS >= deadline )); then problem=timeout; break; fi
        sleep 0.5
    done

    if [[ -n "${problem}" ]]; then
        case "${problem}" in
            kafka-died) fail_start kafka "${kafka_log}" "exited during start-up" ;;
            redis-died) fail_start redis "${redis_log}" "exited during start-up" ;;
            timeout)
                [[ "${kafka_ok}" == yes ]] || fail_start kafka "${kafka_log}" "not ready after ${timeout_s} s"
                [[ "${redis_ok}" == yes ]] || fail_start redis "${redis_log}" "not ready after ${timeout_s} s"
                ;;
        esac
        # Leave nothing half-started behind: stop what this call started.
        if [[ "${started_kafka}" == yes || "${started_redis}" == yes ]]; then
            log "stopping what this call started"
            stop_started "${started_kafka}" "${started_redis}"
        fi
        exit 1
    fi
    log "up (${dir})"
    cmd_status
}

stop_started() {
    local pid
    if [[ "$1" == yes ]] && pid="$(kafka_pid)"; then kill -KILL "${pid}" 2>/dev/null || true; fi
    if [[ "$2" == yes ]] && pid="$(redis_pid)"; then kill -KILL "${pid}" 2>/dev/null || true; fi
    if [[ "$1" == yes ]]; then rm -f "${kafka_pidfile}"; fi
    if [[ "$2" == yes ]]; then rm -f "${redis_pidfile}"; fi
}

case "${command}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
esac
