#include "agent/upstream/forwarder.hpp"

#include <sys/random.h>

#include <array>
#include <atomic>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/endian/conversion.hpp>

#include "agent/upstream/answer_cache.hpp"
#include "agent/upstream/failure_cache.hpp"
#include "agent/util/log_limit.hpp"

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::endian::load_big_u16;
using boost::endian::store_big_u16;

constexpr size_t kMaxReplySize = 65535;        // RFC 1035 4.2.2: TCP length prefix is 16 bits
constexpr uint16_t kDnsPort = 53;              // RFC 1035 4.2
constexpr size_t kMaxFailureEntries = 10'000;  // questions whose failures are remembered
// A CSPRNG draw per ID (getrandom, buffered per thread): IDs must not be predictable from
// earlier ones (Kaminsky-style spoofing, RFC 5452 9.2).
uint16_t randomId() {
  thread_local std::array<uint16_t, 128> pool;
  thread_local size_t left = 0;
  if (left == 0) {
    if (getrandom(pool.data(), sizeof pool, 0) != static_cast<ssize_t>(sizeof pool)) {
      std::random_device rd;  // reads the kernel's CSPRNG too; only when getrandom fails
      for (auto& v : pool) v = static_cast<uint16_t>(rd());
    }
    left = pool.size();
  }
  return pool[--left];
}

struct ForwarderMetrics {
  explicit ForwarderMetrics(metrics::Registry& r)
      : udp_queries(r.counter("elasticdns_agent_upstream_queries_total",
                              "Queries sent to upstream resolvers", "transport=\"udp\"")),
        tcp_queries(r.counter("elasticdns_agent_upstream_queries_total",
                              "Queries sent to upstream resolvers", "transport=\"tcp\"")),
        timeout(r.counter("elasticdns_agent_upstream_failures_total",
                          "Upstream attempts that failed, by reason", "reason=\"timeout\"")),
        refused(r.counter("elasticdns_agent_upstream_failures_total",
                          "Upstream attempts that failed, by reason", "reason=\"refused\"")),
        servfail(r.counter("elasticdns_agent_upstream_failures_total",
                           "Upstream attempts that failed, by reason", "reason=\"servfail\"")),
        mismatch(r.counter("elasticdns_agent_upstream_failures_total",
                           "Upstream attempts that failed, by reason", "reason=\"mismatch\"")),
        network(r.counter("elasticdns_agent_upstream_failures_total",
                          "Upstream attempts that failed, by reason", "reason=\"network\"")),
        unanswered(r.counter("elasticdns_agent_upstream_unanswered_total",
                             "Forwarded queries that got no usable answer from any upstream")),
        hits(r.counter("elasticdns_agent_cache_hits_total",
                       "Forwarded queries answered from cache")),
        misses(r.counter("elasticdns_agent_cache_misses_total",
                         "Forwarded queries not found in cache")),
        failure_hits(r.counter("elasticdns_agent_upstream_failure_cache_hits_total",
                               "Forwarded queries answered SERVFAIL from the failure cache "
                               "(RFC 9520) without asking upstream")),
        joined(r.counter("elasticdns_agent_upstream_joined_total",
                         "Forwarded queries that waited for the same question in flight")) {}
  metrics::Counter& udp_queries;
  metrics::Counter& tcp_queries;
  metrics::Counter& timeout;
  metrics::Counter& refused;
  metrics::Counter& servfail;
  metrics::Counter& mismatch;
  metrics::Counter& network;
  metrics::Counter& unanswered;
  metrics::Counter& hits;
  metrics::Counter& misses;
  metrics::Counter& failure_hits;
  metrics::Counter& joined;
};

/// A query waiting for the reply to the same question, asked by another client.
struct Waiter {
  std::vector<uint8_t> packet;
  wire::Question question;
  Forwarder::Done done;
};

struct Shared {
  Shared(asio::io_context& io, UpstreamConfig c, metrics::Registry& r, Forwarder::Now n)
      : io(io),
        config(std::move(c)),
        now(std::move(n)),
        m(r),
        failures(config.failure_hold, config.failure_hold_max, kMaxFailureEntries),
        servers(config.servers) {
    if (config.cache_entries > 0)
      cache = std::make_shared<AnswerCache>(config.cache_entries, config.max_cache_ttl,
                                            config.negative_cache_ttl_cap);
  }
  asio::io_context& io;
  const UpstreamConfig config;
  const Forwarder::Now now;
  ForwarderMetrics m;
  std::shared_ptr<AnswerCache> cache;
  FailureCache failures;
  LogLimit timeout_log, error_log, mismatch_log;

