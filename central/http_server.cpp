#include "central/http_server.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include <algorithm>
#include <array>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <sstream>
#include <vector>

#include "elasticdns/agent_report.hpp"

namespace elasticdns::central {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// After an error response to a request it did not read to the end (too large, malformed), the
// server stops sending and reads and discards what the client still sends, for a bounded time
// and size, before it closes: closing with unread data makes the kernel reset the connection,
// and the reset can destroy the response before the client reads it (nginx's lingering_close).
constexpr std::chrono::seconds kLingerTime{2};
constexpr size_t kLingerBytes = 4 * kMaxBodyBytes;
constexpr size_t kLingerChunkBytes = 16 << 10;

// Status line and header fields of every response (the body's length is set by the caller).
void setHead(http::response<http::empty_body>& h, const Response& r, unsigned version,
             bool keep_alive) {
  h.version(version);
  h.result(r.status);
  h.set(http::field::server, "elasticdns-central");
  h.set(http::field::content_type, r.content_type);
  h.set("Content-Security-Policy", kContentSecurityPolicy);
  h.set("X-Content-Type-Options", "nosniff");
  h.set("Referrer-Policy", "no-referrer");
  h.set(http::field::cache_control, "no-store");
  for (auto& [k, v] : r.headers) h.set(k, v);
  h.keep_alive(keep_alive);
}

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer& server) : stream_(std::move(socket)), server_(server) {
    server_.sessionOpened();
  }
  ~Session() { server_.sessionClosed(); }

  void run() { readRequest(); }

 private:
  void readRequest() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(kMaxBodyBytes);
    stream_.expires_after(server_.limits().idle_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return close();
    }
    if (ec) {
      Error e{"request", "malformed HTTP request"};
      unsigned status = 400;
      if (ec == http::error::header_limit) {
        status = 431;
        e = {"headers", "larger than 8 KiB"};
      } else if (ec == http::error::body_limit) {
        status = 413;
        e = {"body", "larger than 1 MiB"};
      }
      keep_alive_ = false;
      linger_ = true;
      Response r;
      r.status = status;
      r.body = std::make_shared<const std::string>(Router::errorBody(e));
      return write(std::move(r));
    }
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    head_ = msg.method() == http::verb::head;
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    if (auto it = msg.find(http::field::authorization); it != msg.end())
      req.authorization = std::string(it->value());
    if (auto it = msg.find(report::kHeader); it != msg.end())
      req.agent_report = std::string(it->value());
    req.body = std::move(msg.body());
    stream_.expires_never();
    auto self = shared_from_this();
    watch_id_ =
        server_.router().handle(req, [self](Response r) { self->onResponse(std::move(r)); });
    if (watch_id_) {
      server_.watchAdded();
      watchForHangup();
    }
  }

  // While a long-poll waits, notice a client that goes away, so its watcher slot is freed.
  void watchForHangup() {
    stream_.socket().async_wait(tcp::socket::wait_read,
                                [self = shared_from_this()](beast::error_code ec) {
                                  if (ec || !self->watch_id_) return;
                                  char byte;
                                  beast::error_code peek_ec;
                                  size_t n = self->stream_.socket().receive(
                                      asio::buffer(&byte, 1), tcp::socket::message_peek, peek_ec);
                                  if (n == 0 || peek_ec) {
                                    self->server_.router().cancelWatch(*self->watch_id_);
                                    self->watch_id_.reset();
                                    self->close();
                                  }
                                  // Data (a pipelined request) stays in the socket for the next
                                  // read.
                                });
  }

  // The hang-up wait of a long-poll is cancelled after its response went out (onWrite, or
  // before an async_write): a fan-out only writes.
  void onResponse(Response r) {
    if (watch_id_) {
      watch_id_.reset();
      hangup_wait_ = true;
    }
    write(std::move(r));
  }

  void cancelHangupWait() {
    if (!hangup_wait_) return;
    hangup_wait_ = false;
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
  }

  // The head comes from HttpServer::sharedHead: the long-polls a commit wakes all get the same
  // body and the same head bytes. HEAD gets the head alone (its Content-Length is the body's).
  // The response goes out in one non-blocking sendmsg when the socket buffer takes it whole (a
  // delta to a woken watcher almost always does): no Asio operation, timer or allocation per
  // watcher, and what follows the write runs after the fan-out (HttpServer::afterWrite). The rest
  // of a response the buffer does not take (a large body, a slow reader) goes by async_write.
  void write(Response r) {
    body_ = r.body;
    head_bytes_ = server_.sharedHead(r, version_, keep_alive_);
    std::array<asio::const_buffer, 2> bytes{
        asio::buffer(*head_bytes_), body_ && !head_ ? asio::buffer(*body_) : asio::const_buffer()};
    const size_t total = bytes[0].size() + bytes[1].size();
    std::array<iovec, 2> iov{iovec{const_cast<void*>(bytes[0].data()), bytes[0].size()},
                             iovec{const_cast<void*>(bytes[1].data()), bytes[1].size()}};
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = bytes[1].size() ? 2 : 1;
    ssize_t n = ::sendmsg(stream_.socket().native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return onWrite(beast::error_code(errno, asio::error::get_system_category()));
    }
    const size_t sent = n > 0 ? static_cast<size_t>(n) : 0;
    if (sent == total) return server_.afterWrite(shared_from_this());
    cancelHangupWait();  // before the write is pending: cancel() stops every operation
    beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(bytes);
    rest.consume(sent);
    stream_.expires_after(server_.limits().idle_timeout);
    asio::async_write(stream_, rest, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->onWrite(ec);
    });
  }

 public:
  void onWrite(beast::error_code ec) {
    cancelHangupWait();
    head_bytes_.reset();
    body_.reset();
    if (!ec && linger_) return lingeringClose();
    if (ec || !keep_alive_) return close();
    readRequest();
  }

 private:
  void lingeringClose() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    discard_.resize(kLingerChunkBytes);
    discardInput();
  }

  // Ends at the client's EOF, an error, kLingerTime (the stream's timeout) or kLingerBytes.
  void discardInput() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->discarded_ += n;
                              if (ec || self->discarded_ >= kLingerBytes) return self->close();
                              self->discardInput();
                            });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  HttpServer& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<const std::string> body_;        // keeps the span's bytes alive during the write
  std::shared_ptr<const std::string> head_bytes_;  // the shared head being written
  std::optional<uint64_t> watch_id_;
  bool keep_alive_ = true;
  bool head_ = false;
  bool linger_ = false;       // close with lingeringClose()
  bool hangup_wait_ = false;  // a long-poll's hang-up wait may still be pending
  std::vector<char> discard_;
  size_t discarded_ = 0;
  unsigned version_ = 11;
};

