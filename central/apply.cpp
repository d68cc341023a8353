#include "central/apply.hpp"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "elasticdns/validate.hpp"

namespace elasticdns::central {
namespace {

using nlohmann::json;

const std::set<std::string> kServiceDirectives = {"dns_behaviour", "load_balancing", "ports",
                                                  "traffic_matches"};

std::optional<Error> convert(const YAML::Node& n, json& out, int depth, size_t& nodes) {
  if (++nodes > kMaxYamlNodes) return Error{"", "document too large (aliases expand too far)"};
  if (depth > kMaxYamlDepth) return Error{"", "nested too deeply"};
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out = nullptr;
      return std::nullopt;
    case YAML::NodeType::Scalar:
      out = n.Scalar();
      return std::nullopt;
    case YAML::NodeType::Sequence:
      out = json::array();
      for (const auto& item : n) {
        json j;
        if (auto e = convert(item, j, depth + 1, nodes)) return e;
        out.push_back(std::move(j));
      }
      return std::nullopt;
    case YAML::NodeType::Map:
      out = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) return Error{"", "map keys must be plain strings"};
        json j;
        if (auto e = convert(kv.second, j, depth + 1, nodes)) return e;
        if (out.contains(kv.first.Scalar())) return Error{kv.first.Scalar(), "duplicate key"};
        out[kv.first.Scalar()] = std::move(j);
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

Result<json> yamlToJson(std::string_view text) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    json out;
    size_t nodes = 0;
    if (auto e = convert(root, out, 0, nodes)) return *e;
    return out;
  } catch (const YAML::Exception& e) {
    return Error{"",
                 "not valid YAML: " + e.msg + " (line " + std::to_string(e.mark.line + 1) + ")"};
  } catch (const std::exception& e) {
    return Error{"", std::string("not valid YAML: ") + e.what()};
  }
}

Result<std::vector<model::Service>> parseServiceYml(std::string_view text) {
  auto doc = yamlToJson(text);
  if (!doc) return doc.error();
  const json& j = doc.value();
  if (!j.is_object()) return Error{"", "a service.yml is a map with a 'services' key"};
  std::vector<std::string> unknown;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "services") unknown.push_back(it.key());
  auto services = j.find("services");
  if (services == j.end() && unknown.empty()) return Error{"services", "is required"};
  if (services != j.end() && (!services->is_object() || services->empty()))
    return Error{"services", "must be a map of service name to directives"};
  if (services != j.end() && services->size() > kMaxApplyServices)
    return Error{"services", "too many services (max 1000)"};
  if (services != j.end()) {
    for (auto s = services->begin(); s != services->end(); ++s) {
      if (s->is_null()) continue;
      if (!s->is_object()) continue;  // reported below, after every unknown directive
      for (auto d = s->begin(); d != s->end(); ++d)
        if (!kServiceDirectives.count(d.key())) unknown.push_back(s.key() + "/" + d.key());
    }
  }
  if (!unknown.empty()) {
    std::string list;
    for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
    std::string field = unknown.front().find('/') == std::string::npos
                            ? unknown.front()
                            : "services/" + unknown.front().substr(0, unknown.front().find('/'));
    return Error{field, "unknown directives: " + list};
  }
  std::vector<model::Service> out;
  for (auto s = services->begin(); s != services->end(); ++s) {
    std::string field = "services/" + s.key();
    json body = s->is_null() ? json::object() : *s;
    if (!body.is_object()) return Error{field, "must be a map of directives"};
    auto r = validate::parseService(body, s.key());
    if (!r)
      return Error{r.error().field.empty() ? field : field + "/" + r.error().field,
                   r.error().reason};
    out.push_back(std::move(r).value());
  }
  return out;
}

}  // namespace elasticdns::central
