#pragma once
// `elasticdns-agent --config FILE --print-traffic-config [--topology FILE|-]`: the nginx
// configuration the agent would install for a topology, for an operator to read.
#include <string>

#include "agent/traffic/nginx_controller.hpp"
#include "elasticdns/model.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

/// A topology from a file ("-": stdin): central's GET /v1/topology answer (what `elasticdnsctl
/// topology` prints) or a bare topology (the agent's state_dir/topology.json). Validated.
Result<model::Topology> loadTopologyFile(const std::string& path);

/// Both rendered files, each under a comment naming where it goes, then the warnings as
/// comments.
std::string printableTrafficConfig(const TrafficSettings& settings,
                                   const model::Topology& topology);

}  // namespace elasticdns::agent
