// Hot handover (agent/ops/handover.hpp): the message framing, and the exchange over real unix
// sockets with real UDP/TCP descriptors passed by SCM_RIGHTS (a Listener on its own
// io_context thread, the starting agent's takeSockets()).
#include "agent/ops/handover.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>

namespace elasticdns::agent::handover {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> bytes(std::initializer_list<int> v) {
  std::vector<uint8_t> out;
  for (int b : v) out.push_back(static_cast<uint8_t>(b));
  return out;
}

TEST(HandoverFraming, RoundTripsEveryType) {
  Message request{Type::kRequest, 1234, 0, ""};
  Message sockets{Type::kSockets, 0xA1B2C3D4, 17, ""};
  Message ready{Type::kReady, 42, 0, ""};
  Message refused{Type::kRefused, 7, 0, "a handover to PID 9 is in progress"};
  for (const Message& m : {request, sockets, ready, refused}) {
    auto frame = encode(m);
    ASSERT_EQ(frame[0], kProtocolVersion);
    auto p = parse(frame);
    ASSERT_TRUE(p) << p.error().message();
    ASSERT_TRUE(p->message);
    EXPECT_EQ(*p->message, m);
    EXPECT_EQ(p->consumed, frame.size());
  }
  EXPECT_EQ(encode(sockets), bytes({1, 2, 0, 6, 0xA1, 0xB2, 0xC3, 0xD4, 0, 17}));
}

TEST(HandoverFraming, IncompleteInputAsksForMore) {
  auto frame = encode(Message{Type::kSockets, 99, 3, ""});
  for (size_t n = 0; n < frame.size(); ++n) {
    auto p = parse(std::span<const uint8_t>(frame.data(), n));
    ASSERT_TRUE(p) << n << ": " << p.error().message();
    EXPECT_FALSE(p->message) << n;
  }
  // Two messages back to back: the first is parsed, `consumed` says where the next begins.
  auto two = encode(Message{Type::kReady, 5, 0, ""});
  auto more = encode(Message{Type::kRequest, 6, 0, ""});
  two.insert(two.end(), more.begin(), more.end());
  auto p = parse(two);
  ASSERT_TRUE(p && p->message);
  EXPECT_EQ(p->message->type, Type::kReady);
  EXPECT_EQ(p->consumed, 8u);
}

TEST(HandoverFraming, BadInputGetsAClearError) {
  struct Case {
    std::vector<uint8_t> in;
    const char* says;
  };
  const Case cases[] = {
      {bytes({2, 1, 0, 4, 0, 0, 0, 1}), "protocol version 2, this agent speaks version 1"},
      {bytes({0}), "protocol version 0"},
      {bytes({'G', 'E', 'T', ' '}), "protocol version 71"},
      {bytes({1, 9, 0, 4, 0, 0, 0, 1}), "unknown message type 9"},
      {bytes({1, 0, 0, 4, 0, 0, 0, 1}), "unknown message type 0"},
      {bytes({1, 1, 0, 5, 0, 0, 0, 1, 0}), "request message with a payload of 5 bytes, want 4"},
      {bytes({1, 2, 0, 4, 0, 0, 0, 1}), "sockets message with a payload of 4 bytes, want 6"},
      {bytes({1, 4, 0, 2, 0, 0}), "refused message with a payload of 2 bytes, want at least 4"},
      {bytes({1, 4, 0x10, 0, 0, 0}), "payload of 4096 bytes, more than 512"},
      {bytes({1, 2, 0, 6, 0, 0, 0, 1, 1, 0}), "announces 256 descriptors, more than 253"},
  };
  for (const auto& c : cases) {
    auto p = parse(c.in);
    ASSERT_FALSE(p) << c.says;
    EXPECT_EQ(p.error().field, "handover");
    EXPECT_NE(p.error().reason.find(c.says), std::string::npos) << p.error().reason;
  }
}

TEST(HandoverFraming, LongReasonIsCut) {
  Message m{Type::kRefused, 1, 0, std::string(2000, 'x')};
  auto p = parse(encode(m));
  ASSERT_TRUE(p && p->message);
  EXPECT_EQ(p->message->reason.size(), kMaxReason);
}

TEST(HandoverPath, InStateDir) {
  EXPECT_EQ(socketPath(""), "");
  EXPECT_EQ(socketPath("/var/lib/elasticdns"), "/var/lib/elasticdns/handover.sock");
  EXPECT_EQ(socketPath("state/"), "state/handover.sock");
}

/// A temp dir with a control socket path in it, removed at the end.
struct TempDir {
  fs::path dir;
  TempDir() {
    char tmpl[] = "/tmp/edns-handover-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(dir); }
  std::string sock() const { return socketPath(dir.string()); }
};

int boundLoopback(int type, uint16_t port, uint16_t* got) {
  int fd = ::socket(AF_INET, type, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) return -1;
  if (type == SOCK_STREAM && ::listen(fd, 8) != 0) return -1;
  socklen_t len = sizeof sin;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  *got = ntohs(sin.sin_port);
  return fd;
}

TEST(HandoverExchange, NoAgentAndStaleSocket) {
  TempDir t;
  auto none = takeSockets(t.sock(), std::chrono::milliseconds(500));
  EXPECT_EQ(none.status, TakeResult::Status::kNoAgent);
  EXPECT_TRUE(none.detail.empty());

  // A socket file nobody listens on (its agent was SIGKILLed): ECONNREFUSED.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, t.sock().c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  auto stale = takeSockets(t.sock(), std::chrono::milliseconds(500));
  EXPECT_EQ(stale.status, TakeResult::Status::kStale);
  EXPECT_NE(stale.detail.find("no agent listens"), std::string::npos) << stale.detail;
}

/// A fake old agent: accepts one connection, reads the request, then runs `then` on it.
template <typename Then>
std::thread fakeAgent(const std::string& path, Then then) {
  int lfd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  EXPECT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(lfd, 1), 0);
  return std::thread([lfd, then] {
    int c = ::accept(lfd, nullptr, nullptr);
    uint8_t buf[64];
    EXPECT_EQ(::recv(c, buf, sizeof buf, 0), 8);  // the request
    then(c);
    ::close(c);
    ::close(lfd);
  });
}

TEST(HandoverExchange, GarbageAnotherVersionOrSilenceFailsCleanlyAndInTime) {
  {
    TempDir t;
    auto peer = fakeAgent(t.sock(), [](int c) { ::send(c, "HTTP/1.1 200 OK\r\n", 17, 0); });
    auto r = takeSockets(t.sock(), std::chrono::milliseconds(2000));
    peer.join();
    EXPECT_EQ(r.status, TakeResult::Status::kFailed);
    EXPECT_NE(r.detail.find("protocol version 72"), std::string::npos) << r.detail;
    EXPECT_FALSE(r.connection);
  }
  {
    TempDir t;
    auto peer = fakeAgent(t.sock(), [](int c) {
      auto v2 = encode(Message{Type::kSockets, 1, 0, ""});
      v2[0] = 2;
      ::send(c, v2.data(), v2.size(), 0);
    });
    auto r = takeSockets(t.sock(), std::chrono::milliseconds(2000));
    peer.join();
    EXPECT_EQ(r.status, TakeResult::Status::kFailed);
    EXPECT_NE(r.detail.find("version 2, this agent speaks version 1"), std::string::npos)
        << r.detail;
  }
  {
    // Dies after sending the header only.
    TempDir t;
    auto peer = fakeAgent(t.sock(), [](int c) { ::send(c, "\x01\x02\x00\x06", 4, 0); });
    auto r = takeSockets(t.sock(), std::chrono::milliseconds(2000));
    peer.join();
    EXPECT_EQ(r.status, TakeResult::Status::kFailed);
    EXPECT_NE(r.detail.find("closed the connection"), std::string::npos) << r.detail;
  }
  {
    // Announces two descriptors, sends none.
    TempDir t;
    auto peer = fakeAgent(t.sock(), [](int c) {
      auto m = encode(Message{Type::kSockets, 1, 2, ""});
      ::send(c, m.data(), m.size(), 0);
    });
    auto r = takeSockets(t.sock(), std::chrono::milliseconds(2000));
    peer.join();
    EXPECT_EQ(r.status, TakeResult::Status::kFailed);
    EXPECT_NE(r.detail.find("announced 2 descriptors and sent 0"), std::string::npos) << r.detail;
  }
  {
    // Never answers: the bound holds.
    TempDir t;
    std::atomic<bool> done{false};
    auto peer = fakeAgent(t.sock(), [&done](int) {
      while (!done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    });
    auto t0 = std::chrono::steady_clock::now();
    auto r = takeSockets(t.sock(), std::chrono::milliseconds(300));
    auto took = std::chrono::steady_clock::now() - t0;
    done = true;
    peer.join();
    EXPECT_EQ(r.status, TakeResult::Status::kFailed);
    EXPECT_NE(r.detail.find("sent no sockets within 300 ms"), std::string::npos) << r.detail;
    EXPECT_LT(took, std::chrono::seconds(2));
  }
}

/// A real Listener on its own io_context thread.
struct RunningListener {
  boost::asio::io_context io;
  std::unique_ptr<Listener> listener;
  std::thread thread;
  std::atomic<uint32_t> ready_pid{0};
  RunningListener(const std::string& path, std::vector<int> fds) {
    listener = std::make_unique<Listener>(
        io, path, [fds] { return fds; }, [this](uint32_t pid) { ready_pid = pid; });
    auto e = listener->listen();
    EXPECT_FALSE(e) << e->message();
    thread = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io);
      io.run();
    });
  }
  ~RunningListener() {
    io.stop();
    thread.join();
    listener->stop();
  }
};

