#include "central/config.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "central/apply.hpp"
#include "elasticdns/validate.hpp"

namespace elasticdns::central {
namespace {

std::optional<uint64_t> parseCount(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<std::chrono::milliseconds> parseDuration(std::string_view s) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;
  auto n = parseCount(s.substr(0, digits));
  if (!n) return std::nullopt;
  std::string_view unit = s.substr(digits);
  uint64_t ms;
  if (unit == "ms")
    ms = *n;
  else if (unit == "s")
    ms = *n * 1000;
  else if (unit == "m")
    ms = *n * 60'000;
  else if (unit == "h")
    ms = *n * 3'600'000;
  else
    return std::nullopt;
  return std::chrono::milliseconds(ms);
}

std::optional<std::pair<std::string, uint16_t>> parseListen(std::string_view s) {
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    if (!validate::isIpv6(host)) return std::nullopt;
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (!validate::isIpv4(host)) return std::nullopt;
  }
  auto p = parseCount(port);
  if (!p || *p > 65535) return std::nullopt;
  return std::make_pair(std::string(host), static_cast<uint16_t>(*p));
}

Result<Config> parseConfig(std::string_view yaml, Config c) {
  auto doc = yamlToJson(yaml);
  if (!doc) return doc.error();
  const auto& j = doc.value();
  if (j.is_null()) return c;
  if (!j.is_object()) return Error{"", "the config is a map of keys"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (!it->is_string()) return Error{key, "must be a single value"};
    std::string v = it->get<std::string>();
    if (key == "listen") {
      if (!parseListen(v)) return Error{key, "must be ADDR:PORT or [V6ADDR]:PORT"};
      c.listen = v;
    } else if (key == "data_dir") {
      c.data_dir = v;
    } else if (key == "admin_token_file") {
      c.admin_token_file = v;
    } else if (key == "agent_token_file") {
      c.agent_token_file = v;
    } else if (key == "agent_tokens_file") {
      c.agent_tokens_file = v;
    } else if (key == "durability") {
      if (v == "full")
        c.durability = Durability::kFull;
      else if (v == "normal")
        c.durability = Durability::kNormal;
      else
        return Error{key, "must be 'full' or 'normal'"};
    } else if (key == "change_log_retention") {
      auto n = parseCount(v);
      if (!n || *n < 1 || *n > 10'000'000) return Error{key, "must be 1..10000000"};
      c.change_log_retention = *n;
    } else if (key == "max_connections") {
      auto n = parseCount(v);
      if (!n || *n < 1 || *n > 1'000'000) return Error{key, "must be 1..1000000"};
      c.max_connections = *n;
    } else if (key == "max_watchers") {
      auto n = parseCount(v);
      if (!n || *n > 1'000'000) return Error{key, "must be 0..1000000"};
      c.max_watchers = *n;
    } else if (key == "idle_timeout") {
      auto d = parseDuration(v);
      if (!d || d->count() < 100) return Error{key, "must be a duration of at least 100ms"};
      c.idle_timeout = *d;
    } else if (key == "log_level") {
      if (v != "trace" && v != "debug" && v != "info" && v != "warn" && v != "error")
        return Error{key, "must be trace, debug, info, warn or error"};
      c.log_level = v;
    } else {
      return Error{key, "unknown key"};
    }
  }
  return c;
}

}  // namespace elasticdns::central
