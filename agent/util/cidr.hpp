#pragma once
// Address blocks (the agent's allow list).

#include <string>

#include <boost/asio/ip/address.hpp>

#include "elasticdns/result.hpp"

namespace elasticdns::agent {

/// An address block, e.g. 10.0.0.0/8 or fd00::/8. IPv4 blocks also match v4-mapped IPv6.
struct Cidr {
  boost::asio::ip::address network;
  unsigned prefix = 0;
  bool contains(const boost::asio::ip::address& a) const;
  std::string toString() const;
};
Result<Cidr> parseCidr(const std::string& text);

}  // namespace elasticdns::agent
