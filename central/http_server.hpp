#pragma once
// Central's HTTP server (Boost.Beast): the listener and one Session per connection. It enforces
// the size, connection and time limits, hands each request to the Router and wakes long-polls
// when their deadline passes.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "central/config.hpp"
#include "central/router.hpp"
#include "elasticdns/metrics.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::central {

constexpr std::chrono::milliseconds kAcceptRetryDelay{100};  // after EMFILE/ENFILE

class Session;  // one connection (http_server.cpp)

struct ServerLimits {
  size_t max_connections = kDefaultMaxConnections;
  std::chrono::milliseconds idle_timeout = kDefaultIdleTimeout;
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, Router& router, ServerLimits limits);
  /// Binds and listens; returns the bound endpoint (port 0 → the kernel's choice).
  Result<boost::asio::ip::tcp::endpoint> listen(const std::string& address, uint16_t port);
  void start();
  void stop();

  // Used by sessions.
  Router& router() { return router_; }
  const ServerLimits& limits() const { return limits_; }
  void sessionOpened() { ++connections_; }
  void sessionClosed() { --connections_; }
  void watchAdded();
  /// The serialized status line and header fields of a response, shared while the same
  /// response is sent again (the watchers one commit wakes).
  std::shared_ptr<const std::string> sharedHead(const Response& r, unsigned version,
                                                bool keep_alive);
  /// A session whose response went out whole: it goes on (reads the next request, or closes)
  /// in one handler after the current one, so a fan-out only writes.
  void afterWrite(std::shared_ptr<Session> session);

 private:
  void accept();
  void armWatchTimer();

  boost::asio::io_context& io_;
  Router& router_;
  ServerLimits limits_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer watch_timer_;
  boost::asio::steady_timer accept_retry_;
  std::optional<Router::Clock::time_point> armed_for_;
  size_t connections_ = 0;
  std::vector<std::shared_ptr<Session>> written_, draining_;  // for afterWrite
  struct HeadCache {
    std::shared_ptr<const std::string> body;  // held: its address is the key
    unsigned status = 0;
    unsigned version = 0;
    bool keep_alive = false;
    std::string_view content_type;
    std::vector<std::pair<std::string, std::string>> headers;
    std::shared_ptr<const std::string> head;
  } head_cache_;
  metrics::Counter* rejected_connections_;
};

}  // namespace elasticdns::central
