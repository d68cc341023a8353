#include "agent/dns/server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/endian/conversion.hpp>

#include "agent/dns/query_handler.hpp"
#include "agent/dns/wire.hpp"
#include "agent/util/unique_fd.hpp"

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using Clock = std::chrono::steady_clock;
using boost::endian::load_big_u16;
using boost::endian::store_big_u16;

constexpr size_t kBatch = 64;          // recvmmsg/sendmmsg batch (gdnsd uses 16)
constexpr size_t kMaxUdpQuery = 4096;  // larger datagrams are dropped (MSG_TRUNC)
constexpr int kBindRetries = 16;       // port 0: find one free for both UDP and TCP
// A UDP reader blocked in recvmmsg looks at the stop flag at least this often (SO_RCVTIMEO),
// should the signal that wakes it at once (wakeSignal) land just before it blocks; join() signals
// again until the reader is done, so this bounds only how long a reader may go on answering
// after stopReceiving(). Each idle wake-up costs: at 100 ms, the agent used 0.66 ms of CPU a
// second doing nothing (gdnsd: none), which the shared harness's drain test counts.
constexpr int kIdleCheckMs = 2000;
// join(): how long to wait for a reader to see the stop flag before signalling it again.
constexpr auto kRewakePeriod = std::chrono::milliseconds(5);

/// The signal that interrupts a UDP reader's blocking recvmmsg when the server stops: a real-time
/// signal with a handler that does nothing, installed without SA_RESTART, so the call returns
/// EINTR and the reader sees the stop flag. Installed once per process.
int wakeSignal() {
  static const int sig = [] {
    const int s = SIGRTMIN + 2;
    struct sigaction sa {};
    sa.sa_handler = +[](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ::sigaction(s, &sa, nullptr);
    return s;
  }();
  return sig;
}

const std::vector<double> kLatencyBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                            0.005,   0.01,   0.05,    0.1,    0.5,   1};

}  // namespace

/// A query handed to the forwarder: a copy of the client's message, what parsing it found, and
/// the size the reply may have.
struct ForwardedQuery {
  std::vector<uint8_t> packet;
  wire::Query query;
  size_t limit = 0;
};

struct DnsServer::Impl {
  struct UdpReader;
  struct TcpSession;

  ServerOptions options;
  ForwardFn forward;
  metrics::Registry& registry;
  QueryHandlerShared queries;  // the handlers' shared state
  ForwardedStats forwarded;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> in_flight{0};
  LogLimit tcp_rejected_log;
  std::vector<udp::endpoint> udp_bound;
  std::vector<tcp::endpoint> tcp_bound;
  metrics::Counter* tcp_rejected = nullptr;
  std::atomic<size_t> tcp_connections{0};
  // TCP (acceptors and connections) on one thread with its own io_context and handler.
  asio::io_context io{1};
  std::thread io_thread;
  QueryHandler tcp_handler;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::unique_ptr<UdpReader>> readers;  // one per UDP socket

  Impl(ServerOptions o, TopologyStore& s, ForwardFn f, metrics::Registry& r)
      : options(std::move(o)),
        forward(std::move(f)),
        registry(r),
        queries(s, options.forward_per_second, options.forward_burst, options.allow_networks),
        tcp_handler(queries, 0x85EBCA6Bu) {}

  std::optional<Error> adoptInherited(const udp::endpoint& want, const std::string& name);
  std::optional<Error> bindFresh(const udp::endpoint& want, const std::string& name);
  boost::system::error_code bindUdpGroup(const udp::endpoint& want,
                                         std::vector<std::unique_ptr<udp::socket>>& socks,
                                         udp::endpoint& bound);
  boost::system::error_code bindTcp(const tcp::endpoint& at, std::unique_ptr<tcp::acceptor>& acc);
  void addReader(UniqueFd socket);
  void accept(tcp::acceptor& a);

  /// Queries of counted type `t` answered with counted rcode `r`, from the zone or forwarded.
  uint64_t answered(size_t t, size_t r) const;
  /// `field` summed over every handler (UDP readers and TCP).
  uint64_t sum(std::atomic<uint64_t> QueryStats::*field) const;

