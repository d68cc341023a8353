#pragma once
// The nginx configuration of a topology's `ports` and `traffic_matches`: a pure function from
// the topology and the options to text (agent/README.md, "Traffic distribution"). Nothing in
// the text depends on containers, so container churn renders the same text and never reloads
// nginx: nginx resolves <service>.<domain> at the agent per request (resolver + a variable
// proxy_pass) and gets the latest version's containers.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "elasticdns/model.hpp"

namespace elasticdns::agent {

struct CertificatePair {
  std::string certificate;  // PEM file paths
  std::string key;
  bool operator==(const CertificatePair&) const = default;
};

struct RenderOptions {
  std::string domain = "cloud66.local";
  std::string resolver = "127.0.0.1:53";  // ADDR:PORT, IPv6 in brackets
  std::chrono::seconds valid{5};
  uint32_t retries = 3;
  std::chrono::milliseconds connect_timeout{1000};
  /// The certificate of an HTTPS server name, or nullopt: the name is served with `fallback`
  /// (and a warning says so).
  std::function<std::optional<CertificatePair>(std::string_view server_name)> certificate_for;
  CertificatePair fallback;  // the self-signed certificate
};

struct RenderedTraffic {
  std::string http;    // included inside http {}
  std::string stream;  // included at the top level of nginx.conf: a stream {} block, or nothing
  /// What an operator should know: names served with the self-signed certificate, entries left
  /// out because they collide with another service's port. Sorted, one line each.
  std::vector<std::string> warnings;
  bool operator==(const RenderedTraffic&) const = default;
};

RenderedTraffic renderTraffic(const model::Topology& topology, const RenderOptions& options);

/// A double-quoted nginx string: backslash, quote, tab, CR and LF escaped.
std::string nginxQuote(std::string_view s);
/// The file name stem of a server name's certificate in the certificate directory:
/// "app.example.com" → "app.example.com", "*.example.com" → "_wildcard.example.com". Names
/// that cannot be a file name ('/', "..", empty) → "".
std::string certificateStem(std::string_view server_name);

}  // namespace elasticdns::agent
