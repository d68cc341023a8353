#pragma once
// The agent config's `bpf:` section (agent/README.md, "Configuration").
#include <string>
#include <vector>

namespace elasticdns::agent {

struct BpfConfig {
  bool enabled = false;
  /// Parent cgroup of the containers: absolute, or relative to the cgroup2 mount.
  std::string cgroup;
  /// Rewrite the containers' port-53 traffic to the agent (else identity only).
  bool redirect = true;
  /// Cgroups (same form as `cgroup`) whose DNS is never redirected.
  std::vector<std::string> exclude_cgroups;
  /// ECMAScript regex with one capture group that extracts a container id from a cgroup path;
  /// empty = the built-in Docker (systemd and cgroupfs drivers), containerd/CRI and podman ones.
  std::string container_id_pattern;
  /// Where links and maps are pinned (a bpffs directory).
  std::string pin_path = "/sys/fs/bpf/elasticdns";
};

}  // namespace elasticdns::agent