  std::mutex inflight_mu;
  // Questions (AnswerCache::keyOf) asked upstream now, with the queries waiting for them.
  std::unordered_map<std::string, std::vector<Waiter>> inflight;  // guarded by inflight_mu

  std::mutex mu;
  std::vector<udp::endpoint> servers;  // guarded by mu
  size_t preferred = 0;                // guarded by mu: first server to try

  // A server that timed out loses its turn as the first one tried.
  void demote(const udp::endpoint& server) {
    std::lock_guard lock(mu);
    if (!servers.empty() && servers[preferred % servers.size()] == server)
      preferred = (preferred + 1) % servers.size();
  }
};

// One forwarded query: its attempts across servers, on its own strand.
class Query : public std::enable_shared_from_this<Query> {
 public:
  Query(std::shared_ptr<Shared> shared, std::span<const uint8_t> query, wire::Question question,
        std::string key, Forwarder::Done done, std::vector<udp::endpoint> servers, size_t first)
      : s_(std::move(shared)),
        strand_(asio::make_strand(s_->io)),
        timer_(strand_),
        wire_(query.begin(), query.end()),
        client_id_(load_big_u16(query.data())),
        question_(std::move(question)),
        key_(std::move(key)),
        done_(std::move(done)),
        servers_(std::move(servers)),
        first_(first) {}

  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->nextAttempt(); });
  }

 private:
  void nextAttempt() {
    closeAll();
    if (attempt_ >= s_->config.attempts || servers_.empty()) {
      finish({});
      return;
    }
    server_ = servers_[(first_ + attempt_) % servers_.size()];
    ++attempt_;
    sendUdp();
  }

  void sendUdp() {
    const uint64_t gen = ++gen_;
    boost::system::error_code ec;
    udp_.emplace(strand_);
    udp_->open(server_.protocol(), ec);
    // Port 0: the kernel picks a random ephemeral source port for every attempt (RFC 5452 9.2);
    // connect() makes it drop datagrams from any other source.
    if (!ec) udp_->bind(udp::endpoint(server_.protocol(), 0), ec);
    if (!ec) udp_->connect(server_, ec);
    if (ec) {
      networkError("udp socket", ec);
      return;
    }
    id_ = randomId();
    store_big_u16(wire_.data(), id_);
    s_->m.udp_queries.inc();
    armTimer(gen);
    udp_->async_send(asio::buffer(wire_),
                     [self = shared_from_this(), gen](boost::system::error_code ec, size_t) {
                       if (gen == self->gen_ && ec) self->networkError("udp send", ec);
                     });
    receiveUdp(gen);
  }

  void receiveUdp(uint64_t gen) {
    buf_.resize(kMaxReplySize);
    udp_->async_receive(asio::buffer(buf_), [self = shared_from_this(), gen](
                                                boost::system::error_code ec, size_t n) {
      if (gen != self->gen_) return;
      if (ec) {
        self->networkError("udp receive", ec);  // e.g. ICMP port unreachable
        return;
      }
      std::span<const uint8_t> reply(self->buf_.data(), n);
      if (!self->matches(reply)) {
        self->mismatch();
        self->receiveUdp(gen);  // the real reply may still come
        return;
      }
      if (load_big_u16(&reply[2]) & wire::kFlagTc) {
        self->sendTcp();  // RFC 7766 5: retry the truncated question over TCP, same server
        return;
      }
      self->handleReply(reply);
    });
  }

  void sendTcp() {
    closeAll();
    const uint64_t gen = ++gen_;
    id_ = randomId();
    store_big_u16(wire_.data(), id_);
    tcp_out_.resize(2 + wire_.size());
    store_big_u16(tcp_out_.data(), static_cast<uint16_t>(wire_.size()));
    std::copy(wire_.begin(), wire_.end(), tcp_out_.begin() + 2);
    tcp_.emplace(strand_);
    s_->m.tcp_queries.inc();
    armTimer(gen);
    auto self = shared_from_this();
    tcp_->async_connect(tcp::endpoint(server_.address(), server_.port()),
                        [self, gen](boost::system::error_code ec) {
                          if (gen != self->gen_) return;
                          if (ec) return self->networkError("tcp connect", ec);
                          asio::async_write(
                              *self->tcp_, asio::buffer(self->tcp_out_),
                              [self, gen](boost::system::error_code ec, size_t) {
                                if (gen != self->gen_) return;
                                if (ec) return self->networkError("tcp write", ec);
                                asio::async_read(
                                    *self->tcp_, asio::buffer(self->len_),
                                    [self, gen](boost::system::error_code ec, size_t) {
                                      if (gen != self->gen_) return;
                                      if (ec) return self->networkError("tcp read", ec);
                                      size_t len = load_big_u16(self->len_.data());
                                      self->buf_.resize(len);
                                      asio::async_read(
                                          *self->tcp_, asio::buffer(self->buf_),
                                          [self, gen](boost::system::error_code ec, size_t) {
                                            if (gen != self->gen_) return;
                                            if (ec) return self->networkError("tcp read", ec);
                                            if (!self->matches(self->buf_)) {
                                              self->mismatch();
                                              return self->nextAttempt();
                                            }
                                            self->handleReply(self->buf_);
                                          });
                                    });
                              });
                        });
  }

  void armTimer(uint64_t gen) {
    timer_.expires_after(s_->config.timeout);
    timer_.async_wait([self = shared_from_this(), gen](boost::system::error_code ec) {
      if (ec || gen != self->gen_) return;
      self->s_->m.timeout.inc();
      if (self->s_->timeout_log.allow())
        spdlog::warn("upstream: {} did not answer within {} ms", self->endpointText(),
                     self->s_->config.timeout.count());
      self->s_->demote(self->server_);
      self->nextAttempt();
    });
  }

  // The reply is accepted only if it answers our question with our ID (RFC 5452 9.1).
  bool matches(std::span<const uint8_t> reply) const {
    if (reply.size() < wire::kHeaderSize || load_big_u16(reply.data()) != id_) return false;
    const uint16_t flags = load_big_u16(&reply[2]);
    if (!(flags & wire::kFlagQr) ||
        (flags & wire::kOpcodeMask) != (load_big_u16(&wire_[2]) & wire::kOpcodeMask))
      return false;
    auto q = wire::parseQuestion(reply);
    return q && q->name == question_.name && q->type == question_.type &&
           q->qclass == question_.qclass;
  }

  void handleReply(std::span<const uint8_t> reply) {
    uint8_t rcode = reply[3] & 0x0F;
    if (rcode == wire::kServFail || rcode == wire::kRefused) {
      (rcode == wire::kServFail ? s_->m.servfail : s_->m.refused).inc();
      if (s_->error_log.allow())
        spdlog::warn("upstream: {} answered {}", endpointText(),
                     rcode == wire::kServFail ? "SERVFAIL" : "REFUSED");
      nextAttempt();
      return;
    }
    if (s_->cache) s_->cache->insert(key_, reply, s_->now());
    s_->failures.succeed(key_);
    std::vector<uint8_t> out(reply.begin(), reply.end());
    store_big_u16(out.data(), client_id_);
    finish(out);
  }

  void mismatch() {
    s_->m.mismatch.inc();
    if (s_->mismatch_log.allow())
      spdlog::warn("upstream: dropped a reply from {} that does not match the query",
                   endpointText());
  }

  void networkError(const char* what, const boost::system::error_code& ec) {
    s_->m.network.inc();
    if (s_->error_log.allow())
      spdlog::warn("upstream: {} {}: {}", endpointText(), what, ec.message());
    nextAttempt();
  }

  void closeAll() {
    boost::system::error_code ec;
    ++gen_;  // every pending handler of the previous attempt is now stale
    if (udp_) udp_->close(ec);
    if (tcp_) tcp_->close(ec);
    timer_.cancel();
  }

  void finish(std::span<const uint8_t> reply) {
    if (!done_) return;
    closeAll();
    if (reply.empty()) {
      s_->m.unanswered.inc();
      s_->failures.fail(key_, s_->now());
    }
    std::vector<Waiter> waiters;
    {
      std::lock_guard lock(s_->inflight_mu);
      auto it = s_->inflight.find(key_);
      if (it != s_->inflight.end()) {
        waiters = std::move(it->second);
        s_->inflight.erase(it);
      }
    }
    auto done = std::move(done_);
    done_ = nullptr;
    done(reply);
    for (auto& w : waiters) {
      if (reply.empty()) {
        w.done({});
        continue;
      }
      std::vector<uint8_t> own(reply.begin(), reply.end());
      adaptReply(own, w.packet, w.question);
      w.done(own);
    }
  }

  std::string endpointText() const {
    std::ostringstream os;
    os << server_;
    return os.str();
  }

  std::shared_ptr<Shared> s_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;
  std::vector<uint8_t> wire_;  // the client's query; its ID is replaced on every attempt
  const uint16_t client_id_;
  const wire::Question question_;
  const std::string key_;
  Forwarder::Done done_;
  const std::vector<udp::endpoint> servers_;
  const size_t first_;
  int attempt_ = 0;
  uint64_t gen_ = 0;
  uint16_t id_ = 0;
  udp::endpoint server_;
  std::optional<udp::socket> udp_;
  std::optional<tcp::socket> tcp_;
  std::vector<uint8_t> buf_;
  std::vector<uint8_t> tcp_out_;
  std::array<uint8_t, 2> len_{};
};

}  // namespace

