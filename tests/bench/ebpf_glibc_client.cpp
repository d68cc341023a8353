// ebpf_bench.sh GLIBC=1: the C library's own stub resolver as users meet it. COUNT lookups of
// NAME with getaddrinfo (IPv4 only: one A query each; glibc reads resolv.conf and the hosts
// file, opens a new UDP socket, connects it and sends, every lookup). Prints
//   queries=COUNT seconds=S failed=F cpu_ns=C
// (wall time, this process's CPU time) and exits 1 when any lookup failed.
//   ebpf_glibc_client NAME COUNT
#include <netdb.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {

double seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s NAME COUNT\n", argv[0]);
    return 2;
  }
  const long count = std::strtol(argv[2], nullptr, 10);
  long failed = 0;
  const double wall = seconds(CLOCK_MONOTONIC);
  const double cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (long i = 0; i < count; ++i) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(argv[1], nullptr, &hints, &res) != 0 || res == nullptr)
      ++failed;
    else
      freeaddrinfo(res);
  }
  std::printf("queries=%ld seconds=%.6f failed=%ld cpu_ns=%.0f\n", count,
              seconds(CLOCK_MONOTONIC) - wall, failed,
              (seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu) * 1e9);
  return failed == 0 ? 0 : 1;
}
