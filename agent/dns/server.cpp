#include "agent/dns/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/endian/conversion.hpp>

#include "agent/dns/rate_limiter.hpp"
#include "agent/dns/wire.hpp"

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using Clock = std::chrono::steady_clock;
using boost::endian::load_big_u16;
using boost::endian::store_big_u16;

constexpr size_t kBatch = 64;             // recvmmsg/sendmmsg batch (gdnsd uses 16..256)
constexpr size_t kMaxBatchesPerWake = 8;  // then yield to the io_context (TCP, timers)
constexpr size_t kMaxUdpQuery = 4096;     // larger datagrams are dropped (MSG_TRUNC)
constexpr int kBindRetries = 16;          // port 0: find one free for both UDP and TCP

// Metrics dimensions: the query types and rcodes counted separately.
constexpr std::array<uint16_t, 6> kCountedTypes = {wire::kTypeA,   wire::kTypeAaaa, wire::kTypeSrv,
                                                   wire::kTypeSoa, wire::kTypeTxt,  wire::kTypeAny};
constexpr std::array<const char*, 7> kTypeNames = {"A",   "AAAA", "SRV",  "SOA",
                                                   "TXT", "ANY",  "other"};
constexpr std::array<const char*, 7> kRcodeNames = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                                    "NOTIMP",  "REFUSED", "other"};
constexpr size_t kTypes = kTypeNames.size();
constexpr size_t kRcodes = kRcodeNames.size();
const std::vector<double> kLatencyBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                            0.005,   0.01,   0.05,    0.1,    0.5,   1};

size_t typeIndex(uint16_t t) {
  for (size_t i = 0; i < kCountedTypes.size(); ++i)
    if (kCountedTypes[i] == t) return i;
  return kTypes - 1;
}
size_t rcodeIndex(uint16_t r) {
  return r < kRcodes - 1 ? r : kRcodes - 1;
}

/// Written by one worker, read by the scraper: relaxed atomics on the worker's own lines.
struct alignas(64) WorkerStats {
  std::atomic<uint64_t> queries[kTypes][kRcodes] = {};
  std::atomic<uint64_t> callers_known{0}, callers_unknown{0}, forwarded{0}, dropped{0},
      truncated{0}, forward_limited{0};
  metrics::Histogram* latency = nullptr;
  void add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

/// Logs triggered by network input: at most `per_second` a second, then a count of the rest.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(int per_second) : per_second_(per_second) {}
  template <typename... Args>
  void warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    int64_t sec =
        std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
    int64_t cur = second_.load(std::memory_order_relaxed);
    if (cur != sec && second_.compare_exchange_strong(cur, sec)) {
      uint64_t dropped = suppressed_.exchange(0);
      count_.store(0);
      if (dropped) spdlog::warn("server: {} similar messages suppressed", dropped);
    }
    if (count_.fetch_add(1, std::memory_order_relaxed) < per_second_) {
      spdlog::warn(fmt, std::forward<Args>(args)...);
    } else {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
    }
  }

 private:
  int per_second_;
  std::atomic<int64_t> second_{0};
  std::atomic<int> count_{0};
  std::atomic<uint64_t> suppressed_{0};
};