  /// Send `f` to the forwarder; `relay` gets the reply to send (SERVFAIL, TC or the upstream's),
  /// on the forwarder's thread.
  void forwardQuery(std::shared_ptr<const ForwardedQuery> f,
                    std::function<void(std::span<const uint8_t> reply)> relay) {
    in_flight.fetch_add(1);
    forward(f->query, f->packet, [this, f, relay = std::move(relay)](std::span<const uint8_t> r) {
      std::array<uint8_t, wire::kMaxUdpPayload> buf;
      size_t len = relayReply(f->query, f->packet, f->limit, r, buf, forwarded);
      relay(len != 0 ? std::span<const uint8_t>(buf.data(), len) : r);
      in_flight.fetch_sub(1);
    });
  }
};

/// One UDP socket and the thread that reads it, as gdnsd does: it blocks in recvmmsg
/// (MSG_WAITFORONE: sleep until one datagram is there, then take what else is queued), answers
/// the batch with one sendmmsg, and goes back to recvmmsg. Two system calls per wake-up and no
/// event loop in between (an epoll_wait per wake-up, and Asio's scheduler around it, cost more
/// than the answers themselves at moderate load, when each wake-up finds one query).
struct DnsServer::Impl::UdpReader {
  Impl& server;
  size_t index;
  UniqueFd socket;  // not an Asio socket: no event loop may hear of its datagrams
  std::thread thread;
  std::atomic<bool> done{false};  // run() returned
  QueryHandler handler;
  // recvmmsg/sendmmsg buffers, allocated once.
  std::vector<std::array<uint8_t, kMaxUdpQuery>> in;
  std::vector<std::array<uint8_t, wire::kMaxUdpPayload>> out;
  std::array<Peer, kBatch> peers{};  // transport kUdp (the default)
  std::array<iovec, kBatch> in_iov{}, out_iov{};
  std::array<mmsghdr, kBatch> in_msgs{}, out_msgs{};

  UdpReader(Impl& s, size_t i, UniqueFd sock)
      : server(s),
        index(i),
        socket(std::move(sock)),
        handler(s.queries, static_cast<uint32_t>(i) * 0x9E3779B9u),
        in(kBatch),
        out(kBatch) {
    for (size_t k = 0; k < kBatch; ++k) {
      in_iov[k] = {in[k].data(), in[k].size()};
      in_msgs[k].msg_hdr.msg_name = &peers[k].addr;
      in_msgs[k].msg_hdr.msg_iov = &in_iov[k];
      in_msgs[k].msg_hdr.msg_iovlen = 1;
      in_msgs[k].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      out_msgs[k].msg_hdr.msg_iov = &out_iov[k];
      out_msgs[k].msg_hdr.msg_iovlen = 1;
    }
  }

