#include "agent/ops/metrics_http.hpp"

#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace elasticdns::agent {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr std::chrono::seconds kScrapeTimeout{10};

struct Session : std::enable_shared_from_this<Session> {
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  http::response<http::string_body> res;
  const metrics::Registry& registry;
  Session(tcp::socket s, const metrics::Registry& r) : stream(std::move(s)), registry(r) {}
  void start() {
    stream.expires_after(kScrapeTimeout);
    http::async_read(stream, buffer, req,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return;
                       self->respond();
                     });
  }
  void respond() {
    res.version(req.version());
    res.keep_alive(false);
    if (req.method() == http::verb::get && req.target() == "/metrics") {
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = registry.render();
    } else {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain");
      res.body() = "not found: GET /metrics\n";
    }
    res.prepare_payload();
    http::async_write(stream, res, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignore;
      self->stream.socket().shutdown(tcp::socket::shutdown_send, ignore);
    });
  }
};
}  // namespace

struct MetricsHttp::Impl : std::enable_shared_from_this<Impl> {
  asio::io_context& io;
  const metrics::Registry& registry;
  tcp::acceptor acceptor;
  Impl(asio::io_context& i, const metrics::Registry& r) : io(i), registry(r), acceptor(i) {}
  void accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(s), self->registry)->start();
      self->accept();
    });
  }
};

MetricsHttp::MetricsHttp(asio::io_context& io, const metrics::Registry& registry)
    : impl_(std::make_shared<Impl>(io, registry)) {}
MetricsHttp::~MetricsHttp() {
  stop();
}

std::optional<Error> MetricsHttp::listen(const tcp::endpoint& at) {
  beast::error_code ec;
  auto& a = impl_->acceptor;
  a.open(at.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(at, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Error{"metrics_listen", "cannot listen on " + at.address().to_string() + ":" +
                                       std::to_string(at.port()) + ": " + ec.message()};
  impl_->accept();
  return std::nullopt;
}

std::optional<Error> MetricsHttp::adopt(int fd, const tcp::endpoint& at) {
  beast::error_code ec;
  impl_->acceptor.assign(at.protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    return Error{"metrics_listen", "cannot adopt the handed-over listener on " +
                                       at.address().to_string() + ":" + std::to_string(at.port()) +
                                       ": " + ec.message()};
  }
  impl_->accept();
  return std::nullopt;
}

int MetricsHttp::nativeHandle() const {
  return impl_->acceptor.is_open() ? impl_->acceptor.native_handle() : -1;
}

tcp::endpoint MetricsHttp::endpoint() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec);
}

void MetricsHttp::stop() {
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace elasticdns::agent