struct AllowList {
  std::vector<std::pair<Zone::AddrKey, Zone::AddrKey>> nets;  // (network, mask), v4 as mapped
  bool allows(const Zone::AddrKey& k) const {
    for (const auto& [n, m] : nets)
      if ((k.hi & m.hi) == n.hi && (k.lo & m.lo) == n.lo) return true;
    return false;
  }
  static std::shared_ptr<const AllowList> from(const std::vector<Cidr>& cidrs) {
    auto l = std::make_shared<AllowList>();
    for (const auto& c : cidrs) {
      std::array<uint8_t, 16> net{}, mask{};
      auto bytes =
          c.network.is_v4()
              ? asio::ip::make_address_v6(asio::ip::v4_mapped, c.network.to_v4()).to_bytes()
              : c.network.to_v6().to_bytes();
      unsigned bits = c.network.is_v4() ? c.prefix + 96 : c.prefix;
      for (unsigned i = 0; i < 16; ++i) {
        unsigned take = bits >= 8 ? 8 : bits;
        mask[i] = take ? static_cast<uint8_t>(0xFF << (8 - take)) : 0;
        net[i] = bytes[i] & mask[i];
        bits -= take;
      }
      Zone::AddrKey n, m;
      std::memcpy(&n.hi, net.data(), 8);
      std::memcpy(&n.lo, net.data() + 8, 8);
      std::memcpy(&m.hi, mask.data(), 8);
      std::memcpy(&m.lo, mask.data() + 8, 8);
      l->nets.emplace_back(n, m);
    }
    return l;
  }
};

}  // namespace

/// A query handed to the forwarder: a copy of the client's message, what parsing it found, and
/// the size the reply may have.
struct ForwardedQuery {
  std::vector<uint8_t> packet;
  wire::Query query;
  size_t limit = 0;
};

/// Where a query for a name outside the zone goes: the UDP worker or the TCP session it came on.
class ForwardSink {
 public:
  virtual ~ForwardSink() = default;
  virtual void forwardQuery(std::shared_ptr<const ForwardedQuery> query) = 0;
};

struct DnsServer::Impl {
  struct Worker;
  struct TcpSession;

  ServerOptions options;
  TopologyStore& store;
  CallerIdentity* identity = nullptr;  // set by start(), before any worker runs
  ForwardFn forward;
  metrics::Registry& registry;
  StickyTable sticky;
  RateLimiter forward_limit;
  std::atomic<bool> stale{false};
  std::atomic<bool> stopping{false};
  std::atomic<size_t> in_flight{0};
  RateLimitedLog netlog{10};
  std::mutex allow_mu;  // guards `allow`; workers copy it only when allow_version moved
  std::shared_ptr<const AllowList> allow;
  std::atomic<uint64_t> allow_version{1};
  std::vector<udp::endpoint> udp_bound;
  std::vector<tcp::endpoint> tcp_bound;
  metrics::Counter* upstream_failures = nullptr;
  metrics::Counter* tcp_rejected = nullptr;
  std::atomic<size_t> tcp_connections{0};
  // Forwarded queries by type and the rcode sent back (written by the forwarder's thread).
  std::atomic<uint64_t> forwarded_queries[kTypes][kRcodes] = {};
  std::vector<std::unique_ptr<Worker>> workers;

  Impl(ServerOptions o, TopologyStore& s, ForwardFn f, metrics::Registry& r)
      : options(std::move(o)),
        store(s),
        forward(std::move(f)),
        registry(r),
        forward_limit(options.forward_per_second, options.forward_burst),
        allow(AllowList::from(options.allow_networks)) {}

  struct QueryContext {
    const Zone* zone;
    const AllowList* allow;
    WorkerStats* stats;
    uint32_t* rotation;
    Transport transport;
    ForwardSink* sink;
    Clock::time_point now;  // read once per batch: the sticky window's clock
  };

