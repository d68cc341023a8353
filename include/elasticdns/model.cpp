#include "elasticdns/model.hpp"

namespace elasticdns::model {

std::string_view toString(DnsBehaviour v) {
  return v == DnsBehaviour::kVersioned ? "versioned" : "non-versioned";
}

std::string_view toString(LoadBalancing v) {
  switch (v) {
    case LoadBalancing::kRoundRobin:
      return "roundrobin";
    case LoadBalancing::kSticky:
      return "sticky";
    case LoadBalancing::kClosest:
      return "closest";
  }
  return "roundrobin";
}

std::string_view toString(ContainerState v) {
  return v == ContainerState::kRunning ? "running" : "draining";
}

std::optional<DnsBehaviour> parseDnsBehaviour(std::string_view s) {
  if (s == "versioned") return DnsBehaviour::kVersioned;
  if (s == "non-versioned") return DnsBehaviour::kNonVersioned;
  return std::nullopt;
}

std::optional<LoadBalancing> parseLoadBalancing(std::string_view s) {
  if (s == "roundrobin") return LoadBalancing::kRoundRobin;
  if (s == "sticky") return LoadBalancing::kSticky;
  if (s == "closest") return LoadBalancing::kClosest;
  return std::nullopt;
}

std::optional<ContainerState> parseContainerState(std::string_view s) {
  if (s == "running") return ContainerState::kRunning;
  if (s == "draining") return ContainerState::kDraining;
  return std::nullopt;
}

uint64_t Topology::generationOf(std::string_view version) const {
  auto it = versions.find(std::string(version));
  return it == versions.end() ? 0 : it->second;
}

void Topology::recomputeDerived() {
  std::map<std::string, uint64_t> best;
  latest_versions.clear();
  for (const auto& [id, c] : containers) {
    if (c.state != ContainerState::kRunning) continue;
    uint64_t g = generationOf(c.version);
    auto [it, inserted] = best.emplace(c.service, g);
    if (inserted || g > it->second) {
      it->second = g;
      latest_versions[c.service] = c.version;
    }
  }
}

}  // namespace elasticdns::model
