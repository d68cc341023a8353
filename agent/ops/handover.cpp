#include "agent/ops/handover.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/endian/conversion.hpp>

namespace elasticdns::agent::handover {
namespace {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

Error fail(std::string reason) {
  return Error{"handover", std::move(reason)};
}

/// Appends `v` in network byte order.
void append16(std::vector<uint8_t>& out, uint16_t v) {
  out.resize(out.size() + 2);
  boost::endian::store_big_u16(&out[out.size() - 2], v);
}
void append32(std::vector<uint8_t>& out, uint32_t v) {
  out.resize(out.size() + 4);
  boost::endian::store_big_u32(&out[out.size() - 4], v);
}

const char* typeName(Type t) {
  switch (t) {
    case Type::kRequest:
      return "request";
    case Type::kSockets:
      return "sockets";
    case Type::kReady:
      return "ready";
    case Type::kRefused:
      return "refused";
  }
  return "?";
}

/// The peer's credentials; an error unless it runs as this process's user or as root.
Result<ucred> checkPeer(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return fail(std::string("SO_PEERCRED: ") + std::strerror(errno));
  if (cred.uid != ::geteuid() && cred.uid != 0)
    return fail("peer PID " + std::to_string(cred.pid) + " runs as uid " +
                std::to_string(cred.uid) + "; only uid " + std::to_string(::geteuid()) +
                " (this agent's) or root may hand over");
  return cred;
}

/// Sends one frame, with `fds` attached (SCM_RIGHTS) when not empty. Never raises SIGPIPE.
std::optional<Error> sendFrame(int fd, const Message& m, const std::vector<int>& fds = {}) {
  std::vector<uint8_t> frame = encode(m);
  iovec iov{frame.data(), frame.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(fds.size() * sizeof(int)));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0) return fail(std::string("sending ") + typeName(m.type) + ": " + std::strerror(errno));
  if (static_cast<size_t>(n) != frame.size())
    return fail(std::string("sending ") + typeName(m.type) + ": short write");
  return std::nullopt;
}

}  // namespace

