#pragma once
// POST /v1/apply intake: a service.yml document. For each service under `services:` the
// directives `dns_behaviour`, `load_balancing`, `ports` and `traffic_matches` become that
// service's record (a directive left out takes its default). Any other directive, and any
// top-level key other than `services`, is rejected, and the error lists every one of them.
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "elasticdns/model.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::central {

constexpr size_t kMaxApplyServices = 1000;  // services in one service.yml
constexpr size_t kMaxYamlNodes = 100'000;   // bounds alias expansion ("billion laughs")
constexpr int kMaxYamlDepth = 64;

/// Converts a YAML document to JSON; every scalar becomes a string (YAML 1.2 core types are
/// left to the validators, which accept "3000" where they expect a port). Rejects aliases
/// that expand past kMaxYamlNodes and nesting deeper than kMaxYamlDepth.
Result<nlohmann::json> yamlToJson(std::string_view text);

/// Parses and validates a whole service.yml. All-or-nothing: any error rejects the document.
Result<std::vector<model::Service>> parseServiceYml(std::string_view text);

}  // namespace elasticdns::central
