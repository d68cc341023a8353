// UDP DNS load generator for the eBPF benchmark: SOCKETS unconnected sockets (as musl's stub
// resolver: sendto + recvfrom with an address, so the sendmsg and recvmsg hooks run), one
// query in flight on each, QUERIES answers in total (bounded by 30 s). Prints
//   queries=N seconds=T qps=Q lost=L cpu_ns=C
// C is this process's CPU time (user + system, /proc/self/schedstat), which on loopback also
// carries most of the kernel's packet processing of what it sends.
//   ebpf_bench_client ADDR PORT SOCKETS QUERIES [fresh]
// `fresh`: a new socket (new source port) for every query, as glibc's stub resolver does; every
// query then costs the egress program an LRU update and a slot write.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

namespace {

constexpr auto kMaxDuration = std::chrono::seconds(30);  // load loops are bounded in time
constexpr auto kLostAfter = std::chrono::milliseconds(500);

// api.cloud66.local IN A, RD.
constexpr uint8_t kQuery[] = {0, 0,   1,   0,   0,   1,   0,   0,   0,   0,   0,   0,
                              3, 'a', 'p', 'i', 7,   'c', 'l', 'o', 'u', 'd', '6', '6',
                              5, 'l', 'o', 'c', 'a', 'l', 0,   0,   1,   0,   1};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr, "usage: %s ADDR PORT SOCKETS QUERIES [fresh]\n", argv[0]);
    return 2;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) return 2;
  const int sockets = std::atoi(argv[3]);
  const long total = std::atol(argv[4]);
  const bool fresh = argc == 6 && std::strcmp(argv[5], "fresh") == 0;
  if (sockets < 1 || sockets > 1024 || total < 1) return 2;

  using Clock = std::chrono::steady_clock;
  std::vector<pollfd> fds(sockets);
  std::vector<Clock::time_point> sent(sockets);
  std::vector<uint16_t> ids(sockets);
  uint16_t next_id = 1;
  uint8_t query[sizeof kQuery];
  std::memcpy(query, kQuery, sizeof kQuery);
  auto send = [&](int i) {
    if (fresh && fds[i].fd >= 0) {
      ::close(fds[i].fd);
      fds[i].fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    }
    ids[i] = next_id++;
    query[0] = uint8_t(ids[i] >> 8);
    query[1] = uint8_t(ids[i]);
    sent[i] = Clock::now();
    ::sendto(fds[i].fd, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  };
  for (int i = 0; i < sockets; ++i) {
    fds[i] = {::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), POLLIN, 0};
    if (fds[i].fd < 0) return 1;
  }
  long answered = 0, lost = 0;
  auto start = Clock::now();
  for (int i = 0; i < sockets; ++i) send(i);
  uint8_t buf[512];
  while (answered < total && Clock::now() - start < kMaxDuration) {
    int n = ::poll(fds.data(), fds.size(), 100);
    auto now = Clock::now();
    for (int i = 0; i < sockets; ++i) {
      if (fds[i].revents & POLLIN) {
        sockaddr_in from{};
        socklen_t flen = sizeof from;
        ssize_t len =
            ::recvfrom(fds[i].fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (len >= 2 && (buf[0] << 8 | buf[1]) == ids[i]) {
          ++answered;
          send(i);
        }
      } else if (n >= 0 && now - sent[i] > kLostAfter) {
        ++lost;
        send(i);
      }
    }
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  unsigned long long cpu_ns = 0;
  std::ifstream("/proc/self/schedstat") >> cpu_ns;
  std::printf("queries=%ld seconds=%.3f qps=%.0f lost=%ld cpu_ns=%llu\n", answered, seconds,
              answered / seconds, lost, cpu_ns);
  for (auto& p : fds) ::close(p.fd);
  return answered >= total ? 0 : 1;
}
