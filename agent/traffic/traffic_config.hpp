#pragma once
// The `traffic:` section of the agent's configuration (agent/README.md, "Traffic distribution"):
// where nginx and the files the agent owns are, how nginx reloads, and the knobs of the
// rendered proxy configuration.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "elasticdns/result.hpp"

namespace elasticdns::agent {

enum class NginxReload : uint8_t {
  kSystemctl,  // `systemctl reload UNIT`
  kSignal,     // SIGHUP to the PID in pid_file
};

struct TrafficConfig {
  bool enabled = false;
  std::string nginx = "/usr/sbin/nginx";
  /// Included inside nginx's http {} block (Debian's nginx.conf includes conf.d/*.conf there).
  std::string http_file = "/etc/nginx/conf.d/elasticdns.conf";
  /// Included at the top level of nginx.conf (one line the operator adds): the stream {} block.
  std::string stream_file = "/etc/nginx/elasticdns-stream.conf";
  /// Top-level includes of the test configuration `nginx -t` checks the candidates with: the
  /// load_module lines of the modules the live configuration loads.
  std::vector<std::string> test_includes = {"/etc/nginx/modules-enabled/*.conf"};
  /// nginx's main configuration: checked with `nginx -t` once the candidates are in place and
  /// before the reload (other sites may clash with them); on failure the last good files go
  /// back. Empty = only the candidates are checked.
  std::string main_conf = "/etc/nginx/nginx.conf";
  NginxReload reload = NginxReload::kSystemctl;
  std::string unit = "nginx.service";       // reload: systemctl
  std::string pid_file = "/run/nginx.pid";  // reload: signal
  /// <name>.crt + <name>.key per server name ("*.example.com" → _wildcard.example.com.crt).
  std::string cert_dir = "/etc/elasticdns/certs";
  /// ADDR:PORT nginx resolves service names at; empty = the agent's first DNS listen address.
  std::string resolver;
  std::chrono::seconds valid{5};  // how long nginx caches an answer (resolver valid=)
  uint32_t retries = 3;           // proxy_next_upstream_tries: addresses tried per request
  std::chrono::milliseconds connect_timeout{1000};
  /// Candidates, the test configuration, failed candidates, the self-signed certificate.
  /// Empty = <state_dir>/traffic, or /var/lib/elasticdns/traffic without a state_dir.
  std::string work_dir;
  bool operator==(const TrafficConfig&) const = default;
};

constexpr uint32_t kMaxTrafficRetries = 100;
constexpr std::chrono::seconds kMaxTrafficValid{3600};
constexpr std::chrono::milliseconds kMaxConnectTimeout{60'000};

/// Parse the `traffic` mapping. Errors name the key ("traffic/retries").
Result<TrafficConfig> parseTrafficConfig(const YAML::Node& node);

}  // namespace elasticdns::agent
