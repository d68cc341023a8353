#pragma once
// Socket activation: the DNS sockets systemd passes to the agent (elasticdns-agent.socket,
// sd_listen_fds(3)).
#include "agent/util/inherited_sockets.hpp"

namespace elasticdns::agent {

/// The sockets this process inherited (LISTEN_FDS/LISTEN_PID), once: the environment
/// variables are unset so that children do not see them.
InheritedSockets takeSystemdSockets();

}  // namespace elasticdns::agent