  void run() {
    const int fd = socket.get();
    // Blocking reads: the socket's file must not be O_NONBLOCK (an inherited one may be), and
    // SO_RCVTIMEO bounds each wait. Both are the open file's, shared with whoever else holds
    // it (systemd, the agent handing over), who reads with MSG_DONTWAIT or its own timeout.
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK)) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    timeval timeout{0, kIdleCheckMs * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    dontFragment(fd);
    while (!server.stopping.load(std::memory_order_relaxed)) {
      int n = ::recvmmsg(fd, in_msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
      if (n > 0) {
        answer(fd, static_cast<size_t>(n));
        continue;
      }
      const int err = n < 0 ? errno : 0;
      if (err == EINTR) continue;  // the stop signal, or another one
      // Idle for kIdleCheckMs; or the file was made non-blocking after all (by another holder
      // of it), or an error: wait in poll, so that this never spins.
      flags = ::fcntl(fd, F_GETFL);
      if ((err != EAGAIN && err != EWOULDBLOCK) || flags < 0 || (flags & O_NONBLOCK)) {
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, kIdleCheckMs);
      }
    }
    done.store(true);
  }

  // IPv4 replies leave with DF set and the path MTU ignored (IP_PMTUDISC_PROBE), as BIND sets
  // IP_DONTFRAG since DNS Flag Day 2020 (RFC 9715: avoid IP fragmentation). UDP replies are at
  // most kMaxUdpPayload bytes, so nothing needs fragmenting; an ICMP "fragmentation needed" cannot
  // make the agent's sends fail; and a DF datagram needs no IP ID (id 0), which spares the
  // kernel its shared IP ID generator (__ip_select_ident, 2 % of the CPU per reply in a perf
  // profile; Linux's default, IP_PMTUDISC_WANT, sends DF too on loopback yet still draws an ID).
  static void dontFragment(int fd) {
    int domain = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_INET) return;
    int probe = IP_PMTUDISC_PROBE;
    ::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof probe);
  }

  void answer(int fd, size_t n) {
    QueryStats& stats = handler.stats();
    handler.refresh();
    wire::Query query;
    auto t0 = Clock::now();
    size_t m = 0;
    for (size_t i = 0; i < n; ++i) {
      if (in_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        stats.add(stats.dropped);
        continue;
      }
      std::span<const uint8_t> packet(in[i].data(), in_msgs[i].msg_len);
      QueryDecision d = handler.handle(packet, peers[i], t0, out[m], query);
      if (d.action == QueryDecision::Action::kForward)
        forward(fd, peers[i].addr, in_msgs[i].msg_hdr.msg_namelen,
                ForwardedQuery{{packet.begin(), packet.end()}, query, d.limit});
      if (d.action != QueryDecision::Action::kReply || d.length == 0) continue;
      out_iov[m] = {out[m].data(), d.length};
      out_msgs[m].msg_hdr.msg_name = &peers[i].addr;
      out_msgs[m].msg_hdr.msg_namelen = in_msgs[i].msg_hdr.msg_namelen;
      ++m;
    }
    // recvmmsg changed only the address length, the flags and msg_len of the entries it
    // filled (the headers were set up once, in the constructor); reset them.
    for (size_t i = 0; i < n; ++i) {
      in_msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      in_msgs[i].msg_hdr.msg_flags = 0;
    }
    size_t sent = 0;
    while (sent < m) {
      int k = ::sendmmsg(fd, out_msgs.data() + sent, static_cast<unsigned>(m - sent), MSG_DONTWAIT);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;  // socket buffer full: the client retries
      sent += static_cast<size_t>(k);
    }
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    stats.latency->observe(secs, m);
  }

  // The reply goes out on the socket the query came in on, from the forwarder's thread.
  void forward(int fd, const sockaddr_storage& to, socklen_t tolen, ForwardedQuery f) {
    server.forwardQuery(std::make_shared<const ForwardedQuery>(std::move(f)),
                        [fd, to, tolen](std::span<const uint8_t> reply) {
                          if (reply.empty()) return;
                          ::sendto(fd, reply.data(), reply.size(), MSG_DONTWAIT,
                                   reinterpret_cast<const sockaddr*>(&to), tolen);
                        });
  }
};

/// One TCP connection: read a length-prefixed query, answer, write, repeat (RFC 7766).
struct DnsServer::Impl::TcpSession : std::enable_shared_from_this<TcpSession> {
  Impl& server;
  tcp::socket socket;
  asio::steady_timer idle;
  Peer peer{{}, Transport::kTcp};
  std::array<uint8_t, 2> len_buf{};
  std::vector<uint8_t> query;
  std::vector<uint8_t> reply;

  TcpSession(Impl& s, tcp::socket sock)
      : server(s), socket(std::move(sock)), idle(s.io), reply(2 + wire::kMaxMessageSize) {
    auto ep = socket.remote_endpoint();
    std::memcpy(&peer.addr, ep.data(), std::min<size_t>(ep.size(), sizeof peer.addr));
    server.tcp_connections.fetch_add(1);
  }
  ~TcpSession() { server.tcp_connections.fetch_sub(1); }

  void start() { readLength(); }

