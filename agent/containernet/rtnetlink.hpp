#pragma once
// The few rtnetlink requests ContainerNet needs (links, IPv4 addresses and routes), over one
// NETLINK_ROUTE socket per call. Blocking, each bounded by the kernel's immediate answer; they
// run on ContainerNet's own thread, never on a DNS worker. Errors carry the errno's text; the
// functions that may fail for a reason the caller acts on return the errno itself.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "elasticdns/result.hpp"

namespace elasticdns::agent::rtnl {

/// An IPv4 prefix: network (host byte order is not used: `address` is dotted text) and length.
struct Ipv4Prefix {
  std::string address;  // "10.240.3.1"
  unsigned prefix = 32;
  std::string toString() const { return address + "/" + std::to_string(prefix); }
  bool operator==(const Ipv4Prefix&) const = default;
  auto operator<=>(const Ipv4Prefix&) const = default;
};
/// "A.B.C.D/N" (N 0..32; a missing /N is /32).
Result<Ipv4Prefix> parseIpv4Prefix(const std::string& text);

/// The routing protocol number ContainerNet's routes carry, so it finds (and removes) its own
/// routes and no others: rtnetlink's RTPROT_* space has 0..255, this one is not in
/// iproute2's rt_protos.
constexpr uint8_t kRouteProtocol = 66;

/// The interface's index, 0 when there is none of that name.
unsigned linkIndex(const std::string& name);
/// RTM_NEWLINK of kind `kind` ("wireguard") named `name`. 0 or the errno (EOPNOTSUPP: the
/// kernel has no such link kind).
int createLink(const std::string& name, const std::string& kind);
/// RTM_DELLINK. 0, or the errno (ENODEV: there is none).
int deleteLink(const std::string& name);
/// Sets the MTU (when not 0) and brings the link up.
std::optional<Error> setLinkUp(unsigned index, uint32_t mtu);
/// The link's MTU (SIOCGIFMTU).
Result<uint32_t> linkMtu(const std::string& name);

/// The IPv4 addresses on the link.
Result<std::vector<Ipv4Prefix>> addresses(unsigned index);
std::optional<Error> addAddress(unsigned index, const Ipv4Prefix& address);
std::optional<Error> deleteAddress(unsigned index, const Ipv4Prefix& address);

/// The IPv4 routes of the main table out of the link that carry kRouteProtocol.
Result<std::vector<Ipv4Prefix>> routes(unsigned index);
/// A link-scope route to `destination` out of the link, kRouteProtocol, with `source` as the
/// preferred source address unless empty. Replaces a route to the same destination.
std::optional<Error> replaceRoute(unsigned index, const Ipv4Prefix& destination,
                                  const std::string& source);
std::optional<Error> deleteRoute(unsigned index, const Ipv4Prefix& destination);

}  // namespace elasticdns::agent::rtnl
