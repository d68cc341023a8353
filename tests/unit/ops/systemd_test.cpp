// takeSystemdSockets() with real sockets passed the way systemd passes them: dup'ed to
// descriptors 3, 4, ... with LISTEN_FDS and LISTEN_PID set. Runs in a forked child (a death
// test), since it rearranges the process's descriptors and environment.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "agent/ops/systemd.hpp"

namespace elasticdns::agent {
namespace {

constexpr int kHighFd = 200;  // where sockets wait before being moved to 3, 4, 5

int boundInet(int type, uint16_t* port) {
  int fd = socket(AF_INET, type, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) return -1;
  if (type == SOCK_STREAM && listen(fd, 8) != 0) return -1;
  socklen_t len = sizeof sin;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  *port = ntohs(sin.sin_port);
  return fcntl(fd, F_DUPFD, kHighFd);
}

// Exit code: 0 when every expectation holds, else the number of the failed check.
int checkInChild() {
  uint16_t udp_port = 0, tcp_port = 0;
  int udp = boundInet(SOCK_DGRAM, &udp_port);
  int tcp = boundInet(SOCK_STREAM, &tcp_port);
  int unix_fd = fcntl(socket(AF_UNIX, SOCK_STREAM, 0), F_DUPFD, kHighFd);
  if (udp < 0 || tcp < 0 || unix_fd < 0) return 1;
  if (dup2(udp, SD_LISTEN_FDS_START) < 0 || dup2(tcp, SD_LISTEN_FDS_START + 1) < 0 ||
      dup2(unix_fd, SD_LISTEN_FDS_START + 2) < 0)
    return 2;
  setenv("LISTEN_FDS", "3", 1);
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);

  InheritedSockets s = takeSystemdSockets();
  if (getenv("LISTEN_FDS") || getenv("LISTEN_PID")) return 3;  // unset for children
  if (s.sockets.size() != 2 || s.ignored.size() != 1) return 4;
  if (s.take(true, "127.0.0.1", udp_port)) return 5;   // wrong kind
  if (s.take(false, "127.0.0.2", udp_port)) return 6;  // wrong address
  auto u = s.take(false, "127.0.0.1", udp_port);
  if (!u || *u != SD_LISTEN_FDS_START) return 7;
  if (s.take(false, "127.0.0.1", udp_port)) return 8;  // taken once
  auto t = s.take(true, "127.0.0.1", tcp_port);
  if (!t || *t != SD_LISTEN_FDS_START + 1) return 9;
  if (!s.sockets.empty()) return 10;
  if (fcntl(SD_LISTEN_FDS_START + 2, F_GETFD) != -1) return 11;  // the unix socket was closed
  // Without LISTEN_FDS: nothing.
  if (!takeSystemdSockets().sockets.empty()) return 12;
  return 0;
}

TEST(SystemdSocketsDeathTest, AdoptsInheritedUdpAndTcpByAddress) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::_Exit(checkInChild()), ::testing::ExitedWithCode(0), "");
}

TEST(SystemdSockets, NothingWhenNotActivated) {
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_PID");
  EXPECT_TRUE(takeSystemdSockets().sockets.empty());
}

}  // namespace
}  // namespace elasticdns::agent
