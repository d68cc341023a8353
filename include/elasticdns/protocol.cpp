#include "elasticdns/protocol.hpp"

#include <algorithm>
#include <iterator>

#include "elasticdns/validate.hpp"

namespace elasticdns::protocol {
namespace {

using nlohmann::json;

// A non-negative integer, whether nlohmann stored it signed or unsigned.
bool isCount(const json& j) {
  return j.is_number_unsigned() || (j.is_number_integer() && j.get<int64_t>() >= 0);
}

Error prefixed(const std::string& prefix, const Error& e) {
  return Error{e.field.empty() ? prefix : prefix + "/" + e.field, e.reason};
}

json portJson(const model::PortMapping& p) {
  json j = {{"container", p.container}};
  if (p.http) j["http"] = p.http;
  if (p.https) j["https"] = p.https;
  if (p.tcp) j["tcp"] = p.tcp;
  if (p.udp) j["udp"] = p.udp;
  return j;
}

constexpr KindInfo kKinds[] = {
    {RecordKind::kServer, "server", "servers", validate::kMaxServers},
    {RecordKind::kService, "service", "services", validate::kMaxServices},
    {RecordKind::kContainer, "container", "containers", validate::kMaxContainers},
    {RecordKind::kDatasource, "datasource", "datasources", validate::kMaxDatasources},
    {RecordKind::kVersion, "version", "versions", validate::kMaxVersions},
};
static_assert(std::size(kKinds) == kRecordKindCount);

// Calls f with the topology's map of kind k (const or not, as `t` is).
template <typename Topology, typename F>
decltype(auto) withRecords(Topology& t, RecordKind k, F&& f) {
  switch (k) {
    case RecordKind::kServer:
      return f(t.servers);
    case RecordKind::kService:
      return f(t.services);
    case RecordKind::kContainer:
      return f(t.containers);
    case RecordKind::kDatasource:
      return f(t.datasources);
    case RecordKind::kVersion:
      break;
  }
  return f(t.versions);
}

// The topology's map that holds records of type T.
template <typename T, typename Topology>
auto& recordsOf(Topology& t) {
  if constexpr (std::is_same_v<T, model::Server>)
    return t.servers;
  else if constexpr (std::is_same_v<T, model::Service>)
    return t.services;
  else if constexpr (std::is_same_v<T, model::Container>)
    return t.containers;
  else
    return t.datasources;
}

// "type/group" → {type, group}; a key without '/' has an empty group.
std::pair<std::string_view, std::string_view> splitDatasourceKey(std::string_view key) {
  auto slash = key.find('/');
  if (slash == std::string_view::npos) return {key, {}};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

template <typename Map>
void appendList(std::string& out, const Map& m) {
  out += '[';
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += ',';
    first = false;
    out += toJson(v).dump();
  }
  out += ']';
}

template <typename T, typename Parse, typename Key>
std::optional<Error> parseList(const json& j, const char* name, std::map<std::string, T>& out,
                               Parse parse, Key key) {
  auto it = j.find(name);
  if (it == j.end()) return std::nullopt;
  if (!it->is_array()) return Error{name, "must be a list"};
  for (size_t i = 0; i < it->size(); ++i) {
    auto r = parse((*it)[i]);
    if (!r) return prefixed(std::string(name) + "/" + std::to_string(i), r.error());
    std::string k = key(r.value());
    if (!out.emplace(k, std::move(r).value()).second)
      return Error{std::string(name) + "/" + std::to_string(i), "duplicate '" + k + "'"};
  }
  return std::nullopt;
}

Result<uint64_t> parseVersionValue(const json& v, const std::string& key) {
  if (!v.is_object() || !v.contains("generation") || !isCount(v["generation"]))
    return Error{"value/generation", "must be a positive integer"};
  if (v.contains("name") && v["name"] != key) return Error{"value/name", "does not match key"};
  return v["generation"].get<uint64_t>();
}

}  // namespace

const KindInfo& kindInfo(RecordKind k) {
  return kKinds[static_cast<size_t>(k)];
}

std::string_view toString(RecordKind k) {
  return kindInfo(k).name;
}

std::optional<RecordKind> kindNamed(std::string_view name) {
  for (const auto& row : kKinds)
    if (row.name == name) return row.kind;
  return std::nullopt;
}

std::optional<RecordKind> kindOfCollection(std::string_view collection) {
  for (const auto& row : kKinds)
    if (row.collection == collection) return row.kind;
  return std::nullopt;
}

RecordKind kindOf(const Record& r) {
  constexpr RecordKind kByIndex[] = {RecordKind::kServer, RecordKind::kService,
                                     RecordKind::kContainer, RecordKind::kDatasource};
  return kByIndex[r.index()];
}

std::string keyOf(const Record& r) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, model::Container>)
          return x.id;
        else if constexpr (std::is_same_v<T, model::Datasource>)
          return x.key();
        else
          return x.name;
      },
      r);
}

