// elasticdnsctl: the command-line client of elasticdns-central's HTTP API.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

namespace {

// Exit codes.
constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;  // central answered with an error
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr uint64_t kMaxResponseBytes = 1ull << 32;  // a full snapshot of 1M containers fits

const char* kUsage = R"(usage: elasticdnsctl [--url URL] [--token TOKEN | --token-file FILE] COMMAND

  apply FILE|-                                  POST a service.yml
  server put NAME --address ADDR [--label K=V]...
  server delete NAME
  service put NAME [--dns-behaviour versioned|non-versioned]
                   [--load-balancing roundrobin|sticky|closest]
                   [--port C[:HTTP[:HTTPS]]]... [--traffic-match NAME]...
  service delete NAME
  container put ID --service S --version V --server H [--address IPV4] [--address6 IPV6]
                   [--state running|draining]
  container delete ID
  datasource put TYPE [GROUP] --address ADDR... [--primary]
  datasource delete TYPE [GROUP]
  topology [--index N]                          print the snapshot (or the delta since N)
  watch [--index N] [--wait 30s] [--count N]    print every change as one JSON line

URL defaults to $ELASTICDNS_URL (else http://127.0.0.1:8080); the token to $ELASTICDNS_TOKEN.
Exit codes: 0 ok, 1 central refused the request, 2 usage, 3 central unreachable.
)";

struct UsageError {
  std::string what;
};
struct Unreachable {
  std::string what;
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> flags;

  bool has(const std::string& f) const { return flags.count(f) > 0; }
  std::string one(const std::string& f, const std::string& fallback = {}) const {
    auto it = flags.find(f);
    if (it == flags.end()) return fallback;
    if (it->second.size() > 1) throw UsageError{"--" + f + " given more than once"};
    return it->second.front();
  }
  std::vector<std::string> many(const std::string& f) const {
    auto it = flags.find(f);
    return it == flags.end() ? std::vector<std::string>{} : it->second;
  }
};

const std::set<std::string> kBooleanFlags = {"primary", "help"};

Args parseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() > 2 && s.rfind("--", 0) == 0) {
      std::string name = s.substr(2), value;
      auto eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (kBooleanFlags.count(name)) {
        value = "true";
      } else {
        if (i + 1 >= argc) throw UsageError{"--" + name + " needs a value"};
        value = argv[++i];
      }
      a.flags[name].push_back(value);
    } else if (s == "-h") {
      a.flags["help"].push_back("true");
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

void allowOnly(const Args& a, std::initializer_list<const char*> allowed) {
  for (const auto& [name, values] : a.flags) {
    bool ok = name == "url" || name == "token" || name == "token-file";
    for (const char* x : allowed) ok = ok || name == x;
    if (!ok) throw UsageError{"unknown option --" + name + " for this command"};
  }
}

struct Target {
  std::string host;
  std::string port;
};

Target parseUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    throw UsageError{"--url must start with http:// (got " + url + ")"};
  std::string rest = url.substr(scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    if (rest.substr(slash) != "/") throw UsageError{"--url takes no path"};
    rest = rest.substr(0, slash);
  }
  Target t;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) throw UsageError{"--url: bad IPv6 address"};
    t.host = rest.substr(1, close - 1);
    t.port = close + 1 < rest.size() && rest[close + 1] == ':' ? rest.substr(close + 2) : "80";
  } else {
    auto colon = rest.find(':');
    t.host = rest.substr(0, colon);
    t.port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  }
  if (t.host.empty() || t.port.empty()) throw UsageError{"--url: missing host or port"};
  return t;
}

std::string readFile(const std::string& path) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError{"cannot read " + path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

class Client {
 public:
  Client(Target target, std::string token) : target_(std::move(target)), token_(std::move(token)) {}

  // Returns status and body. Throws Unreachable when central cannot be reached.
  std::pair<unsigned, std::string> call(http::verb method, const std::string& path,
                                        const std::string& body = {},
                                        const std::string& content_type = "application/json") {
    try {
      asio::io_context io;
      tcp::resolver resolver(io);
      beast::tcp_stream stream(io);
      stream.connect(resolver.resolve(target_.host, target_.port));
      http::request<http::string_body> req(method, path, 11);
      req.set(http::field::host, target_.host);
      req.set(http::field::user_agent, "elasticdnsctl");
      if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
      if (!body.empty() || method == http::verb::put || method == http::verb::post) {
        req.set(http::field::content_type, content_type);
        req.body() = body;
      }
      req.keep_alive(false);
      req.prepare_payload();
      http::write(stream, req);
      beast::flat_buffer buffer;
      http::response_parser<http::string_body> parser;
      parser.body_limit(kMaxResponseBytes);
      http::read(stream, buffer, parser);
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return {parser.get().result_int(), std::move(parser.get().body())};
    } catch (const boost::system::system_error& e) {
      throw Unreachable{"http://" + target_.host + ":" + target_.port + ": " + e.what()};
    }
  }

 private:
  Target target_;
  std::string token_;
};

// Prints central's error and returns the exit code for it.
int refused(unsigned status, const std::string& body) {
  std::string detail;
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object()) {
    std::string field = j["error"].value("field", "");
    std::string reason = j["error"].value("reason", "");
    detail = field.empty() ? reason : field + ": " + reason;
  }
  if (status == 401) detail = "unauthorized: wrong or missing token (--token, ELASTICDNS_TOKEN)";
  std::cerr << "elasticdnsctl: central refused (HTTP " << status << ")"
            << (detail.empty() ? "" : ": " + detail) << "\n";
  return kExitRefused;
}

int report(const std::pair<unsigned, std::string>& r) {
  if (r.first >= 300) return refused(r.first, r.second);
  std::cout << r.second << "\n";
  return kExitOk;
}

