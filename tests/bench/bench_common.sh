# Sourced by agent_callgrind.sh and agent_perfstat.sh: what the agent-beside-gdnsd benches share.

# bench_prologue NAME TOOL...: checks the tools and the agent binary ($agent), re-runs the calling
# script ($0, with BENCH_ARGS) in a private network namespace with loopback only, whatever a
# server does; then makes the work directory $w, removed on exit with the server $pid stopped.
bench_prologue() {
  local name=$1; shift
  for tool in "$@" dig unshare taskset; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 77; }
  done
  [ -x "$agent" ] || { echo "build $agent first" >&2; exit 1; }
  if [ -z "${IN_NETNS:-}" ]; then
    exec unshare -n env IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "${BENCH_ARGS[@]}"
  fi
  w=$(mktemp -d "/tmp/$name.XXXXXX")
  pid=""
  trap bench_cleanup EXIT
}
bench_cleanup() {
  [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$w"
}

# start_server SERVER WRAPPER...: gdnsd (zone file $w/zone) or the agent (agent_run.sh, hosts
# file $w/hosts) on 127.0.0.1:$port, pinned to core 1, under WRAPPER (e.g. valgrind; none: no
# words); sets $pid and waits for an answer.
start_server() {
  local s=$1 d=$w/$1; shift
  rm -rf "$d" && mkdir -p "$d"
  case $s in
    gdnsd)
      mkdir -p "$d/etc/zones" "$d/run" "$d/state"
      printf 'options => {\n listen => [ 127.0.0.1 ]\n dns_port => %s\n udp_threads => 1\n tcp_threads => 1\n run_dir => %s/run\n state_dir => %s/state\n}\n' \
        "$port" "$d" "$d" > "$d/etc/config"
      cp "$w/zone" "$d/etc/zones/$zone"
      taskset -c 1 "$@" gdnsd -c "$d/etc" -f start > "$d/log" 2>&1 &;;
    agent)
      AGENT_WRAPPER="$*" taskset -c 1 bash "$repo/tests/bench/agent_run.sh" "$agent" \
        "$w/hosts" "$d" 127.0.0.1 "$port" "${CONTAINERS:-10000}" > "$d/log" 2>&1 &;;
    *) echo "unknown server $s" >&2; exit 1;;
  esac
  pid=$!
  for _ in $(seq 600); do
    dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 "svc1.$zone" A 2>/dev/null | grep -q '^10\.' && return 0
    sleep 0.1
  done
  echo "$s did not answer; log:" >&2; cat "$d/log" >&2; exit 1
}

# write_names DIR NAMES ZONE: one set of names for both servers, as gdnsd's zone file (DIR/zone),
# the agent's hosts file (DIR/hosts) and dnsperf's queries (DIR/queries): NAMES services of 4 A
# records each under ZONE.
write_names() {  # write_names DIR NAMES ZONE
  awk -v n="$2" -v zone="$3" -v zf="$1/zone" -v hf="$1/hosts" -v qf="$1/queries" 'BEGIN {
    printf "$ORIGIN %s.\n$TTL 30\n@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 30\n", zone, zone, zone > zf
    printf "@ IN NS ns.%s.\nns IN A 127.0.0.1\n", zone > zf
    for (i = 0; i < n; i++) {
      for (k = 1; k <= 4; k++) {
        ip = sprintf("10.%d.%d.%d", 64 + int(i / 256), i % 256, k)
        printf "svc%d IN A %s\n", i, ip > zf
        printf "%s svc%d.%s\n", ip, i, zone > hf
      }
      printf "svc%d.%s A\n", i, zone > qf
    }
  }'
}