std::vector<uint8_t> encode(const Message& m) {
  std::vector<uint8_t> payload;
  append32(payload, m.pid);
  if (m.type == Type::kSockets) append16(payload, m.fd_count);
  if (m.type == Type::kRefused)
    payload.insert(
        payload.end(), m.reason.begin(),
        m.reason.begin() + static_cast<std::ptrdiff_t>(std::min(m.reason.size(), kMaxReason)));
  std::vector<uint8_t> out{kProtocolVersion, static_cast<uint8_t>(m.type)};
  append16(out, static_cast<uint16_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Result<Parsed> parse(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return Parsed{};
  if (bytes[0] != kProtocolVersion)
    return fail("the peer speaks handover protocol version " + std::to_string(bytes[0]) +
                ", this agent speaks version " + std::to_string(kProtocolVersion) +
                ": restart with matching agent versions, or stop the old agent first");
  if (bytes.size() < kHeaderSize) return Parsed{};
  uint8_t type = bytes[1];
  size_t length = boost::endian::load_big_u16(&bytes[2]);
  if (type < static_cast<uint8_t>(Type::kRequest) || type > static_cast<uint8_t>(Type::kRefused))
    return fail("unknown message type " + std::to_string(type));
  if (length > kMaxPayload)
    return fail("payload of " + std::to_string(length) + " bytes, more than " +
                std::to_string(kMaxPayload));
  Message m;
  m.type = static_cast<Type>(type);
  size_t want = m.type == Type::kSockets ? 6 : 4;  // PID (+ descriptor count)
  if (m.type == Type::kRefused ? length < want : length != want)
    return fail(std::string(typeName(m.type)) + " message with a payload of " +
                std::to_string(length) + " bytes, want " +
                (m.type == Type::kRefused ? "at least " : "") + std::to_string(want));
  if (bytes.size() < kHeaderSize + length) return Parsed{};
  const uint8_t* p = bytes.data() + kHeaderSize;
  m.pid = boost::endian::load_big_u32(p);
  if (m.type == Type::kSockets) {
    m.fd_count = boost::endian::load_big_u16(p + 4);
    if (m.fd_count > kMaxFds)
      return fail("sockets message announces " + std::to_string(m.fd_count) +
                  " descriptors, more than " + std::to_string(kMaxFds));
  }
  if (m.type == Type::kRefused) m.reason.assign(p + 4, p + length);
  return Parsed{std::move(m), kHeaderSize + length};
}

std::string socketPath(const std::string& state_dir) {
  if (state_dir.empty()) return {};
  return state_dir + (state_dir.back() == '/' ? "" : "/") + kSocketFileName;
}

// ---- the starting agent's side

TakeResult takeSockets(const std::string& path, std::chrono::milliseconds timeout) {
  using Status = TakeResult::Status;
  TakeResult r;
  const auto deadline = Clock::now() + timeout;
  auto failed = [&r](std::string why) {
    r.status = Status::kFailed;
    r.detail = std::move(why);
    r.connection = UniqueFd();
    return std::move(r);
  };
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    r.detail = path + " is longer than a unix socket path may be";
    return r;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return failed(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    if (err == ENOENT) return r;  // kNoAgent
    if (err == ECONNREFUSED) {
      r.status = Status::kStale;
      r.detail = path + ": no agent listens (one was killed?)";
      return r;
    }
    if (err == EACCES || err == EPERM) {
      r.detail = path + ": " + std::strerror(err) + " (another user's agent?)";
      return r;
    }
    return failed("connecting to " + path + ": " + std::strerror(err));
  }
  auto peer = checkPeer(fd.get());
  if (!peer) return failed(peer.error().reason);
  r.old_pid = static_cast<uint32_t>(peer->pid);
  Message request;
  request.pid = static_cast<uint32_t>(::getpid());
  if (auto e = sendFrame(fd.get(), request)) return failed(e->reason);

  std::vector<uint8_t> buf;
  std::vector<UniqueFd> fds;  // closed on every failure path
  std::vector<char> control(CMSG_SPACE(kMaxFds * sizeof(int)));
  const std::string who = "the agent at " + path + " (PID " + std::to_string(r.old_pid) + ")";
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0)
      return failed(who + " sent no sockets within " + std::to_string(timeout.count()) + " ms");
    pollfd p{fd.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) return failed(std::string("poll: ") + std::strerror(errno));
    if (ready <= 0) continue;
    uint8_t chunk[kHeaderSize + kMaxPayload];
    iovec iov{chunk, sizeof chunk};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ssize_t n = ::recvmsg(fd.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return failed(who + ": " + std::strerror(errno));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int one;
        std::memcpy(&one, CMSG_DATA(c) + i * sizeof(int), sizeof one);
        fds.emplace_back(one);
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) return failed(who + " sent more descriptors than allowed");
    if (n == 0) return failed(who + " closed the connection before sending its sockets");
    buf.insert(buf.end(), chunk, chunk + n);
    auto parsed = parse(buf);
    if (!parsed) return failed(who + ": " + parsed.error().reason);
    if (!parsed->message) continue;
    const Message& m = *parsed->message;
    if (m.type == Type::kRefused) return failed(who + " refused: " + m.reason);
    if (m.type != Type::kSockets)
      return failed(who + " sent a " + typeName(m.type) + " message, not its sockets");
    if (fds.size() != m.fd_count)
      return failed(who + " announced " + std::to_string(m.fd_count) + " descriptors and sent " +
                    std::to_string(fds.size()));
    break;
  }
  for (auto& f : fds) r.sockets.add(f.release(), "handed-over");
  r.status = Status::kTaken;
  r.connection = std::move(fd);
  return r;
}

std::optional<Error> sendReady(int connection) {
  Message ready;
  ready.type = Type::kReady;
  ready.pid = static_cast<uint32_t>(::getpid());
  return sendFrame(connection, ready);
}

// ---- the running agent's side

struct Listener::Impl : std::enable_shared_from_this<Impl> {
  struct Session;

  asio::io_context& io;
  std::string path;
  SocketsFn sockets;
  ReadyFn ready;
  local::acceptor acceptor;
  std::weak_ptr<Session> active;  // the handover waiting for kReady, if any
  bool done = false;

  Impl(asio::io_context& i, std::string p, SocketsFn s, ReadyFn r)
      : io(i), path(std::move(p)), sockets(std::move(s)), ready(std::move(r)), acceptor(i) {}

  void accept();
};

/// One connection: read the request, send the sockets, wait for kReady (each step bounded).
struct Listener::Impl::Session : std::enable_shared_from_this<Session> {
  std::shared_ptr<Impl> owner;
  local::socket socket;
  asio::steady_timer timer;
  std::vector<uint8_t> buf;
  std::array<uint8_t, kHeaderSize + kMaxPayload> chunk{};
  uint32_t peer_pid = 0;
  bool sent = false;  // the sockets went out: now waiting for kReady

  Session(std::shared_ptr<Impl> o, local::socket s)
      : owner(std::move(o)), socket(std::move(s)), timer(owner->io) {}

  void close() {
    boost::system::error_code ignore;
    timer.cancel();
    socket.close(ignore);
  }

  void refuse(const std::string& why) {
    Message m;
    m.type = Type::kRefused;
    m.pid = static_cast<uint32_t>(::getpid());
    m.reason = why;
    sendFrame(socket.native_handle(), m);
    if (peer_pid != 0)
      spdlog::warn("handover: refused PID {}: {}", peer_pid, why);
    else
      spdlog::warn("handover: refused a connection: {}", why);
    close();
  }

