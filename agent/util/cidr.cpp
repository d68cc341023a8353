#include "agent/util/cidr.hpp"

namespace elasticdns::agent {

namespace ip = boost::asio::ip;

bool Cidr::contains(const ip::address& a) const {
  auto bytesOf = [](const ip::address& x) {
    if (x.is_v4()) return ip::make_address_v6(ip::v4_mapped, x.to_v4()).to_bytes();
    return x.to_v6().to_bytes();
  };
  auto n = bytesOf(network);
  auto b = bytesOf(a);
  unsigned bits = network.is_v4() ? prefix + 96 : prefix;
  for (unsigned i = 0; i < 16 && bits > 0; ++i) {
    unsigned take = bits >= 8 ? 8 : bits;
    uint8_t mask = static_cast<uint8_t>(0xFF << (8 - take));
    if ((n[i] & mask) != (b[i] & mask)) return false;
    bits -= take;
  }
  return true;
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