TEST(HandoverExchange, PassesEverySocketAndWaitsForReady) {
  TempDir t;
  uint16_t port = 0, port2 = 0, tport = 0;
  int u1 = boundLoopback(SOCK_DGRAM, 0, &port);
  int u2 = boundLoopback(SOCK_DGRAM, port, &port2);  // the same port's SO_REUSEPORT group
  int tl = boundLoopback(SOCK_STREAM, port, &tport);
  ASSERT_GE(u1, 0);
  ASSERT_GE(u2, 0);
  ASSERT_GE(tl, 0);
  ASSERT_EQ(port, port2);
  RunningListener old(t.sock(), {u1, u2, tl});
  EXPECT_EQ(fs::status(t.sock()).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  auto r = takeSockets(t.sock(), std::chrono::milliseconds(2000));
  ASSERT_EQ(r.status, TakeResult::Status::kTaken) << r.detail;
  EXPECT_EQ(r.old_pid, static_cast<uint32_t>(::getpid()));
  EXPECT_TRUE(r.sockets.ignored.empty());
  auto udp = r.sockets.takeAll(false, "127.0.0.1", port);
  auto tcp = r.sockets.takeAll(true, "127.0.0.1", port);
  EXPECT_EQ(udp.size(), 2u);
  EXPECT_EQ(tcp.size(), 1u);
  EXPECT_TRUE(r.sockets.sockets.empty());
  // The same kernel sockets: a datagram sent to the port is readable on a received descriptor.
  for (int fd : udp) EXPECT_NE(fd, u1);

  // A second agent asking while the first handover waits for ready is refused.
  auto second = takeSockets(t.sock(), std::chrono::milliseconds(2000));
  EXPECT_EQ(second.status, TakeResult::Status::kFailed);
  EXPECT_NE(second.detail.find("in progress"), std::string::npos) << second.detail;

  EXPECT_EQ(old.ready_pid.load(), 0u);
  EXPECT_FALSE(sendReady(r.connection.get()));
  for (int i = 0; i < 400 && old.ready_pid.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(old.ready_pid.load(), static_cast<uint32_t>(::getpid()));
  // Handed over: later requests are refused.
  auto late = takeSockets(t.sock(), std::chrono::milliseconds(2000));
  EXPECT_EQ(late.status, TakeResult::Status::kFailed);
  EXPECT_NE(late.detail.find("already handed over"), std::string::npos) << late.detail;
  for (int fd : udp) ::close(fd);
  for (int fd : tcp) ::close(fd);
  ::close(u1);
  ::close(u2);
  ::close(tl);
}

TEST(HandoverExchange, ListenerRefusesAnotherVersionAndKeepsServing) {
  TempDir t;
  uint16_t port = 0;
  int u = boundLoopback(SOCK_DGRAM, 0, &port);
  RunningListener old(t.sock(), {u});
  {
    int c = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, t.sock().c_str());
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    auto v9 = encode(Message{Type::kRequest, 1, 0, ""});
    v9[0] = 9;
    ::send(c, v9.data(), v9.size(), MSG_NOSIGNAL);
    std::vector<uint8_t> got(600);
    ssize_t n = ::recv(c, got.data(), got.size(), 0);
    ASSERT_GT(n, 0);
    got.resize(static_cast<size_t>(n));
    auto p = parse(got);
    ASSERT_TRUE(p && p->message);
    EXPECT_EQ(p->message->type, Type::kRefused);
    EXPECT_NE(p->message->reason.find("version 9"), std::string::npos) << p->message->reason;
    ::close(c);
  }
  // The new agent dies before ready: the old one keeps its sockets and hands them over later.
  {
    auto r = takeSockets(t.sock(), std::chrono::milliseconds(2000));
    ASSERT_EQ(r.status, TakeResult::Status::kTaken) << r.detail;
  }  // closed without kReady
  auto r = takeSockets(t.sock(), std::chrono::milliseconds(2000));
  for (int i = 0; i < 100 && r.status != TakeResult::Status::kTaken; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    r = takeSockets(t.sock(), std::chrono::milliseconds(2000));
  }
  ASSERT_EQ(r.status, TakeResult::Status::kTaken) << r.detail;
  EXPECT_EQ(old.ready_pid.load(), 0u);
  ::close(u);
}

TEST(HandoverExchange, ListenerRefusesAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  constexpr uid_t kNobody = 65534;
  TempDir t;
  uint16_t port = 0;
  int u = boundLoopback(SOCK_DGRAM, 0, &port);
  RunningListener old(t.sock(), {u});
  // Let the other user reach the socket, so that only the SO_PEERCRED check stands in the way.
  ASSERT_EQ(::chmod(t.dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(t.sock().c_str(), 0666), 0);
  const std::string path = t.sock();
  const auto request = encode(Message{Type::kRequest, 1, 0, ""});
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // async-signal-safe calls only: the parent has threads
    if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) ::_exit(10);
    int c = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(11);
    ::send(c, request.data(), request.size(), MSG_NOSIGNAL);
    uint8_t got[600];
    ssize_t n = ::recv(c, got, sizeof got, 0);
    // A refusal, no descriptor: header 1, 4 (kRefused).
    if (n < static_cast<ssize_t>(kHeaderSize) || got[0] != 1 || got[1] != 4) ::_exit(12);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The agent itself still hands over.
  auto r = takeSockets(t.sock(), std::chrono::milliseconds(2000));
  EXPECT_EQ(r.status, TakeResult::Status::kTaken) << r.detail;
  ::close(u);
}

TEST(InheritedSocketsTest, TakeAllAndAddClassify) {
  uint16_t port = 0, p2 = 0;
  int u1 = boundLoopback(SOCK_DGRAM, 0, &port);
  int u2 = boundLoopback(SOCK_DGRAM, port, &p2);
  int unix_fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  InheritedSockets s;
  s.add(u1, "test");
  s.add(u2, "test");
  s.add(unix_fd, "test");
  ASSERT_EQ(s.ignored.size(), 1u);
  EXPECT_NE(s.ignored[0].find("test descriptor"), std::string::npos);
  EXPECT_TRUE(s.takeAll(true, "127.0.0.1", port).empty());
  auto all = s.takeAll(false, "127.0.0.1", port);
  EXPECT_EQ(all.size(), 2u);
  EXPECT_TRUE(s.sockets.empty());
  ::close(u1);
  ::close(u2);
}

}  // namespace
}  // namespace elasticdns::agent::handover