std::optional<Error> checkKey(RecordKind k, std::string_view key) {
  switch (k) {
    case RecordKind::kServer:
      if (!validate::isDnsName(key)) return Error{"name", "must be a lowercase DNS name"};
      break;
    case RecordKind::kService:
      if (!validate::isDnsLabel(key)) return Error{"name", "must be a lowercase DNS label"};
      break;
    case RecordKind::kContainer:
      if (!validate::isContainerId(key)) return Error{"id", "must be 1-128 of [A-Za-z0-9_.-]"};
      break;
    case RecordKind::kDatasource: {
      auto [type, group] = splitDatasourceKey(key);
      if (!validate::isDnsLabel(type)) return Error{"type", "must be a lowercase DNS label"};
      if (!validate::isDnsLabel(group)) return Error{"group", "must be a lowercase DNS label"};
      break;
    }
    case RecordKind::kVersion:
      if (!validate::isVersionName(key)) return Error{"key", "bad version name"};
      break;
  }
  return std::nullopt;
}

Result<Record> parseRecord(RecordKind k, const json& j, std::string_view key) {
  auto wrap = [](auto r) -> Result<Record> {
    if (!r) return r.error();
    return Record(std::move(r).value());
  };
  switch (k) {
    case RecordKind::kServer:
      return wrap(validate::parseServer(j, key));
    case RecordKind::kService:
      return wrap(validate::parseService(j, key));
    case RecordKind::kContainer:
      return wrap(validate::parseContainer(j, key));
    case RecordKind::kDatasource: {
      auto [type, group] = splitDatasourceKey(key);
      return wrap(validate::parseDatasource(j, type, group));
    }
    case RecordKind::kVersion:
      break;
  }
  return Error{"kind", "versions are not written directly"};
}

json toJson(const Record& r) {
  return std::visit([](const auto& x) { return toJson(x); }, r);
}

bool contains(const model::Topology& t, RecordKind k, const std::string& key) {
  return withRecords(t, k, [&](const auto& m) { return m.count(key) > 0; });
}

bool holds(const model::Topology& t, const Record& r) {
  return std::visit(
      [&](const auto& x) {
        const auto& m = recordsOf<std::decay_t<decltype(x)>>(t);
        auto it = m.find(keyOf(r));
        return it != m.end() && it->second == x;
      },
      r);
}

size_t countOf(const model::Topology& t, RecordKind k) {
  return withRecords(t, k, [](const auto& m) { return m.size(); });
}

void put(model::Topology& t, Record r) {
  std::string key = keyOf(r);
  std::visit([&](auto&& x) { recordsOf<std::decay_t<decltype(x)>>(t)[key] = std::move(x); },
             std::move(r));
}

std::optional<Record> recordAt(const model::Topology& t, RecordKind k, const std::string& key) {
  return withRecords(t, k, [&](const auto& m) -> std::optional<Record> {
    if constexpr (std::is_same_v<typename std::decay_t<decltype(m)>::mapped_type, uint64_t>) {
      return std::nullopt;  // versions are not records
    } else {
      auto it = m.find(key);
      if (it == m.end()) return std::nullopt;
      return Record{it->second};
    }
  });
}

void erase(model::Topology& t, RecordKind k, const std::string& key) {
  withRecords(t, k, [&](auto& m) { m.erase(key); });
}

json toJson(const model::Server& s) {
  json j = {{"name", s.name}, {"address", s.address}};
  if (!s.labels.empty()) j["labels"] = s.labels;
  if (!s.subnet.empty()) j["subnet"] = s.subnet;
  if (s.wireguard)
    j["wireguard"] = {{"public_key", s.wireguard->public_key}, {"endpoint", s.wireguard->endpoint}};
  return j;
}

json toJson(const model::Service& s) {
  json ports = json::array();
  for (const auto& p : s.ports) ports.push_back(portJson(p));
  json j = {{"name", s.name},
            {"dns_behaviour", model::toString(s.dns_behaviour)},
            {"load_balancing", model::toString(s.load_balancing)},
            {"ports", ports}};
  if (!s.traffic_matches.empty()) j["traffic_matches"] = s.traffic_matches;
  return j;
}

json toJson(const model::Container& c) {
  json j = {{"id", c.id},
            {"service", c.service},
            {"version", c.version},
            {"server", c.server},
            {"state", model::toString(c.state)}};
  if (!c.address.empty()) j["address"] = c.address;
  if (!c.address6.empty()) j["address6"] = c.address6;
  return j;
}

