#pragma once
// The `docker:` section of the agent's configuration (agent/README.md, "Docker discovery").
#include <string>
#include <vector>

namespace elasticdns::agent {

struct DockerConfig {
  bool enabled = false;
  std::string socket = "/var/run/docker.sock";
  /// Networks whose address a container is registered with, in order of preference. When
  /// none of them has an address (or the list is empty), the first network, by name, that has
  /// one is used.
  std::vector<std::string> networks;
  bool operator==(const DockerConfig&) const = default;
};

}  // namespace elasticdns::agent
