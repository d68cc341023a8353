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

}  // namespace elasticdns::testing
