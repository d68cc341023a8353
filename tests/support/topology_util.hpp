#pragma once
// Topologies for the agent's tests and benchmarks.
#include <string>

#include "elasticdns/model.hpp"

namespace elasticdns::testing {

/// A container of `service` at `version`, on `server`, with one IPv4 address.
inline model::Container container(std::string id, std::string service, std::string version,
                                  std::string server, std::string address,
                                  model::ContainerState state = model::ContainerState::kRunning) {
  model::Container c;
  c.id = std::move(id);
  c.service = std::move(service);
  c.version = std::move(version);
  c.server = std::move(server);
  c.address = std::move(address);
  c.state = state;
  return c;
}

/// Container cN of service "api", version "v1", on host1, at 10.0.0.N (the sync tests').
inline model::Container sampleContainer(int i) {
  return container("c" + std::to_string(i), "api", "v1", "host1", "10.0.0." + std::to_string(i));
}

/// Containers c1..cN (sampleContainer) at `index`.
inline model::Topology sampleTopology(uint64_t index, int containers) {
  model::Topology t;
  t.index = index;
  t.versions["v1"] = 1;
  for (int i = 1; i <= containers; ++i) t.containers[sampleContainer(i).id] = sampleContainer(i);
  t.recomputeDerived();
  return t;
}

}  // namespace elasticdns::testing
