#pragma once
// The status of the system as an operator reads it (central/README.md, "Status"): services ×
// versions per server, datasources, agents and their lag, and a verdict per rolling deploy.
// Pure: computed from a topology and the agents' reports, rendered as kubectl-style tables.
// Central serves the document (GET /v1/status); elasticdnsctl and the dashboard show it.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "elasticdns/agent_report.hpp"
#include "elasticdns/model.hpp"

namespace elasticdns::central::status {

/// One agent as central sees it.
struct AgentView {
  report::AgentReport report;
  bool seen = false;             // reported within the report TTL, or holds a long-poll now
  bool polling = false;          // holds a long-poll now
  double last_seen_seconds = 0;  // how long ago it last reported or was answered
  int64_t last_seen_unix_ms = 0;
};

/// One agent's entry of the status document (also GET /v1/agents): its report, `lag` behind
/// `index`, `seen`, `polling`, `last_seen` (UTC) and `last_seen_seconds`.
nlohmann::json agentJson(const AgentView& agent, uint64_t index);

/// The status document: {"index", "services", "datasources", "agents", "deploys", ...}.
/// Agents are those with a report plus the topology's servers that never reported (`seen`
/// false, `index` null). A service's `rollout.complete`: only its latest version has containers,
/// none draining, and every agent seen serves `index`.
nlohmann::json compute(const model::Topology& topology, const std::vector<AgentView>& agents);

/// The document as aligned tables (SERVICE, DATASOURCE, AGENT, DEPLOY), ANSI colours when
/// `colour` (latest version green, agents behind yellow, agents not seen red).
std::string renderTables(const nlohmann::json& status, bool colour);

/// The lag bucket of an agent for metrics: "0", "1-9", "10-99", "100+" or "not_seen".
const char* lagBucket(const AgentView& agent, uint64_t index);

}  // namespace elasticdns::central::status
