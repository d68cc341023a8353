#pragma once
// Forwarding of names outside the zone to the host's upstream resolvers, with an answer cache,
// a cache of resolution failures (RFC 9520, failure_cache.hpp), and one upstream query at a
// time per question: queries for a question already in flight wait for its reply.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "agent/dns/wire.hpp"
#include "elasticdns/metrics.hpp"

namespace elasticdns::agent {

struct UpstreamConfig {
  std::vector<boost::asio::ip::udp::endpoint> servers;  // tried in order, then rotated
  std::chrono::milliseconds timeout{800};               // per attempt
  int attempts = 3;                                     // in all, across servers
  size_t cache_entries = 10'000;                        // 0 disables the cache
  std::chrono::seconds max_cache_ttl{3600};
  std::chrono::seconds negative_cache_ttl_cap{300};  // NXDOMAIN/NODATA, RFC 2308
  std::chrono::seconds failure_hold{1};              // RFC 9520: first failure of a question
  std::chrono::seconds failure_hold_max{30};         // doubled while it keeps failing, up to this
};

/// Reads the `nameserver` lines of a resolv.conf, dropping `exclude` (the agent's own
/// addresses, so it never forwards to itself). Port 53.
std::vector<boost::asio::ip::udp::endpoint> readResolvConf(
    const std::string& path, const std::vector<boost::asio::ip::address>& exclude);

class Forwarder {
 public:
  /// `reply` is the whole response with the client's ID restored, or empty on failure (all
  /// attempts timed out or were refused, or the question failed a moment ago and is held by
  /// the failure cache): the server then answers SERVFAIL.
  using Done = std::function<void(std::span<const uint8_t> reply)>;
  using Now = std::function<std::chrono::steady_clock::time_point()>;

  Forwarder(
      boost::asio::io_context& io, UpstreamConfig config, metrics::Registry& metrics,
      Now now = [] { return std::chrono::steady_clock::now(); });
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  /// Forward one query. `packet` is the client's message and `query` what wire::parseQuery()
  /// found in it (kOk): neither is parsed again. `packet` is copied, so the caller may reuse its
  /// buffer.
  /// May be called from any thread. `done` runs on the Forwarder's io_context, exactly once.
  /// A cached answer completes without network I/O (its TTLs aged, the client's ID set), and so
  /// does a held failure. A question already in flight is not asked again: this query gets
  /// that one's reply (made for it: its ID, RD bit and name spelling).
  void forward(const wire::Query& query, std::span<const uint8_t> packet, Done done);

  /// Replace the upstream list (SIGHUP reload).
  void setServers(std::vector<boost::asio::ip::udp::endpoint> servers);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace elasticdns::agent
