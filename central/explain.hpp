#pragma once
// Which addresses a caller gets for a name, and why, from central's view of the topology: the
// agent's own policy functions (include/elasticdns/policy.hpp) applied to the topology, for
// `elasticdnsctl explain NAME --from CONTAINER_ID`. Pure.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "elasticdns/model.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::central {

/// `name`: a service (`api`), a datasource type (`mysql`) or group (`main.mysql`), optionally
/// followed by the agents' domain (`api.cloud66.local`). `container_id`: the caller; one that
/// the topology does not hold is explained as an unknown caller (a host process). The answer:
/// {"name", "kind", "caller": {...}, "policy", "load_balancing", "version", "why",
/// "addresses", "note"}. An error when the name is neither a service nor a datasource.
Result<nlohmann::json> explainAnswer(const model::Topology& topology, std::string_view name,
                                     std::string_view container_id);

/// The explanation as a few lines of text.
std::string renderExplanation(const nlohmann::json& explanation);

}  // namespace elasticdns::central
