#pragma once
// The sync protocol between central and agents: the JSON shape of a topology snapshot, of a
// change, and of a GET /v1/topology response. Both sides use these functions, so the shape
// is defined once.
//
// GET /v1/topology                    → {"kind":"full","index":N,"topology":{...}}
// GET /v1/topology?index=M&wait=30s   → the same, or, while central still holds the changes
//                                       after M: {"kind":"delta","index":N,"since":M,
//                                       "changes":[{"index":i,"op":"put"|"delete",
//                                                   "kind":"server"|"service"|"container"|
//                                                          "datasource"|"version",
//                                                   "key":"...", "value":{...}}, ...]}
// Topology JSON: {"index":N,"servers":[...],"services":[...],"containers":[...],
//                 "datasources":[...],"versions":[{"name":"v1","generation":1},...],
//                 "latest_versions":{"api":"v2",...}}
// A change of kind "version" records a version's first appearance; "delete" has no value.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "elasticdns/model.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::protocol {

enum class ChangeOp : uint8_t { kPut, kDelete };
enum class RecordKind : uint8_t { kServer, kService, kContainer, kDatasource, kVersion };

std::string_view toString(RecordKind k);

struct Change {
  uint64_t index = 0;
  ChangeOp op = ChangeOp::kPut;
  RecordKind kind = RecordKind::kContainer;
  std::string key;       // server/service name, container id, "type/group", version name
  nlohmann::json value;  // the record (put only)
};

/// What GET /v1/topology returned: a full snapshot or the changes since `since`.
struct TopologyResponse {
  bool full = true;
  uint64_t index = 0;
  uint64_t since = 0;
  model::Topology topology;     // full only
  std::vector<Change> changes;  // delta only
};

nlohmann::json toJson(const model::Server& s);
nlohmann::json toJson(const model::Service& s);
nlohmann::json toJson(const model::Container& c);
nlohmann::json toJson(const model::Datasource& d);
nlohmann::json toJson(const model::Topology& t);
nlohmann::json toJson(const Change& c);
nlohmann::json fullResponse(const model::Topology& t);
nlohmann::json deltaResponse(uint64_t index, uint64_t since, const std::vector<Change>& changes);

/// Strict parse and validation of a whole topology (every record through validate::parse*,
/// then validate::checkTopology); `latest_versions` is recomputed, not trusted.
Result<model::Topology> parseTopology(const nlohmann::json& j);
Result<Change> parseChange(const nlohmann::json& j);
Result<TopologyResponse> parseResponse(const nlohmann::json& j);

/// Apply changes in order to `t` (validating each value), then set t.index and recompute the
/// derived fields. On error `t` is left unchanged.
std::optional<Error> applyChanges(model::Topology& t, const std::vector<Change>& changes,
                                  uint64_t new_index);

}  // namespace elasticdns::protocol
