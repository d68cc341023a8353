#pragma once
// ContainerNet's IP address management (central/README.md, "ContainerNet"): the cluster CIDR
// cut into equal subnets, one leased to each server. Pure arithmetic; the leases themselves
// are the servers' `subnet` fields, kept by TopologyState in the store.
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "elasticdns/result.hpp"

namespace elasticdns::central {

constexpr int kMinClusterPrefix = 8;   // a /8 holds every subnet a cluster needs
constexpr int kMaxClusterPrefix = 28;  // room for at least 4 subnets of /30
constexpr int kMaxSubnetPrefix = 30;   // a /30: bridge gateway + 1 container
constexpr int kDefaultSubnetPrefix = 24;

class Ipam {
 public:
  /// `cluster_cidr`: an IPv4 network A.B.C.D/N (N 8..28, no host bits); `subnet_prefix`:
  /// N < subnet_prefix <= 30. Errors name `containernet/cluster_cidr` or
  /// `containernet/subnet_prefix`.
  static Result<Ipam> create(std::string_view cluster_cidr, int subnet_prefix);

  /// The cluster CIDR in canonical form ("10.240.0.0/16").
  const std::string& clusterCidr() const { return cluster_cidr_; }
  int subnetPrefix() const { return subnet_prefix_; }
  /// How many subnets the cluster CIDR holds: 2^(subnet_prefix - cluster prefix).
  uint32_t size() const { return size_; }
  /// Subnet number `i` (< size()), e.g. 3 → "10.240.3.0/24".
  std::string subnetAt(uint32_t i) const;
  /// The number of a subnet in canonical form, or nullopt when it is not one of this
  /// cluster's subnets (outside the cluster CIDR, another prefix, host bits set).
  std::optional<uint32_t> indexOf(std::string_view subnet) const;
  /// Next fit: the lowest number not in `used` above `after`, else (wrapping) the lowest not
  /// in `used`; from 0 when `after` is nullopt. nullopt when every subnet is used.
  /// O(k log n) for k consecutive used numbers.
  std::optional<uint32_t> nextFree(const std::set<uint32_t>& used,
                                   std::optional<uint32_t> after) const;

  bool operator==(const Ipam&) const = default;

 private:
  std::string cluster_cidr_;
  uint32_t base_ = 0;  // host byte order
  int cluster_prefix_ = 0;
  int subnet_prefix_ = 0;
  uint32_t size_ = 0;
};

}  // namespace elasticdns::central
