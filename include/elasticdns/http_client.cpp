#include "elasticdns/http_client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509err.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <type_traits>

namespace elasticdns {

struct TlsClient::Impl {
  boost::asio::ssl::context ctx{boost::asio::ssl::context::tls_client};
};

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using UnixStream = beast::basic_stream<asio::local::stream_protocol>;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// TCP keepalive of every connection (Session::keepAlive), in seconds and probes.
constexpr int kKeepAliveIdle = 3;
constexpr int kKeepAliveInterval = 1;
constexpr int kKeepAliveProbes = 3;

// The URL of a TCP destination (nullptr: a unix socket).
const HttpUrl* urlOf(const HttpDestination& to) {
  if (const auto* url = std::get_if<HttpUrl>(&to)) return url;
  if (const auto* https = std::get_if<HttpsDestination>(&to)) return &https->url;
  return nullptr;
}

http::request<http::string_body> makeRequest(const HttpDestination& to, HttpRequest& r) {
  http::request<http::string_body> req{r.method, r.target, 11};
  if (const HttpUrl* url = urlOf(to)) {
    req.target(url->base + r.target);
    req.set(http::field::host, url->host + ":" + url->port);
  } else {
    req.set(http::field::host, "localhost");
  }
  req.set(http::field::user_agent, "elasticdns");
  req.set(http::field::connection, "close");
  if (!r.token.empty()) req.set(http::field::authorization, "Bearer " + r.token);
  for (const auto& [name, value] : r.headers) req.set(name, value);
  if (!r.body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = std::move(r.body);
  req.prepare_payload();
  return req;
}

// An error unless the file at `path` can be opened for reading (OpenSSL's own errors do not
// say which file or why).
std::optional<Error> unreadable(const char* field, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return Error{field, path + ": " + std::strerror(errno)};
  std::fclose(f);
  return std::nullopt;
}

// One connection, one request, over a TCP (plain or TLS) or a unix stream. Either reads the
// whole response (`done_`) or, as a body stream, the header (`on_head_`) and then the body as
// it arrives.
template <class Stream>
class Session final : public HttpBodyStream, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(const asio::any_io_executor& ex, HttpDestination to, HttpRequest request)
      : stream_(makeStream(ex, to)),
        to_(std::move(to)),
        timeout_(request.timeout),
        req_(makeRequest(to_, request)) {
    parser_.body_limit(request.body_limit);
    if constexpr (kTcp) resolver_.emplace(ex);
  }

  void exchange(HttpCallback done) {
    done_ = std::move(done);
    connectThen([](const std::shared_ptr<Session>& self) { self->readResponse(); });
  }

  void openBodyStream(HttpHeadCallback on_head) {
    on_head_ = std::move(on_head);
    parser_.body_limit(boost::none);
    connectThen([](const std::shared_ptr<Session>& self) { self->readHead(); });
  }

  void read(ChunkCallback callback) override {
    auto self = this->shared_from_this();
    if (!parser_.get().body().empty() || parser_.is_done())
      return asio::post(stream_.get_executor(),
                        [self, cb = std::move(callback)] { cb(self->takeChunk()); });
    // A read may bring no body bytes (a chunk header alone): read on.
    http::async_read_some(stream_, buffer_, parser_,
                          [self, cb = std::move(callback)](beast::error_code ec, size_t) mutable {
                            if (ec) return cb(Error{"read", self->describe(ec)});
                            self->read(std::move(cb));
                          });
  }

  void cancel() override {
    cancelled_ = true;
    if (resolver_) resolver_->cancel();
    beast::error_code ec;
    socket().close(ec);
  }

 private:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  static constexpr bool kTcp = kTls || std::is_same_v<Stream, beast::tcp_stream>;
  using Then = void (*)(const std::shared_ptr<Session>&);

  static Stream makeStream(const asio::any_io_executor& ex, const HttpDestination& to) {
    if constexpr (kTls)
      return Stream(ex, std::get<HttpsDestination>(to).tls->impl().ctx);
    else
      return Stream(ex);
  }

  auto& socket() { return beast::get_lowest_layer(stream_).socket(); }

  void connectThen(Then then) {
    beast::get_lowest_layer(stream_).expires_after(timeout_);
    auto self = this->shared_from_this();
    if constexpr (kTcp) {
      if (urlOf(to_)->https != kTls)  // an https URL given as a plain HttpUrl, or the reverse
        return asio::post(stream_.get_executor(), [self] {
          const HttpUrl& url = *urlOf(self->to_);
          self->fail(Error{"connect", url.text() + (url.https ? ": https needs TLS settings"
                                                              : ": TLS settings for http")});
        });
    }
    auto connected = [self, then](beast::error_code ec, auto&&...) {
      if (ec) return self->fail(Error{"connect", ec.message()});
      if constexpr (kTcp) self->keepAlive();
      if constexpr (kTls)
        self->handshakeThen(then);
      else
        self->writeThen(then);
    };
    if constexpr (kTcp) {
      const HttpUrl& url = *urlOf(to_);
      resolver_->async_resolve(
          url.host, url.port,
          [self, connected](beast::error_code ec, tcp::resolver::results_type results) {
            if (ec)
              return self->fail(
                  Error{"connect", "resolve " + urlOf(self->to_)->host + ": " + ec.message()});
            beast::get_lowest_layer(self->stream_).async_connect(results, connected);
          });
    } else {
      stream_.async_connect(
          asio::local::stream_protocol::endpoint(std::get<UnixSocketPath>(to_).path), connected);
    }
  }

  // A connection that stays quiet (a long-poll, a watch stream) is probed after kKeepAliveIdle,
  // then every kKeepAliveInterval; kKeepAliveProbes unanswered probes end it with an error. A
  // server whose link went down silently (no reset, no FIN) is so noticed in about 6 s rather
  // than at the request's deadline (a long-poll's wait plus its margin). The probes are answered
  // by the server's kernel.
  void keepAlive() {
    const int fd = socket().native_handle();
    const int on = 1, idle = kKeepAliveIdle, interval = kKeepAliveInterval,
              probes = kKeepAliveProbes;
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
  }

  // TLS: the certificate must name the URL's host (an IP address: subjectAltName IP; a name:
  // subjectAltName DNS, and the name goes out as SNI, which RFC 6066 forbids for addresses).
  void handshakeThen(Then then) {
    const HttpUrl& url = *urlOf(to_);
    SSL* ssl = stream_.native_handle();
    beast::error_code ec;
    asio::ip::make_address(url.host, ec);
    bool set = !ec ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str()) == 1
                   : SSL_set_tlsext_host_name(ssl, url.host.c_str()) == 1 &&
                         SSL_set1_host(ssl, url.host.c_str()) == 1;
    if (!set) return fail(Error{"tls", "cannot check a certificate for the host " + url.host});
    stream_.async_handshake(ssl::stream_base::client,
                            [self = this->shared_from_this(), then](beast::error_code ec) {
                              if (ec) return self->fail(Error{"tls", self->handshakeError(ec)});
                              self->writeThen(then);
                            });
  }

