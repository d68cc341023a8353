#include "agent/util/inherited_sockets.hpp"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>

#include "agent/util/socket_address.hpp"
#include "agent/util/unique_fd.hpp"

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
  UniqueFd owned(fd);  // closed unless kept
  InheritedSocket s;
  if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_DGRAM, -1, 0) > 0) {
    s.stream = false;
  } else if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, /*listening=*/1, 0) > 0) {
    s.stream = true;
  } else {
    ignored.push_back(origin + " descriptor " + std::to_string(fd) +
                      " is not a bound UDP or listening TCP socket");
    return;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    ignored.push_back(origin + " descriptor " + std::to_string(fd) + ": getsockname failed");
    return;
  }
  s.address = addressText(ss);
  s.port = portOf(ss);
  s.fd = owned.release();
  sockets.push_back(std::move(s));
}

}  // namespace elasticdns::agent
