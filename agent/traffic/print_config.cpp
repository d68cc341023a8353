#include "agent/traffic/print_config.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "elasticdns/protocol.hpp"
#include "elasticdns/validate.hpp"

namespace elasticdns::agent {

Result<model::Topology> loadTopologyFile(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return Error{path, "cannot read"};
    ss << in.rdbuf();
  }
  auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error{path, "not a JSON object"};
  model::Topology t;
  if (j.contains("kind")) {
    auto r = protocol::parseResponse(j);
    if (!r) return Error{path + ": " + r.error().field, r.error().reason};
    if (!r->full)
      return Error{path, "a delta; give a full topology (GET /v1/topology without index)"};
    t = std::move(r->topology);
  } else {
    auto r = protocol::parseTopology(j);
    if (!r) return Error{path + ": " + r.error().field, r.error().reason};
    t = std::move(r.value());
  }
  if (auto e = validate::checkTopology(t)) return Error{path + ": " + e->field, e->reason};
  t.recomputeDerived();
  return t;
}

std::string printableTrafficConfig(const TrafficSettings& settings,
                                   const model::Topology& topology) {
  auto r = renderTraffic(topology, renderOptionsOf(settings));
  std::ostringstream o;
  o << "# ---- " << settings.config.http_file << " (inside http {}), topology index "
    << topology.index << "\n"
    << r.http << "# ---- " << settings.config.stream_file << " (top level of nginx.conf)\n"
    << r.stream;
  for (const auto& w : r.warnings) o << "# warning: " << w << "\n";
  return o.str();
}

}  // namespace elasticdns::agent