  void armIdle() {
    idle.expires_after(server.options.tcp_idle_timeout);
    idle.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignore;
        self->socket.close(ignore);
      }
    });
  }

  void readLength() {
    // Stopping: a connection that got its answers closes; one accepted just before the stop
    // still gets its first query answered (the drain waits for it, bounded).
    if (server.stopping.load() && answered_) return;
    armIdle();
    asio::async_read(socket, asio::buffer(len_buf),
                     [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                       // Closed by the client, or garbage: release the idle timer's hold on the
                       // session too, or the connection stays open (and counted) until it fires.
                       size_t n = ec ? 0 : load_big_u16(self->len_buf.data());
                       if (n < wire::kHeaderSize) {
                         self->idle.cancel();
                         return;
                       }
                       self->query.resize(n);
                       self->readBody();
                     });
  }

  void readBody() {
    asio::async_read(socket, asio::buffer(query),
                     [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                       self->idle.cancel();
                       if (ec) return;
                       self->answer();
                     });
  }

  void answer() {
    server.tcp_handler.refresh();
    wire::Query parsed;
    std::span<uint8_t> out = std::span<uint8_t>(reply).subspan(2);
    QueryDecision d = server.tcp_handler.handle(query, peer, Clock::now(), out, parsed);
    if (d.action == QueryDecision::Action::kForward)
      forward(ForwardedQuery{query, parsed, d.limit});
    else if (d.action == QueryDecision::Action::kReply && d.length != 0)
      write(d.length);
    // else dropped: the connection closes
  }

  void write(size_t len) {
    answered_ = true;
    store_big_u16(reply.data(), static_cast<uint16_t>(len));
    asio::async_write(socket, asio::buffer(reply.data(), len + 2),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                        if (!ec) self->readLength();
                      });
  }

  // The reply is written on this session's executor.
  void forward(ForwardedQuery f) {
    forwarding_ = true;
    auto self = shared_from_this();
    server.forwardQuery(std::make_shared<const ForwardedQuery>(std::move(f)),
                        [self](std::span<const uint8_t> r) {
                          std::vector<uint8_t> copy(r.begin(), r.end());
                          asio::post(self->socket.get_executor(), [self, copy = std::move(copy)] {
                            self->forwarding_ = false;
                            std::memcpy(self->reply.data() + 2, copy.data(), copy.size());
                            self->write(copy.size());
                          });
                        });
  }

  bool forwarding_ = false;
  bool answered_ = false;
};

uint64_t DnsServer::Impl::answered(size_t t, size_t r) const {
  uint64_t n = forwarded.queries[t][r].load(std::memory_order_relaxed);
  n += tcp_handler.stats().queries[t][r].load(std::memory_order_relaxed);
  for (auto& u : readers) n += u->handler.stats().queries[t][r].load(std::memory_order_relaxed);
  return n;
}

uint64_t DnsServer::Impl::sum(std::atomic<uint64_t> QueryStats::*field) const {
  uint64_t n = (tcp_handler.stats().*field).load(std::memory_order_relaxed);
  for (auto& u : readers) n += (u->handler.stats().*field).load(std::memory_order_relaxed);
  return n;
}

// A reader per UDP socket, with its own latency histogram (label worker="<index>").
void DnsServer::Impl::addReader(UniqueFd socket) {
  auto& u =
      readers.emplace_back(std::make_unique<UdpReader>(*this, readers.size(), std::move(socket)));
  u->handler.stats().latency =
      &registry.histogram("elasticdns_agent_answer_seconds",
                          "Time from reading a query to sending its answer (zone answers)",
                          kLatencyBounds, "worker=\"" + std::to_string(u->index) + "\"");
}

void DnsServer::Impl::accept(tcp::acceptor& a) {
  a.async_accept([this, &a](const boost::system::error_code& ec, tcp::socket sock) {
    // A connection accepted as the server stops is still served: after a handover, closing it
    // would fail a query that the new agent would have answered.
    if (ec && stopping.load()) return;
    if (!ec) {
      if (tcp_connections.load() >= options.max_tcp_connections) {
        tcp_rejected->inc();
        if (tcp_rejected_log.allow())
          spdlog::warn("server: too many TCP connections ({}), closing a new one",
                       options.max_tcp_connections);
      } else {
        std::make_shared<TcpSession>(*this, std::move(sock))->start();
      }
    }
    if (!stopping.load()) accept(a);
  });
}