json toJson(const model::Datasource& d) {
  return {{"type", d.type}, {"group", d.group}, {"primary", d.primary}, {"addresses", d.addresses}};
}

json toJson(const model::Topology& t) {
  json j = {{"index", t.index},
            {"servers", json::array()},
            {"services", json::array()},
            {"containers", json::array()},
            {"datasources", json::array()},
            {"versions", json::array()},
            {"latest_versions", t.latest_versions}};
  for (const auto& [k, v] : t.servers) j["servers"].push_back(toJson(v));
  for (const auto& [k, v] : t.services) j["services"].push_back(toJson(v));
  for (const auto& [k, v] : t.containers) j["containers"].push_back(toJson(v));
  for (const auto& [k, v] : t.datasources) j["datasources"].push_back(toJson(v));
  std::vector<std::pair<uint64_t, std::string>> byGen;
  for (const auto& [name, g] : t.versions) byGen.emplace_back(g, name);
  std::sort(byGen.begin(), byGen.end());
  for (const auto& [g, name] : byGen) j["versions"].push_back({{"name", name}, {"generation", g}});
  return j;
}

json toJson(const Change& c) {
  json j = {{"index", c.index},
            {"op", c.op == ChangeOp::kPut ? "put" : "delete"},
            {"kind", toString(c.kind)},
            {"key", c.key}};
  if (c.op == ChangeOp::kPut) j["value"] = c.value;
  return j;
}

json fullResponse(const model::Topology& t) {
  return {{"kind", "full"}, {"index", t.index}, {"topology", toJson(t)}};
}

json deltaResponse(uint64_t index, uint64_t since, const std::vector<Change>& changes) {
  json list = json::array();
  for (const auto& c : changes) list.push_back(toJson(c));
  return {{"kind", "delta"}, {"index", index}, {"since", since}, {"changes", std::move(list)}};
}

std::string writeFullResponse(const model::Topology& t) {
  // Keys in nlohmann's (sorted) order, so the text equals fullResponse(t).dump().
  std::string out;
  out.reserve(256 + t.containers.size() * 200);
  std::string index = std::to_string(t.index);
  out += "{\"index\":" + index + ",\"kind\":\"full\",\"topology\":{\"containers\":";
  appendList(out, t.containers);
  out += ",\"datasources\":";
  appendList(out, t.datasources);
  out += ",\"index\":" + index + ",\"latest_versions\":" + json(t.latest_versions).dump();
  out += ",\"servers\":";
  appendList(out, t.servers);
  out += ",\"services\":";
  appendList(out, t.services);
  out += ",\"versions\":[";
  std::vector<std::pair<uint64_t, const std::string*>> by_generation;
  by_generation.reserve(t.versions.size());
  for (const auto& [name, g] : t.versions) by_generation.emplace_back(g, &name);
  std::sort(by_generation.begin(), by_generation.end());
  for (size_t i = 0; i < by_generation.size(); ++i) {
    if (i) out += ',';
    out += json{{"name", *by_generation[i].second}, {"generation", by_generation[i].first}}.dump();
  }
  out += "]}}";
  return out;
}

std::string writeChange(uint64_t index, ChangeOp op, RecordKind kind, std::string_view key,
                        std::string_view value_text) {
  bool put = op == ChangeOp::kPut;
  std::string out = "{\"index\":" + std::to_string(index) + ",\"key\":" + json(key).dump() +
                    ",\"kind\":\"" + std::string(toString(kind)) + "\",\"op\":\"" +
                    (put ? "put" : "delete") + "\"";
  if (put) out += ",\"value\":" + std::string(value_text);
  out += '}';
  return out;
}

std::string writeDeltaResponse(uint64_t index, uint64_t since,
                               const std::vector<std::string_view>& change_texts) {
  std::string out = "{\"changes\":[";
  for (size_t i = 0; i < change_texts.size(); ++i) {
    if (i) out += ',';
    out += change_texts[i];
  }
  out += "],\"index\":" + std::to_string(index) +
         ",\"kind\":\"delta\",\"since\":" + std::to_string(since) + "}";
  return out;
}