struct Forwarder::Impl {
  std::shared_ptr<Shared> shared;
};

Forwarder::Forwarder(asio::io_context& io, UpstreamConfig config, metrics::Registry& metrics,
                     Now now)
    : impl_(std::make_unique<Impl>()) {
  impl_->shared = std::make_shared<Shared>(io, std::move(config), metrics, std::move(now));
  std::weak_ptr<AnswerCache> cache = impl_->shared->cache;
  metrics.callback("elasticdns_agent_cache_entries", "Answers held in the forwarder's cache",
                   [cache] {
                     auto c = cache.lock();
                     return c ? static_cast<double>(c->size()) : 0.0;
                   });
  std::weak_ptr<Shared> shared = impl_->shared;
  metrics.callback("elasticdns_agent_upstream_failure_cache_entries",
                   "Questions whose upstream failures are remembered (RFC 9520)", [shared] {
                     auto s = shared.lock();
                     return s ? static_cast<double>(s->failures.size()) : 0.0;
                   });
}

Forwarder::~Forwarder() = default;

void Forwarder::forward(const wire::Query& query, std::span<const uint8_t> packet, Done done) {
  auto& s = impl_->shared;
  wire::Question question = wire::questionOf(query, packet);
  std::string key = AnswerCache::keyOf(question, query.has_edns, query.edns_do);
  if (s->cache) {
    if (auto hit = s->cache->lookup(key, packet, question, s->now())) {
      s->m.hits.inc();
      asio::post(s->io, [done = std::move(done), reply = std::move(*hit)] { done(reply); });
      return;
    }
    s->m.misses.inc();
  }
  if (s->failures.held(key, s->now())) {
    s->m.failure_hits.inc();
    asio::post(s->io, [done = std::move(done)] { done({}); });
    return;
  }
  {
    std::lock_guard lock(s->inflight_mu);
    auto [it, first] = s->inflight.try_emplace(key);
    if (!first) {
      s->m.joined.inc();
      it->second.push_back(Waiter{std::vector<uint8_t>(packet.begin(), packet.end()),
                                  std::move(question), std::move(done)});
      return;
    }
  }
  std::vector<udp::endpoint> servers;
  size_t first = 0;
  {
    std::lock_guard lock(s->mu);
    servers = s->servers;
    first = s->preferred;
  }
  std::make_shared<Query>(s, packet, std::move(question), std::move(key), std::move(done),
                          std::move(servers), first)
      ->start();
}

void Forwarder::setServers(std::vector<udp::endpoint> servers) {
  auto& s = impl_->shared;
  std::lock_guard lock(s->mu);
  s->servers = std::move(servers);
  s->preferred = 0;
}

std::vector<udp::endpoint> readResolvConf(const std::string& path,
                                          const std::vector<asio::ip::address>& exclude) {
  std::vector<udp::endpoint> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (auto c = line.find_first_of("#;"); c != std::string::npos) line.resize(c);
    std::istringstream words(line);
    std::string keyword, value;
    if (!(words >> keyword >> value) || keyword != "nameserver") continue;
    if (auto pct = value.find('%'); pct != std::string::npos) value.resize(pct);  // scope id
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(value, ec);
    if (ec) {
      spdlog::warn("upstream: {}: ignoring nameserver '{}': not an IP address", path, value);
      continue;
    }
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    if (std::find(exclude.begin(), exclude.end(), addr) != exclude.end()) continue;
    udp::endpoint ep(addr, kDnsPort);
    if (std::find(out.begin(), out.end(), ep) == out.end()) out.push_back(ep);
  }
  return out;
}

}  // namespace elasticdns::agent
