#include "central/ipam.hpp"

#include <arpa/inet.h>

#include <charconv>

#include "elasticdns/validate.hpp"

namespace elasticdns::central {
namespace {

std::optional<uint32_t> parseIpv4(std::string_view s) {
  if (!validate::isIpv4(s)) return std::nullopt;
  char buf[INET_ADDRSTRLEN] = {};
  s.copy(buf, sizeof buf - 1);
  in_addr a{};
  if (inet_pton(AF_INET, buf, &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string formatIpv4(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

// "A.B.C.D/N" with N written without leading zeros → address and prefix.
std::optional<std::pair<uint32_t, int>> parseCidr(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = parseIpv4(s.substr(0, slash));
  std::string_view len = s.substr(slash + 1);
  if (!addr || len.empty() || len.size() > 2 || len.front() == '0') return std::nullopt;
  int prefix = 0;
  auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), prefix);
  if (ec != std::errc() || p != len.data() + len.size() || prefix > 32) return std::nullopt;
  return std::pair{*addr, prefix};
}

uint32_t hostMask(int prefix) {
  return prefix >= 32 ? 0 : 0xffffffffu >> prefix;
}

}  // namespace

Result<Ipam> Ipam::create(std::string_view cluster_cidr, int subnet_prefix) {
  auto cidr = parseCidr(cluster_cidr);
  if (!cidr || cidr->second < kMinClusterPrefix || cidr->second > kMaxClusterPrefix ||
      (cidr->first & hostMask(cidr->second)) != 0)
    return Error{"containernet/cluster_cidr",
                 "must be an IPv4 network A.B.C.D/N, N " + std::to_string(kMinClusterPrefix) +
                     ".." + std::to_string(kMaxClusterPrefix) + ", no host bits set"};
  if (subnet_prefix <= cidr->second || subnet_prefix > kMaxSubnetPrefix)
    return Error{"containernet/subnet_prefix", "must be " + std::to_string(cidr->second + 1) +
                                                   ".." + std::to_string(kMaxSubnetPrefix) +
                                                   " (longer than cluster_cidr's prefix)"};
  Ipam ipam;
  ipam.base_ = cidr->first;
  ipam.cluster_prefix_ = cidr->second;
  ipam.subnet_prefix_ = subnet_prefix;
  ipam.size_ = 1u << (subnet_prefix - cidr->second);
  ipam.cluster_cidr_ = formatIpv4(cidr->first) + "/" + std::to_string(cidr->second);
  return ipam;
}

std::string Ipam::subnetAt(uint32_t i) const {
  uint32_t network = base_ + (i << (32 - subnet_prefix_));
  return formatIpv4(network) + "/" + std::to_string(subnet_prefix_);
}

std::optional<uint32_t> Ipam::indexOf(std::string_view subnet) const {
  auto cidr = parseCidr(subnet);
  if (!cidr || cidr->second != subnet_prefix_) return std::nullopt;
  uint32_t addr = cidr->first;
  if ((addr & ~hostMask(cluster_prefix_)) != base_ || (addr & hostMask(subnet_prefix_)) != 0)
    return std::nullopt;
  return (addr - base_) >> (32 - subnet_prefix_);
}

std::optional<uint32_t> Ipam::nextFree(const std::set<uint32_t>& used,
                                       std::optional<uint32_t> after) const {
  // The lowest free number in [from, to), skipping the run of used ones that starts at `from`.
  auto firstFree = [&](uint32_t from, uint32_t to) -> std::optional<uint32_t> {
    uint32_t i = from;
    for (auto it = used.lower_bound(i); it != used.end() && *it == i && i < to; ++it) ++i;
    if (i < to) return i;
    return std::nullopt;
  };
  uint32_t start = after && *after + 1 < size_ ? *after + 1 : 0;
  if (auto i = firstFree(start, size_)) return i;
  return start > 0 ? firstFree(0, start) : std::nullopt;
}

}  // namespace elasticdns::central