  /// Answer one message into `out`. Returns the reply length; 0 = no reply now (dropped, or
  /// handed to ctx.sink, which replies later).
  size_t handle(const QueryContext& ctx, std::span<const uint8_t> packet,
                const sockaddr_storage& from, std::span<uint8_t> out) noexcept {
    wire::Query q;
    WorkerStats& st = *ctx.stats;
    wire::ParseStatus ps = wire::parseQuery(packet, q);
    if (ps == wire::ParseStatus::kDrop) {
      st.add(st.dropped);
      return 0;
    }
    auto count = [&](uint16_t rcode) { st.add(st.queries[typeIndex(q.qtype)][rcodeIndex(rcode)]); };
    const size_t limit = ctx.transport == Transport::kUdp ? wire::udpLimit(q) : out.size();
    std::span<uint8_t> o = out.first(std::min(out.size(), std::max(limit, wire::kMinUdpPayload)));
    Zone::AddrKey key = Zone::addrKeyOf(from);
    if (!ctx.allow->allows(key)) {
      netlog.warn("server: REFUSED a query from {} (outside allow_networks)", describe(from));
      count(wire::kRefused);
      return wire::writeErrorResponse(q, packet, wire::kRefused, o);
    }
    if (ps != wire::ParseStatus::kOk) {
      uint16_t rcode = ps == wire::ParseStatus::kNotImp ? wire::kNotImp : wire::kFormErr;
      if (rcode == wire::kFormErr) netlog.warn("server: FORMERR to {}", describe(from));
      count(rcode);
      return wire::writeErrorResponse(q, packet, rcode, o);
    }
    if (q.has_edns && q.edns_version != 0) {
      count(wire::kRcodeBadVers);
      return wire::writeErrorResponse(q, packet, wire::kRcodeBadVers, o);
    }
    if (ctx.zone == nullptr) {
      count(wire::kServFail);
      return wire::writeErrorResponse(q, packet, wire::kServFail, o);
    }
    Peer peer;
    peer.addr = from;
    peer.transport = ctx.transport;
    AnswerInput in;
    in.query = &q;
    in.packet = packet;
    in.container_id = identity->containerIdOf(peer);
    in.source = &from;
    in.now = ctx.now;
    in.stale = stale.load(std::memory_order_relaxed);
    in.limit = limit;
    in.rotation = (*ctx.rotation)++;
    in.sticky = &sticky;
    AnswerOutcome r = ctx.zone->answer(in, o);
    if (r.in_zone) {
      count(r.rcode);
      if (r.caller_known) st.add(st.callers_known);
      if (r.caller_checked && !r.caller_known) st.add(st.callers_unknown);
      if (r.truncated) st.add(st.truncated);
      return r.length;
    }
    if (!forward || stopping.load(std::memory_order_relaxed)) {
      count(wire::kRefused);
      return wire::writeErrorResponse(q, packet, wire::kRefused, o);
    }
    if (!forward_limit.allow(RateLimiter::callerKey(in.container_id, from), ctx.now)) {
      netlog.warn("server: REFUSED a query from {}{}{} (over forward_limit)", describe(from),
                  in.container_id.empty() ? "" : ", container ", in.container_id);
      st.add(st.forward_limited);
      count(wire::kRefused);
      return wire::writeErrorResponse(q, packet, wire::kRefused, o);
    }
    st.add(st.forwarded);  // counted by type and rcode when the reply comes (relayReply)
    ctx.sink->forwardQuery(std::make_shared<const ForwardedQuery>(
        ForwardedQuery{std::vector<uint8_t>(packet.begin(), packet.end()), q, limit}));
    return 0;
  }

  /// The reply to send for a forwarded query: SERVFAIL when the forwarder failed, TC when the
  /// upstream's reply exceeds `limit`. Returns 0 when `reply` can be sent as it is.
  size_t relayReply(const ForwardedQuery& f, std::span<const uint8_t> reply,
                    std::span<uint8_t> buf) noexcept {
    const wire::Query& q = f.query;
    const std::span<const uint8_t> query = f.packet;
    auto& counter = forwarded_queries[typeIndex(q.qtype)][rcodeIndex(
        reply.size() >= wire::kHeaderSize ? load_big_u16(&reply[2]) & 0x0F : wire::kServFail)];
    counter.fetch_add(1, std::memory_order_relaxed);
    if (reply.empty()) {
      upstream_failures->inc();
      return wire::writeErrorResponse(q, query, wire::kServFail, buf);
    }
    if (reply.size() <= f.limit || reply.size() < wire::kHeaderSize) return 0;
    uint16_t flags = static_cast<uint16_t>(load_big_u16(&reply[2]) | wire::kFlagTc);
    size_t n = wire::writeHeaderAndQuestion(q, query, flags, 0, 0, q.has_edns ? 1 : 0, buf);
    if (n != 0 && q.has_edns && n + wire::optSize(false) <= buf.size()) {
      wire::writeOpt(buf.data() + n, wire::kMaxUdpPayload, 0, false, 0);
      n += wire::optSize(false);
    }
    return n;
  }