void needPositional(const Args& a, size_t min, size_t max, const char* what) {
  if (a.positional.size() < min || a.positional.size() > max) throw UsageError{what};
}

int run(const Args& a) {
  if (a.has("help") || a.positional.empty()) {
    std::cout << kUsage;
    return a.positional.empty() && !a.has("help") ? kExitUsage : kExitOk;
  }
  const char* env_url = std::getenv("ELASTICDNS_URL");
  std::string url = a.one("url", env_url ? env_url : "http://127.0.0.1:8080");
  std::string token;
  if (a.has("token") && a.has("token-file"))
    throw UsageError{"give --token or --token-file, not both"};
  if (a.has("token"))
    token = a.one("token");
  else if (a.has("token-file"))
    token = trim(readFile(a.one("token-file")));
  else if (const char* t = std::getenv("ELASTICDNS_TOKEN"))
    token = trim(t);
  Client client(parseUrl(url), token);

  const std::string& cmd = a.positional[0];
  std::string verb = a.positional.size() > 1 ? a.positional[1] : "";

  if (cmd == "apply") {
    allowOnly(a, {});
    needPositional(a, 2, 2, "usage: apply FILE|-");
    return report(
        client.call(http::verb::post, "/v1/apply", readFile(a.positional[1]), "application/yaml"));
  }
  if (cmd == "topology") {
    allowOnly(a, {"index"});
    needPositional(a, 1, 1, "usage: topology [--index N]");
    std::string path = "/v1/topology";
    if (a.has("index")) path += "?index=" + a.one("index");
    auto r = client.call(http::verb::get, path);
    if (r.first >= 300) return refused(r.first, r.second);
    json j = json::parse(r.second, nullptr, false);
    std::cout << (j.is_discarded() ? r.second : j.dump(2)) << "\n";
    return kExitOk;
  }
  if (cmd == "watch") {
    allowOnly(a, {"index", "wait", "count"});
    needPositional(a, 1, 1, "usage: watch [--index N] [--wait 30s] [--count N]");
    std::string wait = a.one("wait", "30s");
    long count = a.has("count") ? std::strtol(a.one("count").c_str(), nullptr, 10) : -1;
    std::string index = a.one("index", "");
    for (long n = 0; count < 0 || n < count; ++n) {
      std::string path = "/v1/topology";
      if (!index.empty()) path += "?index=" + index + "&wait=" + wait;
      auto r = client.call(http::verb::get, path);
      if (r.first >= 300) return refused(r.first, r.second);
      json j = json::parse(r.second, nullptr, false);
      if (j.is_discarded() || !j.contains("index")) {
        std::cerr << "elasticdnsctl: central sent a response that is not a topology\n";
        return kExitRefused;
      }
      std::cout << r.second << std::endl;
      index = std::to_string(j["index"].get<uint64_t>());
    }
    return kExitOk;
  }

  static const std::map<std::string, std::string> kCollections = {{"server", "servers"},
                                                                  {"service", "services"},
                                                                  {"container", "containers"},
                                                                  {"datasource", "datasources"}};
  auto coll = kCollections.find(cmd);
  if (coll == kCollections.end()) throw UsageError{"unknown command '" + cmd + "'"};
  if (verb != "put" && verb != "delete") throw UsageError{cmd + ": expected put or delete"};
  bool is_ds = cmd == "datasource";
  needPositional(
      a, 3, is_ds ? 4 : 3,
      is_ds ? "usage: datasource put|delete TYPE [GROUP]" : "usage: COMMAND put|delete NAME");
  std::string path = "/v1/" + coll->second + "/" + a.positional[2];
  if (is_ds) path += "/" + (a.positional.size() > 3 ? a.positional[3] : std::string("default"));
  if (verb == "delete") {
    allowOnly(a, {});
    return report(client.call(http::verb::delete_, path));
  }
  json body = json::object();
  if (cmd == "server") {
    allowOnly(a, {"address", "label"});
    if (!a.has("address")) throw UsageError{"server put needs --address"};
    body["address"] = a.one("address");
    for (const auto& l : a.many("label")) {
      auto eq = l.find('=');
      if (eq == std::string::npos) throw UsageError{"--label takes KEY=VALUE"};
      body["labels"][l.substr(0, eq)] = l.substr(eq + 1);
    }
  } else if (cmd == "service") {
    allowOnly(a, {"dns-behaviour", "load-balancing", "port", "traffic-match"});
    if (a.has("dns-behaviour")) body["dns_behaviour"] = a.one("dns-behaviour");
    if (a.has("load-balancing")) body["load_balancing"] = a.one("load-balancing");
    if (a.has("port")) body["ports"] = a.many("port");
    if (a.has("traffic-match")) body["traffic_matches"] = a.many("traffic-match");
  } else if (cmd == "container") {
    allowOnly(a, {"service", "version", "server", "address", "address6", "state"});
    for (const char* f : {"service", "version", "server"}) {
      if (!a.has(f)) throw UsageError{std::string("container put needs --") + f};
      body[f] = a.one(f);
    }
    for (const char* f : {"address", "address6", "state"})
      if (a.has(f)) body[f] = a.one(f);
  } else {
    allowOnly(a, {"address", "primary"});
    if (!a.has("address")) throw UsageError{"datasource put needs --address (one or more)"};
    body["addresses"] = a.many("address");
    if (a.has("primary")) body["primary"] = true;
  }
  return report(client.call(http::verb::put, path, body.dump()));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parseArgs(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "elasticdnsctl: " << e.what << "\n(elasticdnsctl --help for usage)\n";
    return kExitUsage;
  } catch (const Unreachable& e) {
    std::cerr << "elasticdnsctl: cannot reach central at " << e.what << "\n";
    return kExitUnreachable;
  }
}
