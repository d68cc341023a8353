#include "elasticdns/agent_report.hpp"

#include <charconv>
#include <set>

#include "elasticdns/validate.hpp"

namespace elasticdns::report {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <typename T>
std::optional<T> number(std::string_view s) {
  T v{};
  if (s.empty() || s.size() > 20) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<bool> onOff(std::string_view s) {
  if (s == "on") return true;
  if (s == "off") return false;
  return std::nullopt;
}

// One `key=value` of the header into `r`; an error names the key.
std::optional<Error> setField(AgentReport& r, std::string_view key, std::string_view value) {
  auto bad = [&](const char* reason) { return Error{"agent_report/" + std::string(key), reason}; };
  if (key == "server") {
    if (!validate::isDnsName(value)) return bad("must be a lowercase DNS name");
    r.server = value;
  } else if (key == "index") {
    auto n = number<uint64_t>(value);
    if (!n) return bad("must be a non-negative integer");
    r.index = *n;
  } else if (key == "version") {
    if (!validate::isVersionName(value)) return bad("must be 1-64 of [A-Za-z0-9_.+-]");
    r.version = value;
  } else if (key == "sync_age_ms") {
    auto n = number<uint64_t>(value);
    if (!n) return bad("must be a non-negative integer");
    r.sync_age_ms = *n;
  } else if (key == "ebpf_identity" || key == "ebpf_redirect") {
    auto b = onOff(value);
    if (!b) return bad("must be on or off");
    (key == "ebpf_identity" ? r.ebpf_identity : r.ebpf_redirect) = *b;
  } else if (key == "peers") {
    auto slash = value.find('/');
    auto up = number<uint32_t>(value.substr(0, slash));
    auto total =
        slash == std::string_view::npos ? std::nullopt : number<uint32_t>(value.substr(slash + 1));
    if (!up || !total || *up > *total) return bad("must be UP/TOTAL with UP <= TOTAL");
    r.peers_up = *up;
    r.peers_total = *total;
  } else if (key == "traffic_generation") {
    auto n = number<uint64_t>(value);
    if (!n) return bad("must be a non-negative integer");
    r.traffic_generation = *n;
  }
  return std::nullopt;
}

}  // namespace

std::string format(const AgentReport& r) {
  std::string s = "server=" + r.server + "; index=" + std::to_string(r.index) +
                  "; version=" + r.version + "; sync_age_ms=" + std::to_string(r.sync_age_ms) +
                  "; ebpf_identity=" + (r.ebpf_identity ? "on" : "off") +
                  "; ebpf_redirect=" + (r.ebpf_redirect ? "on" : "off");
  if (r.peers_up && r.peers_total)
    s += "; peers=" + std::to_string(*r.peers_up) + "/" + std::to_string(*r.peers_total);
  if (r.traffic_generation) s += "; traffic_generation=" + std::to_string(*r.traffic_generation);
  return s;
}

Result<AgentReport> parse(std::string_view text) {
  if (text.size() > kMaxReportBytes) return Error{"agent_report", "longer than 1024 bytes"};
  AgentReport r;
  std::set<std::string, std::less<>> seen;
  while (!text.empty()) {
    auto semi = text.find(';');
    std::string_view pair = trim(text.substr(0, semi));
    text = semi == std::string_view::npos ? std::string_view() : text.substr(semi + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return Error{"agent_report", "expected key=value, got '" + std::string(pair) + "'"};
    std::string_view key = trim(pair.substr(0, eq));
    if (!seen.emplace(key).second)
      return Error{"agent_report/" + std::string(key), "given more than once"};
    if (auto e = setField(r, key, trim(pair.substr(eq + 1)))) return *e;
  }
  for (const char* required : {"server", "index", "version"})
    if (!seen.count(required)) return Error{"agent_report/" + std::string(required), "missing"};
  return r;
}

}  // namespace elasticdns::report
