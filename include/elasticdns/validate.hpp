#pragma once
// Validation of topology records, shared by central (on input) and the agent (on receipt).
// Every parser here is strict: unknown fields, wrong types, bad names or addresses and values
// out of range are rejected with an Error naming the field; nothing is partially accepted.
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "elasticdns/model.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::validate {

constexpr size_t kMaxLabelLength = 63;  // RFC 1035 2.3.4
constexpr size_t kMaxNameLength = 253;  // RFC 1035 2.3.4, presentation form
constexpr size_t kMaxIdLength = 128;    // container ids (Docker: 64 hex)
constexpr size_t kMaxVersionLength = 64;
constexpr size_t kMaxLabels = 64;  // server labels
constexpr size_t kMaxLabelValueLength = 255;
constexpr size_t kMaxPorts = 32;  // per service
constexpr size_t kMaxTrafficMatches = 64;
constexpr size_t kMaxDatasourceAddresses = 64;
constexpr size_t kMaxServers = 10'000;
constexpr size_t kMaxServices = 10'000;
constexpr size_t kMaxContainers = 1'000'000;
constexpr size_t kMaxDatasources = 10'000;
constexpr size_t kMaxVersions = 1'000'000;

/// Lowercase DNS label: [a-z0-9]([a-z0-9-]*[a-z0-9])?, 1..63 chars.
bool isDnsLabel(std::string_view s);
/// Dot-separated lowercase DNS labels, at most 253 chars, no trailing dot.
bool isDnsName(std::string_view s);
bool isIpv4(std::string_view s);
bool isIpv6(std::string_view s);
/// ContainerNet subnet: an IPv4 network "A.B.C.D/N", N in 8..30, no host bits set.
bool isIpv4Subnet(std::string_view s);
/// WireGuard public key: standard base64 of 32 bytes (44 characters, one '=' of padding).
bool isWireGuardKey(std::string_view s);
/// WireGuard endpoint: "IPV4:PORT" or "[IPV6]:PORT", port 1..65535.
bool isEndpoint(std::string_view s);
/// Container ids: [A-Za-z0-9][A-Za-z0-9_.-]*, 1..128 chars.
bool isContainerId(std::string_view s);
/// Version names: [A-Za-z0-9][A-Za-z0-9_.+-]*, 1..64 chars.
bool isVersionName(std::string_view s);

/// Parse one record from its JSON object. `key` is the name or id taken from the URL, if any:
/// when the body also carries it, the two must agree; when it does not, the key fills it.
Result<model::Server> parseServer(const nlohmann::json& j, std::string_view key = {});
Result<model::Service> parseService(const nlohmann::json& j, std::string_view key = {});
Result<model::Container> parseContainer(const nlohmann::json& j, std::string_view key = {});
/// `type` and `group` from the URL fill or must match the body's.
Result<model::Datasource> parseDatasource(const nlohmann::json& j, std::string_view type = {},
                                          std::string_view group = {});
/// A `ports` entry: "3000", "3000:80", "3000:80:443" (container:http:https) or the long form
/// {container, http, https, tcp, udp}.
Result<model::PortMapping> parsePort(const nlohmann::json& j);
/// A server's `wireguard` object: {public_key, endpoint}, both required.
Result<model::WireGuardPeer> parseWireGuard(const nlohmann::json& j);

/// Checks that hold across records: every container's service/server/version is well formed
/// and its version is known; sizes within bounds. (A container may name a server or service
/// with no record of its own; defaults apply.)
std::optional<Error> checkTopology(const model::Topology& t);

/// Traffic distribution's port rule (every host's nginx publishes every service's ports): an
/// external port has one kind (http, https and tcp share the TCP port numbers, udp has its
/// own); a tcp or udp port belongs to one service; an http or https port shared by several
/// services needs traffic_matches on each of them, no match (case-insensitive, "_" included)
/// in two of them; no service publishes a port twice. Only conflicts that involve a service
/// in `touched` are reported (nullptr: all). The error names both services and the port.
std::optional<Error> checkPortSharing(const std::map<std::string, model::Service>& services,
                                      const std::set<std::string>* touched = nullptr);

}  // namespace elasticdns::validate
