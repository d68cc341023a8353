#include "elasticdns/text.hpp"

#include <charconv>
#include <fstream>
#include <iterator>

#include "elasticdns/validate.hpp"

namespace elasticdns::text {
namespace {

constexpr std::string_view kWhitespace = " \t\r\n";

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

// Decimal digits only (no sign, no spaces), at most `max_digits` of them.
std::optional<uint64_t> decimal(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint16_t> port(std::string_view s) {
  auto v = decimal(s, 5);
  if (!v || *v > 65535) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

std::string_view trim(std::string_view s) {
  auto first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kWhitespace) - first + 1);
}

/// An IPv6 address, optionally with a zone ("fe80::1%eth0", RFC 4007 11): a link-local
/// address means nothing without the interface it is on.
bool isIpv6WithZone(std::string_view s) {
  constexpr size_t kMaxZoneLength = 15;  // IFNAMSIZ - 1
  auto percent = s.find('%');
  if (percent == std::string_view::npos) return validate::isIpv6(s);
  std::string_view zone = s.substr(percent + 1);
  if (zone.empty() || zone.size() > kMaxZoneLength ||
      zone.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
          std::string_view::npos)
    return false;
  return validate::isIpv6(s.substr(0, percent));
}

}  // namespace

Result<std::chrono::milliseconds> parseDuration(std::string_view s) {
  size_t digits = s.find_first_not_of("0123456789");
  if (digits == std::string_view::npos) digits = s.size();
  auto n = decimal(s.substr(0, digits), kMaxDurationDigits);
  std::string_view unit = s.substr(digits);
  // A bare number is seconds: agent configs written before the units existed say `ttl: 5`.
  uint64_t per_unit = unit == "ms"                  ? 1
                      : unit == "s" || unit.empty() ? 1000
                      : unit == "m"                 ? 60'000
                      : unit == "h"                 ? 3'600'000
                                                    : 0;
  if (!n || per_unit == 0)
    return Error{"", "not a duration (e.g. 500ms, 5s, 2m, 1h): " + quoted(s)};
  return std::chrono::milliseconds(*n * per_unit);
}

Result<HostPort> parseHostPort(std::string_view s, std::optional<uint16_t> default_port) {
  std::string_view host = s, port_text;
  bool has_port = false;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return Error{"", "missing ']' in " + quoted(s)};
    host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return Error{"", "expected ':' after ']' in " + quoted(s)};
      port_text = s.substr(close + 2);
      has_port = true;
    }
    if (!isIpv6WithZone(host)) return Error{"", "not an IPv6 address: " + quoted(host)};
  } else if (auto colon = s.find(':'); colon != std::string_view::npos && s.rfind(':') == colon) {
    host = s.substr(0, colon);
    port_text = s.substr(colon + 1);
    has_port = true;
    if (!validate::isIpv4(host)) return Error{"", "not an IPv4 address: " + quoted(host)};
  } else if (!validate::isIpv4(host) && !isIpv6WithZone(host)) {
    return Error{"", "not an IP address: " + quoted(host)};
  }
  if (!has_port) {
    if (!default_port) return Error{"", "missing ':PORT' in " + quoted(s)};
    return HostPort{std::string(host), *default_port};
  }
  auto p = port(port_text);
  if (!p) return Error{"", "not a port (0..65535): " + quoted(port_text)};
  return HostPort{std::string(host), *p};
}

std::string formatHostPort(std::string_view host, uint16_t port) {
  bool v6 = host.find(':') != std::string_view::npos;
  return (v6 ? "[" + std::string(host) + "]" : std::string(host)) + ":" + std::to_string(port);
}

std::string HttpUrl::text() const {
  bool v6 = host.find(':') != std::string::npos;
  return (https ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" + port + base;
}

Result<HttpUrl> parseHttpUrl(std::string_view url, UrlSchemes schemes) {
  constexpr std::string_view kHttp = "http://";
  constexpr std::string_view kHttps = "https://";
  HttpUrl out;
  std::string_view rest;
  if (url.starts_with(kHttps)) {
    if (schemes != UrlSchemes::kHttpOrHttps)
      return Error{"", "https is not supported here; use http:// (" + quoted(url) + ")"};
    out.https = true;
    out.port = "443";
    rest = url.substr(kHttps.size());
  } else if (url.starts_with(kHttp)) {
    rest = url.substr(kHttp.size());
  } else {
    return Error{"", std::string(schemes == UrlSchemes::kHttp ? "must start with http:// ("
                                                              : "must start with http:// or "
                                                                "https:// (") +
                         quoted(url) + ")"};
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    out.base = std::string(rest.substr(slash));
    while (!out.base.empty() && out.base.back() == '/') out.base.pop_back();
    if (out.base.find_first_of("?# ") != std::string::npos)
      return Error{"", "must not carry a query or fragment (" + quoted(url) + ")"};
  }
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return Error{"", "unterminated [IPv6] host"};
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return Error{"", "garbage after [IPv6] host"};
    has_port = !after.empty();
    if (has_port) port_text = after.substr(1);
  } else {
    auto colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    has_port = colon != std::string_view::npos;
    if (has_port) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty() || out.host.find_first_of("@ ") != std::string::npos)
    return Error{"", "bad host in " + quoted(url)};
  if (has_port) {
    auto p = port(port_text);
    if (!p || *p == 0) return Error{"", "bad port in " + quoted(url)};
    out.port = std::to_string(*p);
  }
  return out;
}

Result<std::string> parseToken(std::string_view contents) {
  std::string_view token = trim(contents);
  if (token.empty()) return Error{"", "holds no token"};
  if (token.find_first_of(kWhitespace) != std::string_view::npos)
    return Error{"", "must hold one token without whitespace"};
  return std::string(token);
}

Result<std::string> readTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"", "cannot read " + path};
  std::string contents;
  contents.resize(kMaxTokenFileBytes + 1);
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  contents.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) return Error{"", "cannot read " + path};
  if (contents.size() > kMaxTokenFileBytes) return Error{"", path + " is too large for a token"};
  auto token = parseToken(contents);
  if (!token) return Error{"", path + " " + token.error().reason};
  return token;
}

}  // namespace elasticdns::text
