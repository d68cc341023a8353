// A minimal DNS responder for the eBPF tests and benchmark (a stand-in for the agent's server):
// starts BpfRuntime on a cgroup, listens on UDP and TCP, and answers every query with what the
// caller registry identified, so a test can tell which container it was asked by:
//   A    -> the address given for that container id with --map ID=ADDR (else --unknown ADDR)
//   TXT  -> "container=<id> cgroup=<cgroup id>"
// Prints `listening on ADDR:PORT` when ready. SIGTERM: hands over and exits WITHOUT detaching
// (the pins keep redirect alive). With --port P --takeover it joins the SO_REUSEPORT group of
// a running responder and steers new packets and connections to itself.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "agent/ebpf/callers.hpp"
#include "agent/ebpf/loader.hpp"

using namespace elasticdns;
using namespace elasticdns::agent;

namespace {

volatile std::sig_atomic_t g_stop = 0;
void onSignal(int) {
  g_stop = 1;
}

constexpr size_t kMaxDnsMessage = 65535;  // RFC 1035 4.2.2 (TCP length prefix)
constexpr size_t kDnsHeader = 12;         // RFC 1035 4.1.1

struct Options {
  std::string listen = "127.0.0.1";
  uint16_t port = 0;
  bool takeover = false;
  bool bpf = true;
  BpfConfig bpf_config;
  std::map<std::string, in_addr> answers;
  in_addr unknown{htonl(0x0A4DFFFE)};  // 10.77.255.254
};

struct Responder {
  CallerRegistry* callers = nullptr;
  const Options* opts = nullptr;
  uint64_t served = 0;

  // Builds the answer to `q` (len bytes) into `out`; returns its length, 0 to drop.
  size_t answer(const uint8_t* q, size_t len, const Peer& peer, uint8_t* out) {
    if (len < kDnsHeader || len > 512) return 0;
    if ((q[4] << 8 | q[5]) != 1) return 0;  // exactly one question
    size_t pos = kDnsHeader;
    while (pos < len && q[pos] != 0) {
      if ((q[pos] & 0xC0) != 0) return 0;  // no compression in a question
      pos += 1 + q[pos];
    }
    if (pos + 5 > len) return 0;
    size_t qend = pos + 5;  // root label + qtype + qclass
    uint16_t qtype = static_cast<uint16_t>(q[pos + 1] << 8 | q[pos + 2]);
    std::memcpy(out, q, qend);
    out[2] = 0x84 | (q[2] & 0x01);  // QR, AA, RD copied
    out[3] = 0;
    out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0;
    size_t o = qend;

    std::string_view id;
    uint64_t cgroup = 0;
    if (callers) {
      if (auto cg = callers->cgroupOf(peer)) {
        cgroup = *cg;
        id = callers->containerIdOfCgroup(cgroup);
      }
    }
    auto rr = [&](uint16_t type, size_t rdlen) {
      const uint8_t head[] = {0xC0, 0x0C, uint8_t(type >> 8),  uint8_t(type), 0, 1, 0, 0,
                              0,    0,    uint8_t(rdlen >> 8), uint8_t(rdlen)};
      std::memcpy(out + o, head, sizeof head);
      o += sizeof head;
      out[7] = 1;
    };
    if (qtype == 1) {
      in_addr a = opts->unknown;
      if (auto it = opts->answers.find(std::string(id)); !id.empty() && it != opts->answers.end())
        a = it->second;
      rr(1, 4);
      std::memcpy(out + o, &a, 4);
      o += 4;
    } else if (qtype == 16) {
      std::string text =
          "container=" + std::string(id.empty() ? "-" : id) + " cgroup=" + std::to_string(cgroup);
      if (text.size() > 255) text.resize(255);
      rr(16, text.size() + 1);
      out[o++] = static_cast<uint8_t>(text.size());
      std::memcpy(out + o, text.data(), text.size());
      o += text.size();
    }
    ++served;
    return o;
  }
};

int makeSocket(int type, const Options& o, sockaddr_in& addr) {
  int fd = ::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (type == SOCK_STREAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("bind");
    std::exit(1);
  }
  if (type == SOCK_STREAM && ::listen(fd, 1024) != 0) {
    std::perror("listen");
    std::exit(1);
  }
  // After bind/listen: the socket is in the port's SO_REUSEPORT group only once hashed.
  if (o.takeover) {
    // The group's sockets are indexed in join order: the newest is the last one (index 1 while
    // the old responder is still there). Steer everything to it; when the old one leaves, the
    // index is out of range and the kernel falls back to its hash over the one socket left.
    sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, 1)};
    sock_fprog prog{1, code};
    if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0)
      std::perror("SO_ATTACH_REUSEPORT_CBPF");
  }
  return fd;
}

Peer peerOf(const sockaddr_storage& ss, Transport t) {
  Peer p;
  p.addr = ss;
  p.transport = t;
  return p;
}

