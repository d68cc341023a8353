#include "agent/util/inherited_sockets.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace elasticdns::agent {

std::optional<int> InheritedSockets::take(bool stream, const std::string& address, uint16_t port) {
  auto it = std::find_if(sockets.begin(), sockets.end(), [&](const InheritedSocket& s) {
    return s.stream == stream && s.address == address && s.port == port;
  });
  if (it == sockets.end()) return std::nullopt;
  int fd = it->fd;
  sockets.erase(it);
  return fd;
}

std::vector<int> InheritedSockets::takeAll(bool stream, const std::string& address, uint16_t port) {
  std::vector<int> out;
  while (auto fd = take(stream, address, port)) out.push_back(*fd);
  return out;
}

void InheritedSockets::add(int fd, const std::string& origin) {
  InheritedSocket s;
  s.fd = fd;
  if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_DGRAM, -1, 0) > 0) {
    s.stream = false;
  } else if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, /*listening=*/1, 0) > 0) {
    s.stream = true;
  } else {
    ignored.push_back(origin + " descriptor " + std::to_string(fd) +
                      " is not a bound UDP or listening TCP socket");
    close(fd);
    return;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  char text[INET6_ADDRSTRLEN] = {};
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    ignored.push_back(origin + " descriptor " + std::to_string(fd) + ": getsockname failed");
    close(fd);
    return;
  }
  if (ss.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &ss, sizeof sin);
    inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
    s.port = ntohs(sin.sin_port);
  } else {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &ss, sizeof sin6);
    inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
    s.port = ntohs(sin6.sin6_port);
  }
  s.address = text;
  sockets.push_back(std::move(s));
}

}  // namespace elasticdns::agent