DnsServer::DnsServer(ServerOptions options, TopologyStore& store, ForwardFn forward,
                     metrics::Registry& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), store, std::move(forward), metrics)) {
  Impl& s = *impl_;
  if (s.options.threads == 0) s.options.threads = 1;
  auto& reg = s.registry;
  for (size_t t = 0; t < kCountedTypeSlots; ++t)
    for (size_t r = 0; r < kCountedRcodeSlots; ++r)
      reg.callback(
          "elasticdns_agent_queries_total", "DNS queries by type and rcode",
          [&s, t, r] { return double(s.answered(t, r)); }, "counter",
          std::string("type=\"") + kTypeNames[t] + "\",rcode=\"" + kRcodeNames[r] + "\"");
  auto sum = [&s](std::atomic<uint64_t> QueryStats::*field) {
    return [&s, field] { return double(s.sum(field)); };
  };
  reg.callback("elasticdns_agent_callers_total",
               "Zone answers by whether the caller was identified", sum(&QueryStats::callers_known),
               "counter", "caller=\"identified\"");
  reg.callback("elasticdns_agent_callers_total",
               "Zone answers by whether the caller was identified",
               sum(&QueryStats::callers_unknown), "counter", "caller=\"unknown\"");
  reg.callback("elasticdns_agent_forwarded_total", "Queries forwarded to the upstreams",
               sum(&QueryStats::forwarded), "counter");
  reg.callback("elasticdns_agent_dropped_total",
               "Datagrams dropped unanswered (garbage, responses)", sum(&QueryStats::dropped),
               "counter");
  reg.callback("elasticdns_agent_truncated_total", "UDP answers sent with TC",
               sum(&QueryStats::truncated), "counter");
  reg.callback("elasticdns_agent_forward_limited_total",
               "Queries for names outside the zone REFUSED: the caller was over forward_limit",
               sum(&QueryStats::forward_limited), "counter");
  s.forwarded.servfail = &reg.counter("elasticdns_agent_forward_servfail_total",
                                      "Forwarded queries answered SERVFAIL (no upstream answered)");
  s.tcp_rejected = &reg.counter("elasticdns_agent_tcp_rejected_total",
                                "TCP connections closed at once (max connections reached)");
  reg.callback("elasticdns_agent_forward_in_flight", "Forwarded queries awaiting a reply",
               [&s] { return double(s.in_flight.load()); });
}

DnsServer::~DnsServer() {
  if (!impl_->stopping.load()) stopReceiving();
  join();
}

