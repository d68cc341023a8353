#pragma once
// A minimal HTTP/1.1 GET client for sync (Boost.Beast): one request per connection, a deadline
// on the whole exchange, a bound on the body. Plain http:// only (TLS is not implemented).
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "elasticdns/result.hpp"

namespace elasticdns::agent {

/// http://host[:port][/base]; host may be a name, an IPv4 address or a bracketed IPv6 address.
struct HttpUrl {
  std::string host;
  std::string port = "80";
  std::string base;          // path prefix without a trailing slash, e.g. "" or "/central"
  std::string text() const;  // for logs: http://host:port/base
};
Result<HttpUrl> parseHttpUrl(std::string_view url);

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

class HttpGet;
/// Runs exactly once, on `executor`, unless the request was cancelled (then it may still run,
/// with an error).
using HttpCallback = std::function<void(Result<HttpResponse>)>;

/// Starts GET `target` (path and query) on `url` with `Authorization: Bearer <token>` (when the
/// token is not empty). The whole exchange must finish within `timeout`; a body larger than
/// `body_limit` bytes is an error. Returns a handle whose cancel() aborts the exchange.
std::shared_ptr<HttpGet> httpGet(const boost::asio::any_io_executor& executor, const HttpUrl& url,
                                 std::string target, const std::string& token,
                                 std::chrono::milliseconds timeout, size_t body_limit,
                                 HttpCallback callback);

class HttpGet {
 public:
  virtual ~HttpGet() = default;
  /// Aborts the exchange; call on the executor given to httpGet().
  virtual void cancel() = 0;
};

}  // namespace elasticdns::agent
