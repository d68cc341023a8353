#include "elasticdns/http_client.hpp"

#include <charconv>
#include <optional>
#include <type_traits>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace elasticdns {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using UnixStream = beast::basic_stream<asio::local::stream_protocol>;

http::request<http::string_body> makeRequest(const HttpDestination& to, HttpRequest& r) {
  http::request<http::string_body> req{r.method, r.target, 11};
  if (const auto* url = std::get_if<HttpUrl>(&to)) {
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

// One connection, one request, over a TCP or a unix stream. Either reads the whole response
// (`done_`) or, as a body stream, the header (`on_head_`) and then the body as it arrives.
template <class Stream>
class Session final : public HttpBodyStream, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(const asio::any_io_executor& ex, HttpDestination to, HttpRequest request)
      : stream_(ex),
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
                            if (ec) return cb(Error{"read", ec.message()});
                            self->read(std::move(cb));
                          });
  }

  void cancel() override {
    cancelled_ = true;
    if (resolver_) resolver_->cancel();
    beast::error_code ec;
    stream_.socket().close(ec);
  }

 private:
  static constexpr bool kTcp = std::is_same_v<Stream, beast::tcp_stream>;
  using Then = void (*)(const std::shared_ptr<Session>&);

  void connectThen(Then then) {
    stream_.expires_after(timeout_);
    auto self = this->shared_from_this();
    auto connected = [self, then](beast::error_code ec, auto&&...) {
      if (ec) return self->fail(Error{"connect", ec.message()});
      http::async_write(self->stream_, self->req_, [self, then](beast::error_code ec, size_t) {
        if (ec) return self->fail(Error{"write", ec.message()});
        then(self);
      });
    };
    if constexpr (kTcp) {
      const auto& url = std::get<HttpUrl>(to_);
      resolver_->async_resolve(
          url.host, url.port,
          [self, connected](beast::error_code ec, tcp::resolver::results_type results) {
            if (ec)
              return self->fail(Error{
                  "connect", "resolve " + std::get<HttpUrl>(self->to_).host + ": " + ec.message()});
            self->stream_.async_connect(results, connected);
          });
    } else {
      stream_.async_connect(
          asio::local::stream_protocol::endpoint(std::get<UnixSocketPath>(to_).path), connected);
    }
  }

  void readResponse() {
    http::async_read(stream_, buffer_, parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->fail(Error{"read", ec.message()});
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
                              if (ec) return self->fail(Error{"read", ec.message()});
                              self->stream_.expires_never();
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

  void finish(Result<HttpResponse> r) {
    beast::error_code ec;
    stream_.socket().shutdown(Stream::socket_type::shutdown_both, ec);
    stream_.socket().close(ec);
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
  if (std::holds_alternative<HttpUrl>(to)) {
    auto s = std::make_shared<Session<beast::tcp_stream>>(executor, to, std::move(request));
    start(*s);
    return s;
  }
  auto s = std::make_shared<Session<UnixStream>>(executor, to, std::move(request));
  start(*s);
  return s;
}

}  // namespace

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
