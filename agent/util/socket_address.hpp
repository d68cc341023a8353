#pragma once
// The one conversion of a socket address (sockaddr_in or sockaddr_in6 in a sockaddr_storage)
// to text, for logs, explanations and matching inherited sockets to listen addresses.
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>

namespace elasticdns::agent {

using AddressTextBuffer = std::array<char, INET6_ADDRSTRLEN>;

/// The numeric address ("10.0.0.1", "fd00::1", "::ffff:10.0.0.1"), "?" for another family,
/// written to `buffer` (no allocation: usable on the query path). Returns `buffer.data()`.
const char* addressText(const sockaddr_storage& address, AddressTextBuffer& buffer) noexcept;
/// The same as a string.
std::string addressText(const sockaddr_storage& address);
/// The port in host order; 0 for another family.
uint16_t portOf(const sockaddr_storage& address);

}  // namespace elasticdns::agent
