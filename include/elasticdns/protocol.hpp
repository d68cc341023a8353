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
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "elasticdns/model.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::protocol {

enum class ChangeOp : uint8_t { kPut, kDelete };
enum class RecordKind : uint8_t { kServer, kService, kContainer, kDatasource, kVersion };
constexpr size_t kRecordKindCount = 5;

std::string_view toString(RecordKind k);

/// A record of a kind that is written directly (versions follow from containers).
using Record = std::variant<model::Server, model::Service, model::Container, model::Datasource>;

/// The record-kind table: one row per kind, what every layer needs to name and bound it.
struct KindInfo {
  RecordKind kind;
  std::string_view name;        // in changes and the store: "server"
  std::string_view collection;  // in URLs and topology JSON: "servers"
  size_t max_records;           // validate::kMax*
};
const KindInfo& kindInfo(RecordKind k);
std::optional<RecordKind> kindNamed(std::string_view name);
std::optional<RecordKind> kindOfCollection(std::string_view collection);

RecordKind kindOf(const Record& r);
/// Name, id, or "type/group" for a datasource.
std::string keyOf(const Record& r);
/// A key taken from a URL, valid on its own (a DELETE has no body to validate); the error
/// names the field (name, id, type, group).
std::optional<Error> checkKey(RecordKind k, std::string_view key);
/// Strict parse of a record of kind `k` (not kVersion); `key` fills or must match the body's.
Result<Record> parseRecord(RecordKind k, const nlohmann::json& j, std::string_view key);
nlohmann::json toJson(const Record& r);

/// The records of a topology by kind and key (versions included in contains/erase).
bool contains(const model::Topology& t, RecordKind k, const std::string& key);
/// True when `t` holds a record equal to `r` under the same key.
bool holds(const model::Topology& t, const Record& r);
size_t countOf(const model::Topology& t, RecordKind k);
void put(model::Topology& t, Record r);
/// The record of kind `k` (not kVersion) under `key`, when `t` holds one.
std::optional<Record> recordAt(const model::Topology& t, RecordKind k, const std::string& key);
void erase(model::Topology& t, RecordKind k, const std::string& key);

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
/// Streaming writers of the same texts, without a JSON tree of the whole topology (a tree of
/// 100,000 containers is ~10x the text): equal to fullResponse(t).dump(), toJson(change).dump()
/// (given the value's text; empty for a delete) and deltaResponse(...).dump() (given each
/// change's text).
std::string writeFullResponse(const model::Topology& t);
std::string writeChange(uint64_t index, ChangeOp op, RecordKind kind, std::string_view key,
                        std::string_view value_text);
std::string writeDeltaResponse(uint64_t index, uint64_t since,
                               const std::vector<std::string_view>& change_texts);
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