HttpServer::HttpServer(asio::io_context& io, Router& router, ServerLimits limits)
    : io_(io),
      router_(router),
      limits_(limits),
      acceptor_(io),
      watch_timer_(io),
      accept_retry_(io) {
  // Every connection's session can be in afterWrite's list at once: room for the default number
  // (192 KB each), so a first fan-out does not reallocate it as it grows.
  written_.reserve(std::min(limits_.max_connections, kDefaultMaxConnections));
  draining_.reserve(std::min(limits_.max_connections, kDefaultMaxConnections));
  auto& reg = router.metrics();
  rejected_connections_ =
      &reg.counter("elasticdns_central_connections_rejected_total",
                   "Connections closed at once because max_connections was reached");
  reg.callback("elasticdns_central_connections", "Open HTTP connections",
               [this] { return double(connections_); });
}

Result<tcp::endpoint> HttpServer::listen(const std::string& address, uint16_t port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) return Error{"listen", "bad address '" + address + "'"};
  tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{"listen", address + ":" + std::to_string(port) + ": " + ec.message()};
  return acceptor_.local_endpoint();
}

void HttpServer::start() {
  accept();
}

void HttpServer::stop() {
  beast::error_code ignored;
  acceptor_.close(ignored);
  watch_timer_.cancel();
  accept_retry_.cancel();
}

void HttpServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (connections_ >= limits_.max_connections) {
        rejected_connections_->inc();
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), *this)->run();
      }
    } else {
      // EMFILE and friends: retry a little later instead of spinning; the error clears when
      // connections close.
      spdlog::warn("central.http: accept: {}", ec.message());
      accept_retry_.expires_after(kAcceptRetryDelay);
      accept_retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) accept();
      });
      return;
    }
    accept();
  });
}

std::shared_ptr<const std::string> HttpServer::sharedHead(const Response& r, unsigned version,
                                                          bool keep_alive) {
  auto& c = head_cache_;
  if (c.head && c.body == r.body && c.status == r.status && c.version == version &&
      c.keep_alive == keep_alive && c.content_type == r.content_type && c.headers == r.headers)
    return c.head;
  http::response<http::empty_body> h;
  setHead(h, r, version, keep_alive);
  h.content_length(r.body ? r.body->size() : 0);
  std::ostringstream out;
  out << h.base();
  c = {r.body,
       r.status,
       version,
       keep_alive,
       r.content_type,
       r.headers,
       std::make_shared<const std::string>(std::move(out).str())};
  return c.head;
}

void HttpServer::afterWrite(std::shared_ptr<Session> session) {
  written_.push_back(std::move(session));
  if (written_.size() > 1) return;  // the drain is already posted
  asio::post(io_, [this] {
    draining_.swap(written_);  // both keep their capacity
    for (auto& s : draining_) s->onWrite({});
    draining_.clear();
  });
}

void HttpServer::watchAdded() {
  auto next = router_.nextWatchDeadline();
  if (next && (!armed_for_ || *next < *armed_for_)) armWatchTimer();
}

void HttpServer::armWatchTimer() {
  auto next = router_.nextWatchDeadline();
  armed_for_ = next;
  if (!next) return;
  watch_timer_.expires_at(*next);
  watch_timer_.async_wait([this](beast::error_code ec) {
    if (ec) return;  // re-armed or stopped
    armed_for_.reset();
    router_.expireWatchers(Router::Clock::now());
    armWatchTimer();
  });
}

}  // namespace elasticdns::central