  static std::string describe(const sockaddr_storage& s) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (s.ss_family == AF_INET) {
      sockaddr_in sin;
      std::memcpy(&sin, &s, sizeof sin);
      inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof buf);
    } else if (s.ss_family == AF_INET6) {
      sockaddr_in6 sin6;
      std::memcpy(&sin6, &s, sizeof sin6);
      inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof buf);
    }
    return buf;
  }

  const AllowList* currentAllow(std::shared_ptr<const AllowList>& mine, uint64_t& seen) {
    uint64_t v = allow_version.load(std::memory_order_acquire);
    if (v != seen) {
      std::lock_guard lock(allow_mu);
      mine = allow;
      seen = v;
    }
    return mine.get();
  }
};

struct DnsServer::Impl::Worker : ForwardSink {
  Impl& server;
  size_t index;
  asio::io_context io{1};
  std::vector<std::unique_ptr<udp::socket>> sockets;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::thread thread;
  WorkerStats stats;
  TopologyStore::Reader reader;
  std::shared_ptr<const AllowList> allow;
  uint64_t allow_seen = 0;
  uint32_t rotation;
  // recvmmsg/sendmmsg buffers, allocated once.
  std::vector<std::array<uint8_t, kMaxUdpQuery>> in;
  std::vector<std::array<uint8_t, wire::kMaxUdpPayload>> out;
  std::array<sockaddr_storage, kBatch> peers{};
  std::array<iovec, kBatch> in_iov{}, out_iov{};
  std::array<mmsghdr, kBatch> in_msgs{}, out_msgs{};
  // The datagram being handled, for forwardQuery().
  int cur_fd = -1;
  const sockaddr_storage* cur_from = nullptr;
  socklen_t cur_fromlen = 0;

  Worker(Impl& s, size_t i)
      : server(s),
        index(i),
        reader(s.store),
        rotation(static_cast<uint32_t>(i) * 0x9E3779B9u),
        in(kBatch),
        out(kBatch) {}

  void arm(udp::socket& s) {
    s.async_wait(udp::socket::wait_read, [this, &s](const boost::system::error_code& ec) {
      if (ec || server.stopping.load(std::memory_order_relaxed)) return;
      drain(s);
      arm(s);
    });
  }

