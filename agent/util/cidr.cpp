#include "agent/util/cidr.hpp"

#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

namespace elasticdns::agent {

namespace ip = boost::asio::ip;

bool Cidr::contains(const ip::address& a) const {
  if (network.is_v4()) {
    ip::address_v4 v4;
    if (a.is_v4())
      v4 = a.to_v4();
    else if (a.to_v6().is_v4_mapped())
      v4 = ip::make_address_v4(ip::v4_mapped, a.to_v6());
    else
      return false;
    return ip::network_v4(v4, prefix).canonical() ==
           ip::network_v4(network.to_v4(), prefix).canonical();
  }
  const ip::address_v6 v6 = a.is_v4() ? ip::make_address_v6(ip::v4_mapped, a.to_v4()) : a.to_v6();
  return ip::network_v6(v6, prefix).canonical() ==
         ip::network_v6(network.to_v6(), prefix).canonical();
}

std::string Cidr::toString() const {
  return network.to_string() + "/" + std::to_string(prefix);
}

Result<Cidr> parseCidr(const std::string& text) {
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  boost::system::error_code ec;
  Cidr c;
  c.network = ip::make_address(addr, ec);
  if (ec) return Error{"", "not a CIDR (ADDR/PREFIX): '" + text + "'"};
  unsigned max = c.network.is_v4() ? 32 : 128;
  c.prefix = max;
  if (slash != std::string::npos) {
    std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(p) > max)
      return Error{"", "bad prefix length in '" + text + "'"};
    c.prefix = static_cast<unsigned>(std::stoul(p));
  }
  return c;
}

}  // namespace elasticdns::agent