  // Why the handshake failed; for a certificate the client refused, OpenSSL's verify reason
  // (the error code alone says only "certificate verify failed").
  std::string handshakeError(const beast::error_code& ec) {
    std::string out = "handshake with " + urlOf(to_)->text() + ": ";
    long verify = SSL_get_verify_result(stream_.native_handle());
    if (verify != X509_V_OK)
      return out +
             "the server's certificate is not trusted: " + X509_verify_cert_error_string(verify);
    return out + ec.message();
  }

  // An error after the handshake. With TLS 1.3 the server checks the client's certificate
  // after the client finished its handshake: its refusal arrives as an alert on a read, or,
  // when the server closed before the request was read, as a reset.
  std::string describe(const beast::error_code& ec) {
    if constexpr (kTls) {
      bool sent_cert = SSL_get_certificate(stream_.native_handle()) != nullptr;
      if (ec.category() == asio::error::get_ssl_category()) {
        std::string out = "the server refused the TLS connection: " + ec.message();
        int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
        if (reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
            reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
          out += sent_cert ? " (it refused the client certificate)"
                           : " (no client certificate was sent: the server requires one)";
        return out;
      }
      if (!parser_.got_some() && (ec == asio::error::connection_reset ||
                                  ec == http::error::end_of_stream || ec == asio::error::eof))
        return ec.message() + " right after the TLS handshake (" +
               (sent_cert ? "did the server refuse the client certificate?)"
                          : "does the server require a client certificate?)");
    }
    return ec.message();
  }

  void writeThen(Then then) {
    http::async_write(stream_, req_,
                      [self = this->shared_from_this(), then](beast::error_code ec, size_t) {
                        if (ec) return self->fail(Error{"write", self->describe(ec)});
                        then(self);
                      });
  }

  void readResponse() {
    http::async_read(stream_, buffer_, parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->fail(Error{"read", self->describe(ec)});
                       auto res = self->parser_.release();
                       HttpResponse out{res.result_int(), std::move(res.body()), {}};
                       for (const auto& field : res)
                         if (field.name() == http::field::unknown)  // ours, e.g. ElasticDNS-*
                           out.headers.emplace_back(std::string(field.name_string()),
                                                    std::string(field.value()));
                       self->finish(std::move(out));
                     });
  }