  void drain(udp::socket& s) {
    const int fd = s.native_handle();
    QueryContext ctx{reader.refresh(), server.currentAllow(allow, allow_seen),
                     &stats,           &rotation,
                     Transport::kUdp,  this,
                     Clock::now()};
    for (size_t round = 0; round < kMaxBatchesPerWake; ++round) {
      for (size_t i = 0; i < kBatch; ++i) {
        in_iov[i] = {in[i].data(), in[i].size()};
        in_msgs[i].msg_hdr = {};
        in_msgs[i].msg_hdr.msg_name = &peers[i];
        in_msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
        in_msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = ::recvmmsg(fd, in_msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      auto t0 = Clock::now();
      ctx.now = t0;
      size_t m = 0;
      for (int i = 0; i < n; ++i) {
        if (in_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
          stats.add(stats.dropped);
          continue;
        }
        cur_fd = fd;
        cur_from = &peers[i];
        cur_fromlen = in_msgs[i].msg_hdr.msg_namelen;
        size_t len = server.handle(ctx, std::span<const uint8_t>(in[i].data(), in_msgs[i].msg_len),
                                   peers[i], out[m]);
        if (len == 0) continue;
        out_iov[m] = {out[m].data(), len};
        out_msgs[m].msg_hdr = {};
        out_msgs[m].msg_hdr.msg_name = &peers[i];
        out_msgs[m].msg_hdr.msg_namelen = cur_fromlen;
        out_msgs[m].msg_hdr.msg_iov = &out_iov[m];
        out_msgs[m].msg_hdr.msg_iovlen = 1;
        ++m;
      }
      size_t sent = 0;
      while (sent < m) {
        int k =
            ::sendmmsg(fd, out_msgs.data() + sent, static_cast<unsigned>(m - sent), MSG_DONTWAIT);
        if (k <= 0) break;  // socket buffer full: the client retries
        sent += static_cast<size_t>(k);
      }
      double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      for (size_t i = 0; i < m; ++i) stats.latency->observe(secs);
      if (static_cast<size_t>(n) < kBatch) return;
    }
  }

  void forwardQuery(std::shared_ptr<const ForwardedQuery> q) override {
    Impl& s = server;
    s.in_flight.fetch_add(1);
    int fd = cur_fd;
    sockaddr_storage to = *cur_from;
    socklen_t tolen = cur_fromlen;
    s.forward(q->query, q->packet, [&s, fd, to, tolen, q](std::span<const uint8_t> reply) {
      std::array<uint8_t, wire::kMaxUdpPayload> buf;
      std::span<const uint8_t> send = reply;
      size_t len = s.relayReply(*q, reply, buf);
      if (len != 0) send = std::span<const uint8_t>(buf.data(), len);
      if (!send.empty())
        ::sendto(fd, send.data(), send.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to),
                 tolen);
      s.in_flight.fetch_sub(1);
    });
  }

  void accept(tcp::acceptor& a);
};

/// One TCP connection: read a length-prefixed query, answer, write, repeat (RFC 7766).
struct DnsServer::Impl::TcpSession : ForwardSink, std::enable_shared_from_this<TcpSession> {
  Impl& server;
  Worker& worker;
  tcp::socket socket;
  asio::steady_timer idle;
  sockaddr_storage peer{};
  std::array<uint8_t, 2> len_buf{};
  std::vector<uint8_t> query;
  std::vector<uint8_t> reply;

  TcpSession(Impl& s, Worker& w, tcp::socket sock)
      : server(s),
        worker(w),
        socket(std::move(sock)),
        idle(w.io),
        reply(2 + wire::kMaxMessageSize) {
    auto ep = socket.remote_endpoint();
    std::memcpy(&peer, ep.data(), std::min<size_t>(ep.size(), sizeof peer));
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
    QueryContext ctx{worker.reader.refresh(),
                     server.currentAllow(worker.allow, worker.allow_seen),
                     &worker.stats,
                     &worker.rotation,
                     Transport::kTcp,
                     this,
                     Clock::now()};
    size_t len = server.handle(ctx, query, peer, std::span<uint8_t>(reply).subspan(2));
    if (len != 0) write(len);  // else: forwarded (its reply comes later) or dropped (close)
  }

  void write(size_t len) {
    answered_ = true;
    store_big_u16(reply.data(), static_cast<uint16_t>(len));
    asio::async_write(socket, asio::buffer(reply.data(), len + 2),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                        if (!ec) self->readLength();
                      });
  }

  void forwardQuery(std::shared_ptr<const ForwardedQuery> q) override {
    forwarding_ = true;
    server.in_flight.fetch_add(1);
    auto self = shared_from_this();
    server.forward(q->query, q->packet, [self, q](std::span<const uint8_t> r) {
      std::vector<uint8_t> copy(r.begin(), r.end());
      asio::post(self->socket.get_executor(), [self, q, copy = std::move(copy)] {
        self->forwarding_ = false;
        size_t len = self->server.relayReply(*q, copy, std::span<uint8_t>(self->reply).subspan(2));
        if (len == 0) {
          len = copy.size();
          std::memcpy(self->reply.data() + 2, copy.data(), len);
        }
        self->server.in_flight.fetch_sub(1);
        self->write(len);
      });
    });
  }