// Inherited sockets (util/inherited_sockets.hpp): when systemd or the previous agent holds the
// UDP and TCP sockets of `want`, adopt them, so queries that arrive while the agent restarts
// wait in those sockets for the next process. systemd passes one UDP socket: each of the T
// readers reads it through a descriptor of its own (dup). A previous agent passes one per reader
// (the port's SO_REUSEPORT group): K sockets, each read by a reader of its own (max(K, T)
// readers, dup'ed when K < T), since the kernel keeps hashing datagrams to every one of them.
// nullopt: nothing inherited for `want`; an Error with an empty reason: adopted.
std::optional<Error> DnsServer::Impl::adoptInherited(const udp::endpoint& want,
                                                     const std::string& name) {
  if (!options.inherited) return std::nullopt;
  std::string address = want.address().to_string();
  auto owned = [](std::vector<int> fds) { return std::vector<UniqueFd>(fds.begin(), fds.end()); };
  std::vector<UniqueFd> ufds = owned(options.inherited->takeAll(false, address, want.port()));
  std::vector<UniqueFd> tfds = owned(options.inherited->takeAll(true, address, want.port()));
  if (ufds.empty() && tfds.empty()) return std::nullopt;
  std::string where = address + ":" + std::to_string(want.port());
  if (ufds.empty() || tfds.size() != 1) {
    if (tfds.size() > 1)
      return Error{name, "inherited " + std::to_string(tfds.size()) + " TCP listeners for " +
                             where + ", want one"};
    return Error{name, "inherited only a " + std::string(ufds.empty() ? "TCP" : "UDP") +
                           " socket for " + where + ": under systemd, list it in both " +
                           "ListenDatagram= and ListenStream= of elasticdns-agent.socket"};
  }
  for (size_t j = ufds.size(), n = ufds.size(); j < options.threads; ++j)
    ufds.emplace_back(::dup(ufds[j % n].get()));
  boost::system::error_code ec;
  for (const auto& fd : ufds)
    if (!fd) ec = boost::system::error_code(errno, boost::system::system_category());  // dup
  auto acc = std::make_unique<tcp::acceptor>(io);
  if (!ec) acc->assign(tcp::endpoint(want.address(), want.port()).protocol(), tfds[0].get(), ec);
  if (!ec) tfds[0].release();
  if (ec)
    return Error{name, "cannot adopt the inherited sockets for " + where + ": " + ec.message()};
  for (auto& fd : ufds) addReader(std::move(fd));
  udp_bound.push_back(want);
  tcp_bound.push_back(acc->local_endpoint());
  acceptors.push_back(std::move(acc));
  return Error{};
}

// One SO_REUSEPORT UDP socket per reader thread on `want` (port 0: the first one's port for
// all). Blocking: each is read by a thread of its own (UdpReader).
boost::system::error_code DnsServer::Impl::bindUdpGroup(
    const udp::endpoint& want, std::vector<std::unique_ptr<udp::socket>>& socks,
    udp::endpoint& bound) {
  boost::system::error_code ec;
  bound = want;
  for (size_t i = 0; i < options.threads; ++i) {
    auto sock = std::make_unique<udp::socket>(io);
    sock->open(bound.protocol(), ec);
    if (ec) break;
    sock->set_option(asio::socket_base::reuse_address(true), ec);
    int one = 1;
    ::setsockopt(sock->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bound.address().is_v6()) sock->set_option(asio::ip::v6_only(true), ec);
    sock->bind(bound, ec);
    if (ec) break;
    bound = sock->local_endpoint(ec);  // port 0: the others share the kernel's choice
    socks.push_back(std::move(sock));
  }
  return ec;
}