  void readHead() {
    http::async_read_header(stream_, buffer_, parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->fail(Error{"read", self->describe(ec)});
                              beast::get_lowest_layer(self->stream_).expires_never();
                              auto cb = std::exchange(self->on_head_, nullptr);
                              cb(self->parser_.get().result_int());
                            });
  }

  Result<std::string> takeChunk() {
    std::string chunk = std::exchange(parser_.get().body(), std::string());
    if (chunk.empty()) return Error{"read", "the response ended"};
    return chunk;
  }

  void fail(Error e) {
    if (on_head_) {
      auto cb = std::exchange(on_head_, nullptr);
      cb(cancelled_ ? Error{"", "cancelled"} : std::move(e));
      return;
    }
    finish(std::move(e));
  }

  // With TLS, no close_notify: the response is complete (Connection: close, one request), and
  // the server reads the closed socket as the end.
  void finish(Result<HttpResponse> r) {
    beast::error_code ec;
    socket().shutdown(asio::socket_base::shutdown_both, ec);
    socket().close(ec);
    if (!done_) return;
    auto cb = std::exchange(done_, nullptr);
    if (cancelled_) r = Error{"", "cancelled"};
    cb(std::move(r));
  }

  std::optional<tcp::resolver> resolver_;  // TCP only
  Stream stream_;
  HttpDestination to_;
  std::chrono::milliseconds timeout_;
  http::request<http::string_body> req_;
  http::response_parser<http::string_body> parser_;
  beast::flat_buffer buffer_;
  HttpCallback done_;
  HttpHeadCallback on_head_;
  bool cancelled_ = false;
};

// A session on the stream `to` needs, started by `start`.
template <class Start>
std::shared_ptr<HttpBodyStream> startSession(const asio::any_io_executor& executor,
                                             const HttpDestination& to, HttpRequest request,
                                             Start start) {
  auto run = [&]<class Stream>(std::type_identity<Stream>) -> std::shared_ptr<HttpBodyStream> {
    auto s = std::make_shared<Session<Stream>>(executor, to, std::move(request));
    start(*s);
    return s;
  };
  if (std::holds_alternative<HttpUrl>(to)) return run(std::type_identity<beast::tcp_stream>{});
  if (std::holds_alternative<HttpsDestination>(to)) return run(std::type_identity<TlsStream>{});
  return run(std::type_identity<UnixStream>{});
}

}  // namespace

TlsClient::TlsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsClient::~TlsClient() = default;

Result<std::shared_ptr<const TlsClient>> TlsClient::load(const TlsFiles& files) {
  auto impl = std::make_unique<Impl>();
  ssl::context& ctx = impl->ctx;
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_verify_mode(ssl::verify_peer);
  beast::error_code ec;
  if (files.ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
    if (ec) return Error{"ca_file", "the system's CAs: " + ec.message()};
  } else {
    if (auto e = unreadable("ca_file", files.ca_file)) return *e;
    ctx.load_verify_file(files.ca_file, ec);
    if (ec) return Error{"ca_file", files.ca_file + ": no PEM certificate (" + ec.message() + ")"};
  }
  if (files.cert_file.empty() != files.key_file.empty())
    return files.cert_file.empty() ? Error{"cert_file", "is required with key_file"}
                                   : Error{"key_file", "is required with cert_file"};
  if (files.cert_file.empty())
    return std::shared_ptr<const TlsClient>(new TlsClient(std::move(impl)));
  if (auto e = unreadable("cert_file", files.cert_file)) return *e;
  if (auto e = unreadable("key_file", files.key_file)) return *e;
  ctx.use_certificate_chain_file(files.cert_file, ec);
  if (ec)
    return Error{"cert_file", files.cert_file + ": no PEM certificate (" + ec.message() + ")"};
  ctx.use_private_key_file(files.key_file, ssl::context::pem, ec);
  bool mismatch =
      ec && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
  if (ec && !mismatch)
    return Error{"key_file", files.key_file + ": no PEM private key (" + ec.message() + ")"};
  if (mismatch || SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    return Error{"key_file", files.key_file + " is not the key of " + files.cert_file};
  return std::shared_ptr<const TlsClient>(new TlsClient(std::move(impl)));
}

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (beast::iequals(n, name)) return v;
  return std::nullopt;
}

std::shared_ptr<HttpExchange> httpRequest(const asio::any_io_executor& executor,
                                          const HttpDestination& to, HttpRequest request,
                                          HttpCallback callback) {
  return startSession(executor, to, std::move(request),
                      [&](auto& session) { session.exchange(std::move(callback)); });
}

std::shared_ptr<HttpBodyStream> httpOpenBodyStream(const asio::any_io_executor& executor,
                                                   const HttpDestination& to, HttpRequest request,
                                                   HttpHeadCallback on_head) {
  return startSession(executor, to, std::move(request),
                      [&](auto& session) { session.openBodyStream(std::move(on_head)); });
}

}  // namespace elasticdns
