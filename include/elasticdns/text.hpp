#pragma once
// The text forms that configs, flags and files share, one grammar each: durations, host:port,
// http(s) URLs and token files. Errors carry no field; the caller names the key or flag.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "elasticdns/result.hpp"

namespace elasticdns::text {

constexpr size_t kMaxDurationDigits = 9;         // 999999999h still fits in milliseconds
constexpr size_t kMaxTokenFileBytes = 64 << 10;  // a token is a line; anything larger is a mistake

/// "500ms", "30s", "5m", "1h": 1 to 9 decimal digits and a unit; a bare number ("30") is
/// seconds. No sign or fraction.
Result<std::chrono::milliseconds> parseDuration(std::string_view s);

struct HostPort {
  std::string host;  // an IPv4 or IPv6 address, without brackets
  uint16_t port = 0;
  bool operator==(const HostPort&) const = default;
};
/// "IPV4:PORT" or "[IPV6]:PORT" (the IPv6 address may carry a zone: "[fe80::1%eth0]:53");
/// port 0..65535. With `default_port`, the address alone ("IPV4",
/// "IPV6", "[IPV6]") is accepted too and gets that port.
Result<HostPort> parseHostPort(std::string_view s,
                               std::optional<uint16_t> default_port = std::nullopt);
/// "host:port", brackets around an IPv6 host: the inverse of parseHostPort.
std::string formatHostPort(std::string_view host, uint16_t port);

/// http://host[:port][/base], or https:// where the caller allows it; host is a name, an IPv4
/// address or a bracketed IPv6 address; the port is 1..65535 (default 80, https 443); no user
/// info, query or fragment.
struct HttpUrl {
  std::string host;          // without brackets
  std::string port = "80";   // decimal, as a resolver takes it
  std::string base;          // path prefix without a trailing slash, e.g. "" or "/central"
  bool https = false;        // https://: reached through TLS (http_client's HttpsDestination)
  std::string text() const;  // for logs: http(s)://host:port/base
};
enum class UrlSchemes : uint8_t { kHttp, kHttpOrHttps };
/// With kHttp (every caller but central's etcd endpoints), https:// is an error.
Result<HttpUrl> parseHttpUrl(std::string_view url, UrlSchemes schemes = UrlSchemes::kHttp);

/// A token file's contents: one token; surrounding whitespace (a trailing newline) is ignored;
/// empty or several words is an error.
Result<std::string> parseToken(std::string_view contents);
/// Reads and parses the token file at `path`; errors name the path.
Result<std::string> readTokenFile(const std::string& path);

}  // namespace elasticdns::text