int usage() {
  std::fprintf(stderr,
               "usage: edns_test_responder --cgroup CG --pin DIR [--listen ADDR] [--port N] "
               "[--takeover] [--no-redirect] [--no-bpf] [--exclude CG]... [--map ID=ADDR]... "
               "[--unknown ADDR] [--detach]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.bpf_config.enabled = true;
  bool detach = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--cgroup")
      o.bpf_config.cgroup = next();
    else if (a == "--pin")
      o.bpf_config.pin_path = next();
    else if (a == "--listen")
      o.listen = next();
    else if (a == "--port")
      o.port = static_cast<uint16_t>(std::stoi(next()));
    else if (a == "--takeover")
      o.takeover = true;
    else if (a == "--no-redirect")
      o.bpf_config.redirect = false;
    else if (a == "--no-bpf")
      o.bpf = false;
    else if (a == "--detach")
      detach = true;
    else if (a == "--exclude")
      o.bpf_config.exclude_cgroups.push_back(next());
    else if (a == "--pattern")
      o.bpf_config.container_id_pattern = next();
    else if (a == "--unknown")
      inet_pton(AF_INET, next().c_str(), &o.unknown);
    else if (a == "--map") {
      std::string m = next();
      auto eq = m.find('=');
      in_addr addr{};
      if (eq == std::string::npos || inet_pton(AF_INET, m.substr(eq + 1).c_str(), &addr) != 1)
        return usage();
      o.answers[m.substr(0, eq)] = addr;
    } else
      return usage();
  }
  if (detach) {
    std::string err = detachBpf(o.bpf_config);
    if (!err.empty()) std::fprintf(stderr, "detach: %s\n", err.c_str());
    return err.empty() ? 0 : 1;
  }
  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);
  std::signal(SIGPIPE, SIG_IGN);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o.port);
  if (inet_pton(AF_INET, o.listen.c_str(), &addr.sin_addr) != 1) return usage();
  int udp = makeSocket(SOCK_DGRAM, o, addr);
  socklen_t alen = sizeof addr;
  ::getsockname(udp, reinterpret_cast<sockaddr*>(&addr), &alen);
  int tcp = makeSocket(SOCK_STREAM, o, addr);

  metrics::Registry registry;
  std::unique_ptr<BpfRuntime> runtime;
  Responder responder;
  responder.opts = &o;
  if (o.bpf) {
    RedirectTarget target;
    target.v4 = boost::asio::ip::address_v4(ntohl(addr.sin_addr.s_addr));
    target.port = ntohs(addr.sin_port);
    auto started = BpfRuntime::start(o.bpf_config, target, registry);
    if (!started) {
      std::fprintf(stderr, "bpf: %s\n", started.error().message().c_str());
      return 3;
    }
    runtime = std::move(started.value());
    responder.callers = &runtime->callers();
    std::printf("bpf attached to %s maps=%s\n", runtime->cgroupPath().c_str(),
                runtime->reusedPinnedMaps() ? "reused" : "new");
  }
  char text[64];
  inet_ntop(AF_INET, &addr.sin_addr, text, sizeof text);
  std::printf("listening on %s:%u\n", text, ntohs(addr.sin_port));
  std::fflush(stdout);

  std::vector<uint8_t> in(kMaxDnsMessage), out(kMaxDnsMessage);
  struct Conn {
    int fd;
    std::vector<uint8_t> buf;
    Peer peer;
  };
  std::vector<Conn> conns;
  auto stop_at = std::chrono::steady_clock::time_point::max();
  auto last_activity = std::chrono::steady_clock::now();
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (g_stop && stop_at == std::chrono::steady_clock::time_point::max())
      stop_at = now + std::chrono::milliseconds(300);  // drain what was queued to this socket
    if (now >= stop_at && now - last_activity > std::chrono::milliseconds(100)) break;
    std::vector<pollfd> fds{{udp, POLLIN, 0}, {tcp, POLLIN, 0}};
    for (auto& c : conns) fds.push_back({c.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
    if ((fds[0].revents | fds[1].revents) & (POLLERR | POLLHUP | POLLNVAL)) {
      std::fprintf(stderr, "listener failed\n");
      return 1;
    }
    last_activity = std::chrono::steady_clock::now();
    if (fds[0].revents & POLLIN) {
      for (int burst = 0; burst < 64; ++burst) {
        sockaddr_storage from{};
        socklen_t flen = sizeof from;
        ssize_t n =
            ::recvfrom(udp, in.data(), in.size(), 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n <= 0) break;
        size_t len = responder.answer(in.data(), n, peerOf(from, Transport::kUdp), out.data());
        if (len) ::sendto(udp, out.data(), len, 0, reinterpret_cast<sockaddr*>(&from), flen);
      }
    }
    if (fds[1].revents & POLLIN) {
      for (;;) {
        sockaddr_storage from{};
        socklen_t flen = sizeof from;
        int c = ::accept4(tcp, reinterpret_cast<sockaddr*>(&from), &flen, SOCK_NONBLOCK);
        if (c < 0) break;
        conns.push_back({c, {}, peerOf(from, Transport::kTcp)});
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      Conn& c = conns[i - 2];
      ssize_t n = ::read(c.fd, in.data(), in.size());
      if (n <= 0) {
        ::close(c.fd);
        c.fd = -1;
        continue;
      }
      c.buf.insert(c.buf.end(), in.begin(), in.begin() + n);
      while (c.buf.size() >= 2) {
        size_t mlen = c.buf[0] << 8 | c.buf[1];
        if (c.buf.size() < 2 + mlen) break;
        size_t len = responder.answer(c.buf.data() + 2, mlen, c.peer, out.data() + 2);
        c.buf.erase(c.buf.begin(), c.buf.begin() + 2 + mlen);
        if (!len) continue;
        out[0] = uint8_t(len >> 8);
        out[1] = uint8_t(len);
        (void)::write(c.fd, out.data(), len + 2);
      }
    }
    std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
  }
  for (auto& c : conns) ::close(c.fd);
  std::printf("served %llu\n", static_cast<unsigned long long>(responder.served));
  std::istringstream metrics_text(registry.render());
  for (std::string line; std::getline(metrics_text, line);)
    if (line.rfind("elasticdns_bpf_", 0) == 0) std::printf("metric %s\n", line.c_str());
  if (runtime) {
    static constexpr const char* kReasons[] = EDNS_COUNTER_NAMES;
    for (unsigned r = 0; r < EDNS_CNT_MAX; ++r)
      std::printf("counter %s %llu\n", kReasons[r],
                  static_cast<unsigned long long>(runtime->counter(r)));
  }
  return 0;
}