Result<model::Topology> parseTopology(const json& j) {
  if (!j.is_object()) return Error{"topology", "must be a JSON object"};
  model::Topology t;
  auto idx = j.find("index");
  if (idx == j.end() || !isCount(*idx)) return Error{"index", "must be an integer"};
  t.index = idx->get<uint64_t>();
  if (auto e = parseList(
          j, "servers", t.servers, [](const json& x) { return validate::parseServer(x); },
          [](const model::Server& s) { return s.name; }))
    return *e;
  if (auto e = parseList(
          j, "services", t.services, [](const json& x) { return validate::parseService(x); },
          [](const model::Service& s) { return s.name; }))
    return *e;
  if (auto e = parseList(
          j, "containers", t.containers, [](const json& x) { return validate::parseContainer(x); },
          [](const model::Container& c) { return c.id; }))
    return *e;
  if (auto e = parseList(
          j, "datasources", t.datasources,
          [](const json& x) { return validate::parseDatasource(x); },
          [](const model::Datasource& d) { return d.key(); }))
    return *e;
  if (auto it = j.find("versions"); it != j.end()) {
    if (!it->is_array()) return Error{"versions", "must be a list"};
    for (size_t i = 0; i < it->size(); ++i) {
      const json& v = (*it)[i];
      std::string f = "versions/" + std::to_string(i);
      if (!v.is_object() || !v.contains("name") || !v["name"].is_string())
        return Error{f, "must be {name, generation}"};
      auto g = parseVersionValue(v, v["name"].get<std::string>());
      if (!g) return prefixed(f, g.error());
      if (!t.versions.emplace(v["name"].get<std::string>(), g.value()).second)
        return Error{f, "duplicate version"};
    }
  }
  if (auto e = validate::checkTopology(t)) return *e;
  t.recomputeDerived();
  return t;
}

Result<Change> parseChange(const json& j) {
  if (!j.is_object()) return Error{"", "must be a JSON object"};
  Change c;
  if (!j.contains("index") || !isCount(j["index"])) return Error{"index", "must be an integer"};
  c.index = j["index"].get<uint64_t>();
  if (!j.contains("op") || !j["op"].is_string()) return Error{"op", "must be put or delete"};
  if (j["op"] == "put")
    c.op = ChangeOp::kPut;
  else if (j["op"] == "delete")
    c.op = ChangeOp::kDelete;
  else
    return Error{"op", "must be put or delete"};
  if (!j.contains("kind") || !j["kind"].is_string()) return Error{"kind", "must be a string"};
  auto k = kindNamed(j["kind"].get<std::string>());
  if (!k) return Error{"kind", "unknown record kind"};
  c.kind = *k;
  if (!j.contains("key") || !j["key"].is_string() || j["key"].get<std::string>().empty())
    return Error{"key", "must be a non-empty string"};
  c.key = j["key"].get<std::string>();
  if (c.op == ChangeOp::kPut) {
    if (!j.contains("value")) return Error{"value", "is required for put"};
    c.value = j["value"];
  }
  return c;
}

Result<TopologyResponse> parseResponse(const json& j) {
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string())
    return Error{"kind", "must be 'full' or 'delta'"};
  TopologyResponse r;
  if (!j.contains("index") || !isCount(j["index"])) return Error{"index", "must be an integer"};
  r.index = j["index"].get<uint64_t>();
  if (j["kind"] == "full") {
    if (!j.contains("topology")) return Error{"topology", "is required"};
    auto t = parseTopology(j["topology"]);
    if (!t) return prefixed("topology", t.error());
    if (t->index != r.index) return Error{"topology/index", "does not match index"};
    r.topology = std::move(t).value();
    return r;
  }
  if (j["kind"] != "delta") return Error{"kind", "must be 'full' or 'delta'"};
  r.full = false;
  if (!j.contains("since") || !isCount(j["since"])) return Error{"since", "must be an integer"};
  r.since = j["since"].get<uint64_t>();
  if (!j.contains("changes") || !j["changes"].is_array()) return Error{"changes", "must be a list"};
  for (size_t i = 0; i < j["changes"].size(); ++i) {
    auto c = parseChange(j["changes"][i]);
    if (!c) return prefixed("changes/" + std::to_string(i), c.error());
    r.changes.push_back(std::move(c).value());
  }
  return r;
}

std::optional<Error> applyChanges(model::Topology& t, const std::vector<Change>& changes,
                                  uint64_t new_index) {
  model::Topology next = t;
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    std::string f = "changes/" + std::to_string(i);
    if (c.op == ChangeOp::kDelete) {
      erase(next, c.kind, c.key);
      continue;
    }
    if (c.kind == RecordKind::kVersion) {
      if (!validate::isVersionName(c.key)) return Error{f + "/key", "bad version name"};
      auto g = parseVersionValue(c.value, c.key);
      if (!g) return prefixed(f, g.error());
      next.versions[c.key] = g.value();
      continue;
    }
    if (c.kind == RecordKind::kDatasource && c.key.find('/') == std::string::npos)
      return Error{f + "/key", "must be type/group"};
    auto r = parseRecord(c.kind, c.value, c.key);
    if (!r) return prefixed(f + "/value", r.error());
    put(next, std::move(r).value());
  }
  if (auto e = validate::checkTopology(next)) return *e;
  next.index = new_index;
  next.recomputeDerived();
  t = std::move(next);
  return std::nullopt;
}

}  // namespace elasticdns::protocol
