#include "elasticdns/protocol.hpp"

#include <algorithm>

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

std::optional<RecordKind> parseKind(std::string_view s) {
  if (s == "server") return RecordKind::kServer;
  if (s == "service") return RecordKind::kService;
  if (s == "container") return RecordKind::kContainer;
  if (s == "datasource") return RecordKind::kDatasource;
  if (s == "version") return RecordKind::kVersion;
  return std::nullopt;
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

std::string_view toString(RecordKind k) {
  switch (k) {
    case RecordKind::kServer:
      return "server";
    case RecordKind::kService:
      return "service";
    case RecordKind::kContainer:
      return "container";
    case RecordKind::kDatasource:
      return "datasource";
    case RecordKind::kVersion:
      return "version";
  }
  return "container";
}

json toJson(const model::Server& s) {
  json j = {{"name", s.name}, {"address", s.address}};
  if (!s.labels.empty()) j["labels"] = s.labels;
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
  auto k = parseKind(j["kind"].get<std::string>());
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
    bool put = c.op == ChangeOp::kPut;
    switch (c.kind) {
      case RecordKind::kServer: {
        if (!put) {
          next.servers.erase(c.key);
          break;
        }
        auto r = validate::parseServer(c.value, c.key);
        if (!r) return prefixed(f + "/value", r.error());
        next.servers[c.key] = std::move(r).value();
        break;
      }
      case RecordKind::kService: {
        if (!put) {
          next.services.erase(c.key);
          break;
        }
        auto r = validate::parseService(c.value, c.key);
        if (!r) return prefixed(f + "/value", r.error());
        next.services[c.key] = std::move(r).value();
        break;
      }
      case RecordKind::kContainer: {
        if (!put) {
          next.containers.erase(c.key);
          break;
        }
        auto r = validate::parseContainer(c.value, c.key);
        if (!r) return prefixed(f + "/value", r.error());
        next.containers[c.key] = std::move(r).value();
        break;
      }
      case RecordKind::kDatasource: {
        if (!put) {
          next.datasources.erase(c.key);
          break;
        }
        auto slash = c.key.find('/');
        if (slash == std::string::npos) return Error{f + "/key", "must be type/group"};
        auto r =
            validate::parseDatasource(c.value, c.key.substr(0, slash), c.key.substr(slash + 1));
        if (!r) return prefixed(f + "/value", r.error());
        next.datasources[c.key] = std::move(r).value();
        break;
      }
      case RecordKind::kVersion: {
        if (!put) {
          next.versions.erase(c.key);
          break;
        }
        if (!validate::isVersionName(c.key)) return Error{f + "/key", "bad version name"};
        auto g = parseVersionValue(c.value, c.key);
        if (!g) return prefixed(f, g.error());
        next.versions[c.key] = g.value();
        break;
      }
    }
  }
  if (auto e = validate::checkTopology(next)) return *e;
  next.index = new_index;
  next.recomputeDerived();
  t = std::move(next);
  return std::nullopt;
}

}  // namespace elasticdns::protocol