  bool forwarding_ = false;
  bool answered_ = false;
};

void DnsServer::Impl::Worker::accept(tcp::acceptor& a) {
  a.async_accept([this, &a](const boost::system::error_code& ec, tcp::socket sock) {
    // A connection accepted as the server stops is still served: after a handover, closing it
    // would fail a query that the new agent would have answered.
    if (ec && server.stopping.load()) return;
    if (!ec) {
      if (server.tcp_connections.load() >= server.options.max_tcp_connections) {
        server.tcp_rejected->inc();
        server.netlog.warn("server: too many TCP connections ({}), closing a new one",
                           server.options.max_tcp_connections);
      } else {
        std::make_shared<TcpSession>(server, *this, std::move(sock))->start();
      }
    }
    if (!server.stopping.load()) accept(a);
  });
}

DnsServer::DnsServer(ServerOptions options, TopologyStore& store, ForwardFn forward,
                     metrics::Registry& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), store, std::move(forward), metrics)) {
  Impl& s = *impl_;
  if (s.options.threads == 0) s.options.threads = 1;
  for (size_t i = 0; i < s.options.threads; ++i)
    s.workers.push_back(std::make_unique<Impl::Worker>(s, i));
  auto& reg = s.registry;
  for (auto& w : s.workers)
    w->stats.latency =
        &reg.histogram("elasticdns_agent_answer_seconds",
                       "Time from reading a query to sending its answer (zone answers)",
                       kLatencyBounds, "worker=\"" + std::to_string(w->index) + "\"");
  for (size_t t = 0; t < kTypes; ++t)
    for (size_t r = 0; r < kRcodes; ++r)
      reg.callback(
          "elasticdns_agent_queries_total", "DNS queries by type and rcode",
          [&s, t, r] {
            uint64_t n = 0;
            for (auto& w : s.workers) n += w->stats.queries[t][r].load(std::memory_order_relaxed);
            return double(n + s.forwarded_queries[t][r].load(std::memory_order_relaxed));
          },
          "counter",
          std::string("type=\"") + kTypeNames[t] + "\",rcode=\"" + kRcodeNames[r] + "\"");
  auto sum = [&s](std::atomic<uint64_t> WorkerStats::*field) {
    return [&s, field] {
      uint64_t n = 0;
      for (auto& w : s.workers) n += (w->stats.*field).load(std::memory_order_relaxed);
      return double(n);
    };
  };
  reg.callback("elasticdns_agent_callers_total",
               "Zone answers by whether the caller was identified",
               sum(&WorkerStats::callers_known), "counter", "caller=\"identified\"");
  reg.callback("elasticdns_agent_callers_total",
               "Zone answers by whether the caller was identified",
               sum(&WorkerStats::callers_unknown), "counter", "caller=\"unknown\"");
  reg.callback("elasticdns_agent_forwarded_total", "Queries forwarded to the upstreams",
               sum(&WorkerStats::forwarded), "counter");
  reg.callback("elasticdns_agent_dropped_total",
               "Datagrams dropped unanswered (garbage, responses)", sum(&WorkerStats::dropped),
               "counter");
  reg.callback("elasticdns_agent_truncated_total", "UDP answers sent with TC",
               sum(&WorkerStats::truncated), "counter");
  reg.callback("elasticdns_agent_forward_limited_total",
               "Queries for names outside the zone REFUSED: the caller was over forward_limit",
               sum(&WorkerStats::forward_limited), "counter");
  s.upstream_failures = &reg.counter("elasticdns_agent_forward_servfail_total",
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

std::optional<Error> DnsServer::bind() {
  Impl& s = *impl_;
  // Inherited sockets (systemd_sockets.hpp): when systemd or the previous agent holds the UDP
  // and TCP sockets of `want`, adopt them, so queries that arrive while the agent restarts wait
  // in those sockets for the next process. systemd passes one UDP socket: every worker reads it
  // through a descriptor of its own (dup). A previous agent passes one per worker (the port's
  // SO_REUSEPORT group): K sockets over T workers, each socket read by at least one worker
  // (dup'ed when K < T), since the kernel keeps hashing datagrams to every one of them.
  // nullopt: nothing inherited for `want`; an Error with an empty reason: adopted.
  auto adoptInherited = [&s](const udp::endpoint& want,
                             const std::string& name) -> std::optional<Error> {
    if (!s.options.inherited) return std::nullopt;
    std::string address = want.address().to_string();
    std::vector<int> ufds = s.options.inherited->takeAll(false, address, want.port());
    std::vector<int> tfds = s.options.inherited->takeAll(true, address, want.port());
    if (ufds.empty() && tfds.empty()) return std::nullopt;
    std::string where = address + ":" + std::to_string(want.port());
    if (ufds.empty() || tfds.size() != 1) {
      for (int fd : ufds) ::close(fd);
      for (int fd : tfds) ::close(fd);
      if (tfds.size() > 1)
        return Error{name, "inherited " + std::to_string(tfds.size()) + " TCP listeners for " +
                               where + ", want one"};
      return Error{name, "inherited only a " + std::string(ufds.empty() ? "TCP" : "UDP") +
                             " socket for " + where + ": under systemd, list it in both " +
                             "ListenDatagram= and ListenStream= of elasticdns-agent.socket"};
    }
    boost::system::error_code ec;
    const size_t rounds = std::max(ufds.size(), s.workers.size());
    for (size_t j = 0; j < rounds; ++j) {
      int fd = j < ufds.size() ? ufds[j] : ::dup(ufds[j % ufds.size()]);
      auto sock = std::make_unique<udp::socket>(s.workers[j % s.workers.size()]->io);
      if (!ec)
        sock->assign(want.protocol(), fd, ec);
      else
        ::close(fd);
      if (!ec) sock->non_blocking(true, ec);
      if (!ec) s.workers[j % s.workers.size()]->sockets.push_back(std::move(sock));
    }
    auto acc = std::make_unique<tcp::acceptor>(s.workers[0]->io);
    if (!ec)
      acc->assign(tcp::endpoint(want.address(), want.port()).protocol(), tfds[0], ec);
    else
      ::close(tfds[0]);
    if (ec)
      return Error{name, "cannot adopt the inherited sockets for " + where + ": " + ec.message()};
    s.udp_bound.push_back(want);
    s.tcp_bound.push_back(acc->local_endpoint());
    s.workers[0]->acceptors.push_back(std::move(acc));
    return Error{};
  };
  for (size_t li = 0; li < s.options.listen.size(); ++li) {
    const udp::endpoint& want = s.options.listen[li];
    std::string name = "listen/" + std::to_string(li);
    boost::system::error_code ec;
    if (auto e = adoptInherited(want, name)) {
      if (!e->reason.empty()) return *e;
      continue;
    }
    bool done = false;
    for (int attempt = 0; attempt < kBindRetries && !done; ++attempt) {
      std::vector<std::unique_ptr<udp::socket>> socks;
      udp::endpoint ep = want;
      ec.clear();
      for (auto& w : s.workers) {
        auto sock = std::make_unique<udp::socket>(w->io);
        sock->open(ep.protocol(), ec);
        if (ec) break;
        sock->set_option(asio::socket_base::reuse_address(true), ec);
        int one = 1;
        ::setsockopt(sock->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (ep.address().is_v6()) sock->set_option(asio::ip::v6_only(true), ec);
        sock->bind(ep, ec);
        if (ec) break;
        sock->non_blocking(true, ec);
        ep = sock->local_endpoint(ec);  // port 0: the others share the kernel's choice
        socks.push_back(std::move(sock));
      }
      if (ec) {
        if (want.port() == 0 && ec == asio::error::address_in_use) continue;
        return Error{name, "cannot bind udp " + want.address().to_string() + ":" +
                               std::to_string(want.port()) + ": " + ec.message()};
      }
      auto acc = std::make_unique<tcp::acceptor>(s.workers[0]->io);
      tcp::endpoint tep(ep.address(), ep.port());
      acc->open(tep.protocol(), ec);
      if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
      // SO_REUSEPORT like the UDP sockets: when a handover fails, the new agent can still bind
      // while the old one holds the port.
      if (!ec) {
        int one = 1;
        ::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      }
      if (!ec && tep.address().is_v6()) acc->set_option(asio::ip::v6_only(true), ec);
      if (!ec) acc->bind(tep, ec);
      if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        if (want.port() == 0 && ec == asio::error::address_in_use) continue;
        return Error{name, "cannot bind tcp " + tep.address().to_string() + ":" +
                               std::to_string(tep.port()) + ": " + ec.message()};
      }
      for (size_t i = 0; i < socks.size(); ++i)
        s.workers[i]->sockets.push_back(std::move(socks[i]));
      s.udp_bound.push_back(ep);
      s.tcp_bound.push_back(acc->local_endpoint());
      s.workers[0]->acceptors.push_back(std::move(acc));
      done = true;
    }
    if (!done) return Error{name, "no port free for both UDP and TCP"};
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
  impl_->identity = &identity;  // the workers' threads start below: they see it
  for (auto& w : impl_->workers) {
    for (auto& sock : w->sockets) w->arm(*sock);
    for (auto& a : w->acceptors) w->accept(*a);
    w->thread = std::thread([wp = w.get()] {
      auto guard = asio::make_work_guard(wp->io);
      wp->io.run();
    });
  }
}

void DnsServer::stopReceiving() {
  Impl& s = *impl_;
  s.stopping.store(true);
  for (auto& w : s.workers) {
    asio::post(w->io, [wp = w.get()] {
      boost::system::error_code ec;
      for (auto& a : wp->acceptors) a->close(ec);
      for (auto& sock : wp->sockets) sock->cancel(ec);
    });
  }
}

size_t DnsServer::inFlight() const {
  return impl_->in_flight.load();
}

size_t DnsServer::tcpConnections() const {
  return impl_->tcp_connections.load();
}

uint64_t DnsServer::answeredQueries() const {
  uint64_t n = 0;
  for (size_t t = 0; t < kTypes; ++t)
    for (size_t r = 0; r < kRcodes; ++r) {
      for (auto& w : impl_->workers) n += w->stats.queries[t][r].load(std::memory_order_relaxed);
      n += impl_->forwarded_queries[t][r].load(std::memory_order_relaxed);
    }
  return n;
}

std::vector<int> DnsServer::listeningSockets() const {
  std::vector<int> fds;
  for (auto& w : impl_->workers) {
    for (auto& sock : w->sockets) fds.push_back(sock->native_handle());
    for (auto& a : w->acceptors) fds.push_back(a->native_handle());
  }
  return fds;
}

void DnsServer::join() {
  for (auto& w : impl_->workers) {
    w->io.stop();
    if (w->thread.joinable()) w->thread.join();
  }
}

void DnsServer::setStale(bool stale) {
  impl_->stale.store(stale, std::memory_order_relaxed);
}

void DnsServer::setAllowNetworks(const std::vector<Cidr>& networks) {
  auto l = AllowList::from(networks);
  std::lock_guard lock(impl_->allow_mu);
  impl_->allow = std::move(l);
  impl_->allow_version.fetch_add(1, std::memory_order_release);
}

}  // namespace elasticdns::agent
