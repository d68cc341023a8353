#include "agent/traffic/render.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace elasticdns::agent {
namespace {

enum class Kind : uint8_t { kHttp, kHttps, kTcp, kUdp };

const char* nameOf(Kind k) {
  switch (k) {
    case Kind::kHttp:
      return "http";
    case Kind::kHttps:
      return "https";
    case Kind::kTcp:
      return "tcp";
    case Kind::kUdp:
      return "udp";
  }
  return "";
}

struct Binding {
  std::string service;
  uint16_t container_port = 0;
  std::vector<std::string> names;  // server_name values (http/https)
  bool default_server = false;
};

// Every external port and the services bound to it. http, https and tcp share the TCP port
// space (one kind per port); udp has its own.
struct Listener {
  Kind kind;
  std::vector<Binding> bindings;
};

using ListenerKey = std::pair<bool, uint16_t>;  // {udp, port}

void bind(std::map<ListenerKey, Listener>& listeners, Kind kind, uint16_t port,
          const model::Service& s, uint16_t container_port, std::vector<std::string>& warnings) {
  ListenerKey key{kind == Kind::kUdp, port};
  auto [it, added] = listeners.try_emplace(key, Listener{kind, {}});
  Listener& l = it->second;
  std::string what = std::string(nameOf(kind)) + " port " + std::to_string(port);
  if (!added && l.kind != kind) {
    warnings.push_back(what + " of service " + s.name + " left out: " + l.bindings.front().service +
                       " publishes it as " + nameOf(l.kind));
    return;
  }
  for (const auto& b : l.bindings) {
    if (b.service == s.name) {
      warnings.push_back(what + " of service " + s.name + " left out: published twice");
      return;
    }
  }
  if (!added && (kind == Kind::kTcp || kind == Kind::kUdp)) {
    warnings.push_back(what + " of service " + s.name + " left out: " + l.bindings.front().service +
                       " publishes it");
    return;
  }
  l.bindings.push_back({s.name, container_port, {}, false});
}

std::map<ListenerKey, Listener> collect(const model::Topology& t,
                                        std::vector<std::string>& warnings) {
  std::map<ListenerKey, Listener> listeners;
  for (const auto& [name, s] : t.services) {
    for (const auto& p : s.ports) {
      if (p.http) bind(listeners, Kind::kHttp, p.http, s, p.container, warnings);
      if (p.https) bind(listeners, Kind::kHttps, p.https, s, p.container, warnings);
      if (p.tcp) bind(listeners, Kind::kTcp, p.tcp, s, p.container, warnings);
      if (p.udp) bind(listeners, Kind::kUdp, p.udp, s, p.container, warnings);
    }
  }
  return listeners;
}

// server_name per binding: its traffic_matches; none = everything when the service is alone on
// the port, else its own name. "_" makes the default_server (the first one only).
void nameBindings(const model::Topology& t, const std::string& domain, uint16_t port, Kind kind,
                  Listener& l, std::vector<std::string>& warnings) {
  const Binding* default_binding = nullptr;
  for (auto& b : l.bindings) {
    const auto& matches = t.services.at(b.service).traffic_matches;
    if (!matches.empty())
      b.names = matches;
    else if (l.bindings.size() == 1)
      b.names = {"_"};
    else
      b.names = {b.service, b.service + "." + domain};
    if (std::find(b.names.begin(), b.names.end(), "_") == b.names.end()) continue;
    if (default_binding) {
      warnings.push_back(std::string(nameOf(kind)) + " port " + std::to_string(port) +
                         ": service " + b.service + " also matches \"_\"; " +
                         default_binding->service + " keeps the default");
      continue;
    }
    b.default_server = true;
    default_binding = &b;
  }
}

void proxyLines(std::ostringstream& o, const RenderOptions& opt, const Binding& b) {
  o << "    location / {\n"
    << "        set $elasticdns_upstream " << nginxQuote(b.service + "." + opt.domain) << ";\n"
    << "        proxy_pass http://$elasticdns_upstream:" << b.container_port << ";\n"
    << "        proxy_http_version 1.1;\n"
    << "        proxy_set_header Host $host;\n"
    << "        proxy_set_header X-Real-IP $remote_addr;\n"
    << "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
    << "        proxy_set_header X-Forwarded-Proto $scheme;\n"
    << "        proxy_set_header Upgrade $http_upgrade;\n"
    << "        proxy_set_header Connection $elasticdns_connection;\n"
    << "        proxy_connect_timeout " << opt.connect_timeout.count() << "ms;\n"
    << "        proxy_next_upstream error timeout;\n"
    << "        proxy_next_upstream_tries " << opt.retries << ";\n"
    << "        proxy_request_buffering off;\n"
    << "        client_max_body_size 0;\n"
    << "    }\n";
}

void resolverLine(std::ostringstream& o, const RenderOptions& opt, const char* indent) {
  o << indent << "resolver " << opt.resolver << " valid=" << opt.valid.count() << "s ipv6=off;\n";
}

void serverNames(std::ostringstream& o, const std::vector<std::string>& names) {
  o << "    server_name";
  for (const auto& n : names) o << " " << nginxQuote(n);
  o << ";\n";
}

void httpServer(std::ostringstream& o, const RenderOptions& opt, uint16_t port, const Binding& b) {
  o << "# " << b.service << ": http port " << port << " -> container port " << b.container_port
    << "\nserver {\n    listen " << port << (b.default_server ? " default_server" : "") << ";\n";
  serverNames(o, b.names);
  resolverLine(o, opt, "    ");
  proxyLines(o, opt, b);
  o << "}\n\n";
}

// One server block per certificate: names without their own share the fallback.
void httpsServers(std::ostringstream& o, const RenderOptions& opt, uint16_t port, const Binding& b,
                  std::vector<std::string>& warnings) {
  std::map<CertificatePair, std::vector<std::string>,
           bool (*)(const CertificatePair&, const CertificatePair&)>
      by_cert([](const CertificatePair& x, const CertificatePair& y) {
        return std::tie(x.certificate, x.key) < std::tie(y.certificate, y.key);
      });
  std::vector<std::string> self_signed;
  std::vector<CertificatePair> order;
  for (const auto& n : b.names) {
    std::optional<CertificatePair> c;
    if (n != "_" && opt.certificate_for) c = opt.certificate_for(n);
    if (!c) {
      c = opt.fallback;
      if (n != "_") self_signed.push_back(n);
    }
    if (!by_cert.count(*c)) order.push_back(*c);
    by_cert[*c].push_back(n);
  }
  for (const auto& n : self_signed)
    warnings.push_back("https port " + std::to_string(port) + ": no certificate for " +
                       nginxQuote(n) + " (service " + b.service + "): serving the self-signed one");
  bool default_left = b.default_server;
  for (const auto& cert : order) {
    const auto& names = by_cert[cert];
    bool is_default = default_left && std::find(names.begin(), names.end(), "_") != names.end();
    default_left = default_left && !is_default;
    o << "# " << b.service << ": https port " << port << " -> container port " << b.container_port
      << "\nserver {\n    listen " << port << " ssl" << (is_default ? " default_server" : "")
      << ";\n";
    serverNames(o, names);
    o << "    ssl_certificate " << nginxQuote(cert.certificate) << ";\n"
      << "    ssl_certificate_key " << nginxQuote(cert.key) << ";\n";
    resolverLine(o, opt, "    ");
    proxyLines(o, opt, b);
    o << "}\n\n";
  }
}

// A port where no service matches "_": unknown names get 404 (http) or no handshake (https),
// rather than whichever service nginx would take as the default.
void rejectServer(std::ostringstream& o, Kind kind, uint16_t port) {
  o << "# " << nameOf(kind) << " port " << port << ": names no service matches\nserver {\n";
  if (kind == Kind::kHttp)
    o << "    listen " << port << " default_server;\n    return 404;\n";
  else
    o << "    listen " << port << " ssl default_server;\n    ssl_reject_handshake on;\n";
  o << "}\n\n";
}

void streamServer(std::ostringstream& o, const RenderOptions& opt, Kind kind, uint16_t port,
                  const Binding& b) {
  o << "    # " << b.service << ": " << nameOf(kind) << " port " << port << " -> container port "
    << b.container_port << "\n    server {\n        listen " << port
    << (kind == Kind::kUdp ? " udp" : "") << ";\n";
  resolverLine(o, opt, "        ");
  o << "        set $elasticdns_upstream " << nginxQuote(b.service + "." + opt.domain) << ";\n"
    << "        proxy_pass $elasticdns_upstream:" << b.container_port << ";\n"
    << "        proxy_connect_timeout " << opt.connect_timeout.count() << "ms;\n"
    << "        proxy_next_upstream on;\n"
    << "        proxy_next_upstream_tries " << opt.retries << ";\n"
    << "    }\n";
}

constexpr const char* kHttpHeader =
    "# Generated by elasticdns-agent from the topology's ports and traffic_matches; do not edit.\n"
    "# Included inside nginx's http {} block. nginx resolves <service>.<domain> at the agent\n"
    "# per request, so container changes need no reload.\n"
    "map $http_upgrade $elasticdns_connection {\n"
    "    default upgrade;\n"
    "    \"\" close;\n"
    "}\n\n";

constexpr const char* kStreamHeader =
    "# Generated by elasticdns-agent from the topology's tcp and udp ports; do not edit.\n"
    "# Included at the top level of nginx.conf (the stream module must be loaded).\n";

}  // namespace

