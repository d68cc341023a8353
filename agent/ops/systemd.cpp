#include "agent/ops/systemd.hpp"

#include <systemd/sd-daemon.h>

#include <algorithm>

namespace elasticdns::agent {

InheritedSockets takeSystemdSockets() {
  InheritedSockets out;
  int n = sd_listen_fds(/*unset_environment=*/1);
  for (int i = 0; i < std::max(n, 0); ++i) out.add(SD_LISTEN_FDS_START + i, "systemd");
  return out;
}

}  // namespace elasticdns::agent
