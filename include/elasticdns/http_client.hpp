#pragma once
// The project's one HTTP/1.1 client (Boost.Beast): the agent's to central over TCP (sync,
// Docker discovery's registrations) and to the Docker engine over its unix socket; central's to
// etcd's JSON gateway (etcd_store), over http:// or https:// (TLS: OpenSSL through Asio). One
// request per connection (with TLS: one handshake per request, no session reuse), a deadline on
// the exchange, a bound on the body.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/verb.hpp>

#include "elasticdns/result.hpp"
#include "elasticdns/text.hpp"

namespace elasticdns {

/// An http:// URL (the one grammar: text::parseHttpUrl). A URL with `https` set is refused
/// here (an error to the callback): https goes through an HttpsDestination.
using HttpUrl = text::HttpUrl;

/// A server on a unix stream socket (the Docker engine's API); requests carry Host: localhost.
struct UnixSocketPath {
  std::string path;
};

/// A TLS client's PEM files. ca_file: the CAs that sign the servers' certificates (empty: the
/// system's, OpenSSL's default paths); cert_file and key_file: a client certificate (chain) and
/// its key, both or neither.
struct TlsFiles {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool empty() const { return ca_file.empty() && cert_file.empty() && key_file.empty(); }
  bool operator==(const TlsFiles&) const = default;
};

/// The loaded files (an OpenSSL context), shared by every connection made with it, from any
/// thread: nothing changes it after load.
class TlsClient {
 public:
  /// Reads the files; an error's field is "ca_file", "cert_file" or "key_file" and its reason
  /// names the path and what is wrong (unreadable, not PEM, the key does not match).
  static Result<std::shared_ptr<const TlsClient>> load(const TlsFiles& files);
  ~TlsClient();
  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  explicit TlsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// An https:// URL and the TLS client to reach it with. The server's certificate must chain to
/// the CAs and name the URL's host (DNS name: subjectAltName DNS, sent as SNI; IP address:
/// subjectAltName IP); TLS 1.2 or later.
struct HttpsDestination {
  HttpUrl url;                           // https set
  std::shared_ptr<const TlsClient> tls;  // not null
};
using HttpDestination = std::variant<HttpUrl, UnixSocketPath, HttpsDestination>;

struct HttpRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;  // path and query; after the URL's base
  std::string token;   // sent as `Authorization: Bearer <token>` when not empty (never logged)
  std::string body;    // sent as application/json when not empty
  std::vector<std::pair<std::string, std::string>> headers;  // more request headers
  /// The whole exchange (for a body stream: up to the end of the response header).
  std::chrono::milliseconds timeout{10'000};
  size_t body_limit = 1u << 20;  // a larger response body is an error
};

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  /// The response's fields that HTTP does not define (e.g. ElasticDNS-Stale), as sent.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The value of the field `name` (case-insensitive), if it was sent.
  std::optional<std::string> header(std::string_view name) const;
};

/// Runs exactly once, on the executor given, unless the exchange was cancelled (then it may
/// still run, with an error).
using HttpCallback = std::function<void(Result<HttpResponse>)>;

class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  /// Aborts the exchange; call on the executor it runs on.
  virtual void cancel() = 0;
};

/// Starts `request` to `to`. Returns a handle whose cancel() aborts the exchange.
std::shared_ptr<HttpExchange> httpRequest(const boost::asio::any_io_executor& executor,
                                          const HttpDestination& to, HttpRequest request,
                                          HttpCallback callback);

/// A response whose body is read as it arrives, with no bound and no deadline once the header
/// is in (a stream that is idle while nothing happens: Docker's /events).
class HttpBodyStream : public HttpExchange {
 public:
  /// The body bytes received since the last call, at least one; an error when the connection
  /// failed or the response ended. Runs on the stream's executor.
  using ChunkCallback = std::function<void(Result<std::string>)>;
  /// One read at a time.
  virtual void read(ChunkCallback callback) = 0;
};
/// Status of the response once its header is in; the stream then reads its body.
using HttpHeadCallback = std::function<void(Result<unsigned>)>;

/// Starts `request` to `to`; `on_head` runs once the response header arrived, or on an error.
std::shared_ptr<HttpBodyStream> httpOpenBodyStream(const boost::asio::any_io_executor& executor,
                                                   const HttpDestination& to, HttpRequest request,
                                                   HttpHeadCallback on_head);

}  // namespace elasticdns
