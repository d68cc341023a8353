#pragma once
// Prometheus scrape endpoint: GET /metrics on `metrics_listen`, served by Boost.Beast on the
// agent's control io_context (never on the DNS workers).
#include <memory>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "elasticdns/metrics.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

class MetricsHttp {
 public:
  MetricsHttp(boost::asio::io_context& io, const metrics::Registry& registry);
  ~MetricsHttp();
  /// Bind and start accepting. Port 0: the kernel picks; see endpoint().
  std::optional<Error> listen(const boost::asio::ip::tcp::endpoint& at);
  /// Start accepting on `fd`, a listening socket bound to `at` that a previous agent handed
  /// over (handover.hpp). Takes ownership of `fd`.
  std::optional<Error> adopt(int fd, const boost::asio::ip::tcp::endpoint& at);
  /// The listening socket (still owned here), for a handover; -1 before listen().
  int nativeHandle() const;
  boost::asio::ip::tcp::endpoint endpoint() const;
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elasticdns::agent
