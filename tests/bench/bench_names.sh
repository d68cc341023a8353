# Sourced by agent_callgrind.sh and agent_perfstat.sh: one set of names for both servers, as
# gdnsd's zone file (DIR/zone), the agent's hosts file (DIR/hosts) and dnsperf's queries
# (DIR/queries): NAMES services of 4 A records each under ZONE.
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
