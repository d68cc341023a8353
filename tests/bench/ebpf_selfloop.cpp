// One UDP socket in one thread sends a datagram and receives it, ROUNDS times; prints the CPU
// time per round trip (this thread does all the kernel's work of both directions on loopback,
// so the figure is free of scheduling and of any server). Used by tests/bench/ebpf_bench.sh
// (SELFLOOP=1) to split the hooks' cost per query into the kernel's hook machinery (empty
// programs) and the ElasticDNS programs:
//   ebpf_selfloop BIND_PORT DST_ADDR DST_PORT ROUNDS
// The socket binds 127.0.0.1:BIND_PORT (0: any) and sends to DST_ADDR:DST_PORT (port 0: its own
// address). With the ElasticDNS programs redirecting DST_ADDR:53 to 127.0.0.1:BIND_PORT, every
// round trip runs sendmsg4 (redirect), egress (identity) and recvmsg4 (restore), as a stub
// resolver's query does on the client side. Prints `ns_per_round=N`; exit 1 if a datagram is
// lost or arrives from an unexpected source.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace {

constexpr int kWarmup = 1000;
constexpr size_t kDatagram = 40;  // about a query for api.cloud66.local

long long cpuNs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s BIND_PORT DST_ADDR DST_PORT ROUNDS\n", argv[0]);
    return 2;
  }
  const long rounds = std::atol(argv[4]);
  if (rounds < 1 || rounds > 100000000) return 2;
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in me{};
  me.sin_family = AF_INET;
  me.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof me;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof me) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len) != 0) {
    std::perror("socket/bind");
    return 1;
  }
  timeval timeout{1, 0};  // a lost datagram ends the run instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port =
      std::atoi(argv[3]) == 0 ? me.sin_port : htons(static_cast<uint16_t>(std::atoi(argv[3])));
  if (inet_pton(AF_INET, argv[2], &to.sin_addr) != 1) return 2;
  char out[kDatagram] = {}, in[512];
  auto round = [&]() -> bool {
    ::sendto(fd, out, sizeof out, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    sockaddr_in from{};
    socklen_t flen = sizeof from;
    ssize_t n = ::recvfrom(fd, in, sizeof in, 0, reinterpret_cast<sockaddr*>(&from), &flen);
    // The reply must appear to come from where it was sent (recvmsg4 restores it).
    return n == static_cast<ssize_t>(sizeof out) && from.sin_addr.s_addr == to.sin_addr.s_addr &&
           from.sin_port == to.sin_port;
  };
  for (int i = 0; i < kWarmup; ++i) {
    if (!round()) {
      std::fprintf(stderr, "round trip failed (lost, or from an unexpected source)\n");
      return 1;
    }
  }
  long long start = cpuNs();
  for (long i = 0; i < rounds; ++i) {
    if (!round()) {
      std::fprintf(stderr, "round trip %ld failed\n", i);
      return 1;
    }
  }
  std::printf("ns_per_round=%.1f\n", static_cast<double>(cpuNs() - start) / rounds);
  ::close(fd);
  return 0;
}