std::string nginxQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out + "\"";
}

std::string certificateStem(std::string_view name) {
  std::string stem(name);
  if (stem.rfind("*.", 0) == 0) stem = "_wildcard" + stem.substr(1);
  if (stem.empty() || stem.find('/') != std::string::npos || stem == "." || stem == ".." ||
      stem.find('\0') != std::string::npos)
    return "";
  return stem;
}

RenderedTraffic renderTraffic(const model::Topology& t, const RenderOptions& opt) {
  RenderedTraffic r;
  auto listeners = collect(t, r.warnings);
  std::ostringstream http, stream;
  http << kHttpHeader;
  stream << kStreamHeader;
  bool any_stream = false;
  for (auto& [key, l] : listeners) {
    uint16_t port = key.second;
    if (l.kind == Kind::kTcp || l.kind == Kind::kUdp) {
      if (!any_stream) stream << "stream {\n";
      any_stream = true;
      streamServer(stream, opt, l.kind, port, l.bindings.front());
      continue;
    }
    nameBindings(t, opt.domain, port, l.kind, l, r.warnings);
    bool have_default = false;
    for (const auto& b : l.bindings) {
      have_default = have_default || b.default_server;
      if (l.kind == Kind::kHttp)
        httpServer(http, opt, port, b);
      else
        httpsServers(http, opt, port, b, r.warnings);
    }
    if (!have_default) rejectServer(http, l.kind, port);
  }
  if (any_stream) stream << "}\n";
  r.http = http.str();
  r.stream = stream.str();
  std::sort(r.warnings.begin(), r.warnings.end());
  return r;
}

}  // namespace elasticdns::agent