  void start() {
    auto peer = checkPeer(socket.native_handle());
    if (!peer) {
      refuse(peer.error().reason);
      return;
    }
    peer_pid = static_cast<uint32_t>(peer->pid);
    arm(kTakeTimeout);
    read();
  }

  void arm(Clock::duration bound) {
    timer.expires_after(bound);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (self->sent)
        spdlog::warn("handover: PID {} was not ready within {} s; still serving", self->peer_pid,
                     kReadyTimeout.count());
      boost::system::error_code ignore;
      self->socket.close(ignore);
    });
  }

  void read() {
    socket.async_read_some(asio::buffer(chunk),
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       size_t n) { self->onRead(ec, n); });
  }

  void onRead(const boost::system::error_code& ec, size_t n) {
    if (ec) {
      if (sent && ec != asio::error::operation_aborted)
        spdlog::warn("handover: PID {} went away before it was ready ({}); still serving", peer_pid,
                     ec.message());
      close();
      return;
    }
    buf.insert(buf.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    auto parsed = parse(buf);
    if (!parsed) {
      if (sent) {
        spdlog::warn("handover: PID {}: {}; still serving", peer_pid, parsed.error().reason);
        close();
      } else {
        refuse(parsed.error().reason);
      }
      return;
    }
    if (!parsed->message) {
      read();
      return;
    }
    Message m = *parsed->message;
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(parsed->consumed));
    if (!sent) {
      onRequest(m);
    } else if (m.type == Type::kReady) {
      close();
      owner->done = true;
      owner->ready(peer_pid);
    } else {
      spdlog::warn("handover: PID {} sent a {} message, not ready; still serving", peer_pid,
                   typeName(m.type));
      close();
    }
  }

  void onRequest(const Message& m) {
    if (m.type != Type::kRequest) {
      refuse(std::string("expected a request, got a ") + typeName(m.type) + " message");
      return;
    }
    if (owner->done) {
      refuse("this agent has already handed over its sockets");
      return;
    }
    if (auto other = owner->active.lock()) {
      refuse("a handover to PID " + std::to_string(other->peer_pid) + " is in progress");
      return;
    }
    std::vector<int> fds = owner->sockets();
    if (fds.size() > kMaxFds) {
      refuse(std::to_string(fds.size()) + " sockets, more than one message carries (" +
             std::to_string(kMaxFds) + ")");
      return;
    }
    Message reply;
    reply.type = Type::kSockets;
    reply.pid = static_cast<uint32_t>(::getpid());
    reply.fd_count = static_cast<uint16_t>(fds.size());
    if (auto e = sendFrame(socket.native_handle(), reply, fds)) {
      spdlog::warn("handover: PID {}: {}; still serving", peer_pid, e->reason);
      close();
      return;
    }
    sent = true;
    owner->active = shared_from_this();
    spdlog::info("handover: passed {} sockets to PID {}; serving until it is ready", fds.size(),
                 peer_pid);
    arm(kReadyTimeout);
    read();
  }
};

void Listener::Impl::accept() {
  acceptor.async_accept(
      [self = shared_from_this()](const boost::system::error_code& ec, local::socket s) {
        if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
        if (!ec) std::make_shared<Session>(self, std::move(s))->start();
        self->accept();
      });
}

Listener::Listener(asio::io_context& io, std::string path, SocketsFn sockets, ReadyFn ready)
    : impl_(std::make_shared<Impl>(io, std::move(path), std::move(sockets), std::move(ready))) {}

Listener::~Listener() {
  stop();
}

std::optional<Error> Listener::listen() {
  Impl& s = *impl_;
  if (s.path.size() >= sizeof(sockaddr_un{}.sun_path))
    return fail(s.path + " is longer than a unix socket path may be");
  std::error_code dir_ec;  // a state_dir not created yet (no snapshot saved so far)
  std::filesystem::create_directories(std::filesystem::path(s.path).parent_path(), dir_ec);
  if (::unlink(s.path.c_str()) != 0 && errno != ENOENT)
    return fail("removing " + s.path + ": " + std::strerror(errno));
  boost::system::error_code ec;
  s.acceptor.open(local(), ec);
  if (!ec) s.acceptor.bind(local::endpoint(s.path), ec);
  if (!ec && ::chmod(s.path.c_str(), S_IRUSR | S_IWUSR) != 0)
    ec.assign(errno, boost::system::system_category());
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::string why = ec.message();
    s.acceptor.close(ec);
    return fail("listening on " + s.path + ": " + why);
  }
  impl_->accept();
  return std::nullopt;
}

void Listener::stop() {
  boost::system::error_code ignore;
  impl_->acceptor.close(ignore);
  if (auto a = impl_->active.lock()) a->close();
}

}  // namespace elasticdns::agent::handover
