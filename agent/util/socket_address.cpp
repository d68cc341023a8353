#include "agent/util/socket_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace elasticdns::agent {

const char* addressText(const sockaddr_storage& address, AddressTextBuffer& buffer) noexcept {
  std::strcpy(buffer.data(), "?");
  if (address.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &address, sizeof sin);
    inet_ntop(AF_INET, &sin.sin_addr, buffer.data(), buffer.size());
  } else if (address.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &address, sizeof sin6);
    inet_ntop(AF_INET6, &sin6.sin6_addr, buffer.data(), buffer.size());
  }
  return buffer.data();
}

std::string addressText(const sockaddr_storage& address) {
  AddressTextBuffer buffer;
  return addressText(address, buffer);
}

uint16_t portOf(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &address, sizeof sin);
    return ntohs(sin.sin_port);
  }
  if (address.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &address, sizeof sin6);
    return ntohs(sin6.sin6_port);
  }
  return 0;
}

}  // namespace elasticdns::agent
