#include "agent/sync/http_client.hpp"

#include <charconv>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

class HttpGetSession final : public HttpGet, public std::enable_shared_from_this<HttpGetSession> {
 public:
  HttpGetSession(const asio::any_io_executor& ex, HttpUrl url, std::string target,
                 const std::string& token, std::chrono::milliseconds timeout, size_t body_limit,
                 HttpCallback cb)
      : resolver_(ex), stream_(ex), url_(std::move(url)), timeout_(timeout), cb_(std::move(cb)) {
    req_.method(http::verb::get);
    req_.target(url_.base + target);
    req_.version(11);
    req_.set(http::field::host, url_.host + ":" + url_.port);
    req_.set(http::field::user_agent, "elasticdns-agent");
    req_.set(http::field::connection, "close");
    if (!token.empty()) req_.set(http::field::authorization, "Bearer " + token);
    parser_.body_limit(body_limit);
  }

  void start() {
    deadline_ = std::chrono::steady_clock::now() + timeout_;
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
          if (ec)
            return self->finish(
                Error{"connect", "resolve " + self->url_.host + ": " + ec.message()});
          self->stream_.expires_at(self->deadline_);
          self->stream_.async_connect(results, [self](beast::error_code ec, const auto&) {
            if (ec) return self->finish(Error{"connect", ec.message()});
            http::async_write(self->stream_, self->req_, [self](beast::error_code ec, size_t) {
              if (ec) return self->finish(Error{"write", ec.message()});
              http::async_read(
                  self->stream_, self->buffer_, self->parser_,
                  [self](beast::error_code ec, size_t) {
                    if (ec) return self->finish(Error{"read", ec.message()});
                    auto res = self->parser_.release();
                    self->finish(HttpResponse{res.result_int(), std::move(res.body())});
                  });
            });
          });
        });
  }

  void cancel() override {
    cancelled_ = true;
    resolver_.cancel();
    beast::error_code ec;
    stream_.socket().close(ec);
  }

 private:
  void finish(Result<HttpResponse> r) {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    if (!cb_) return;
    auto cb = std::move(cb_);
    cb_ = nullptr;
    if (cancelled_) r = Error{"", "cancelled"};
    cb(std::move(r));
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  HttpUrl url_;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point deadline_;
  HttpCallback cb_;
  http::request<http::empty_body> req_;
  http::response_parser<http::string_body> parser_;
  beast::flat_buffer buffer_;
  bool cancelled_ = false;
};

}  // namespace

std::string HttpUrl::text() const {
  bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + port + base;
}

Result<HttpUrl> parseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, 8) == "https://")
    return Error{"url", "https is not supported yet; use http:// ('" + std::string(url) + "')"};
  if (url.substr(0, kScheme.size()) != kScheme)
    return Error{"url", "must start with http:// ('" + std::string(url) + "')"};
  std::string_view rest = url.substr(kScheme.size());
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  HttpUrl out;
  if (slash != std::string_view::npos) {
    out.base = std::string(rest.substr(slash));
    while (!out.base.empty() && out.base.back() == '/') out.base.pop_back();
    if (out.base.find_first_of("?# ") != std::string::npos)
      return Error{"url", "must not carry a query or fragment ('" + std::string(url) + "')"};
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return Error{"url", "unterminated [IPv6] host"};
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error{"url", "garbage after [IPv6] host"};
      port = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty() || out.host.find_first_of("@ ") != std::string::npos)
    return Error{"url", "bad host in '" + std::string(url) + "'"};
  if (!port.empty() || authority.ends_with(':')) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535)
      return Error{"url", "bad port in '" + std::string(url) + "'"};
    out.port = std::to_string(p);
  }
  return out;
}

std::shared_ptr<HttpGet> httpGet(const asio::any_io_executor& executor, const HttpUrl& url,
                                 std::string target, const std::string& token,
                                 std::chrono::milliseconds timeout, size_t body_limit,
                                 HttpCallback callback) {
  auto s = std::make_shared<HttpGetSession>(executor, url, std::move(target), token, timeout,
                                            body_limit, std::move(callback));
  s->start();
  return s;
}

}  // namespace elasticdns::agent