// The TCP listener on the UDP sockets' address and port. SO_REUSEPORT like the UDP sockets:
// when a handover fails, the new agent can still bind while the old one holds the port.
boost::system::error_code DnsServer::Impl::bindTcp(const tcp::endpoint& at,
                                                   std::unique_ptr<tcp::acceptor>& acc) {
  boost::system::error_code ec;
  acc = std::make_unique<tcp::acceptor>(io);
  acc->open(at.protocol(), ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) {
    int one = 1;
    ::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (!ec && at.address().is_v6()) acc->set_option(asio::ip::v6_only(true), ec);
  if (!ec) acc->bind(at, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  return ec;
}

// Binds `want` afresh: UDP and TCP on one port (port 0: retried until one is free for both).
std::optional<Error> DnsServer::Impl::bindFresh(const udp::endpoint& want,
                                                const std::string& name) {
  for (int attempt = 0; attempt < kBindRetries; ++attempt) {
    std::vector<std::unique_ptr<udp::socket>> socks;
    udp::endpoint ep;
    if (auto ec = bindUdpGroup(want, socks, ep)) {
      if (want.port() == 0 && ec == asio::error::address_in_use) continue;
      return Error{name, "cannot bind udp " + want.address().to_string() + ":" +
                             std::to_string(want.port()) + ": " + ec.message()};
    }
    std::unique_ptr<tcp::acceptor> acc;
    tcp::endpoint tep(ep.address(), ep.port());
    if (auto ec = bindTcp(tep, acc)) {
      if (want.port() == 0 && ec == asio::error::address_in_use) continue;
      return Error{name, "cannot bind tcp " + tep.address().to_string() + ":" +
                             std::to_string(tep.port()) + ": " + ec.message()};
    }
    // Out of Asio: its reactor would wake the TCP thread for every datagram (edge-triggered).
    for (auto& sock : socks) addReader(UniqueFd(sock->release()));
    udp_bound.push_back(ep);
    tcp_bound.push_back(acc->local_endpoint());
    acceptors.push_back(std::move(acc));
    return std::nullopt;
  }
  return Error{name, "no port free for both UDP and TCP"};
}

std::optional<Error> DnsServer::bind() {
  Impl& s = *impl_;
  for (size_t li = 0; li < s.options.listen.size(); ++li) {
    const udp::endpoint& want = s.options.listen[li];
    std::string name = "listen/" + std::to_string(li);
    if (auto e = s.adoptInherited(want, name)) {
      if (!e->reason.empty()) return *e;
      continue;
    }
    if (auto e = s.bindFresh(want, name)) return *e;
  }
  return std::nullopt;
}

std::vector<udp::endpoint> DnsServer::udpEndpoints() const {
  return impl_->udp_bound;
}
std::vector<tcp::endpoint> DnsServer::tcpEndpoints() const {
  return impl_->tcp_bound;
}

void DnsServer::start(CallerIdentity& identity) {
  Impl& s = *impl_;
  s.queries.identity = &identity;  // the threads start below: they see it
  s.queries.forwarding.store(static_cast<bool>(s.forward));
  wakeSignal();  // installed before a reader can be told to stop
  for (auto& u : s.readers) u->thread = std::thread([up = u.get()] { up->run(); });
  for (auto& a : s.acceptors) s.accept(*a);
  s.io_thread = std::thread([&s] {
    auto guard = asio::make_work_guard(s.io);
    s.io.run();
  });
}

void DnsServer::stopReceiving() {
  Impl& s = *impl_;
  s.stopping.store(true);
  s.queries.forwarding.store(false);
  // Readers blocked in recvmmsg return at once (EINTR), see the flag and end; one that the
  // signal missed (it was between the flag and the call) ends within kIdleCheckMs, or when
  // join() signals it again.
  for (auto& u : s.readers)
    if (u->thread.joinable()) ::pthread_kill(u->thread.native_handle(), wakeSignal());
  asio::post(s.io, [&s] {
    boost::system::error_code ec;
    for (auto& a : s.acceptors) a->close(ec);
  });
}

size_t DnsServer::inFlight() const {
  return impl_->in_flight.load();
}

size_t DnsServer::tcpConnections() const {
  return impl_->tcp_connections.load();
}

uint64_t DnsServer::answeredQueries() const {
  uint64_t n = 0;
  for (size_t t = 0; t < kCountedTypeSlots; ++t)
    for (size_t r = 0; r < kCountedRcodeSlots; ++r) n += impl_->answered(t, r);
  return n;
}

std::vector<int> DnsServer::listeningSockets() const {
  std::vector<int> fds;
  for (auto& u : impl_->readers) fds.push_back(u->socket.get());
  for (auto& a : impl_->acceptors) fds.push_back(a->native_handle());
  return fds;
}

void DnsServer::join() {
  Impl& s = *impl_;
  if (!s.stopping.load()) stopReceiving();
  for (auto& u : s.readers) {
    if (!u->thread.joinable()) continue;
    // A reader the first signal missed (between its look at the flag and recvmmsg) gets another.
    while (!u->done.load()) {
      std::this_thread::sleep_for(kRewakePeriod);
      if (!u->done.load()) ::pthread_kill(u->thread.native_handle(), wakeSignal());
    }
    u->thread.join();
  }
  s.io.stop();
  if (s.io_thread.joinable()) s.io_thread.join();
}

void DnsServer::setStale(bool stale) {
  impl_->queries.stale.store(stale, std::memory_order_relaxed);
}

void DnsServer::setAllowNetworks(const std::vector<Cidr>& networks) {
  impl_->queries.allow.publish(AllowList::from(networks));
}

}  // namespace elasticdns::agent
