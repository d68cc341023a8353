// elasticdnsctl: the command-line client of elasticdns-central's HTTP API.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <unistd.h>

#include "central/explain.hpp"
#include "central/status.hpp"
#include "elasticdns/protocol.hpp"
#include "elasticdns/text.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace po = boost::program_options;
using tcp = asio::ip::tcp;
using nlohmann::json;
using namespace elasticdns;

namespace {

// Exit codes.
constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;  // central answered with an error
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr int kExitInProgress = 4;          // rollout status: not complete (yet, or at --timeout)
constexpr const char* kStatusWait = "30s";  // each status long-poll of rollout status --wait
constexpr uint64_t kMaxResponseBytes = 1ull << 32;  // a full snapshot of 1M containers fits
constexpr const char* kDefaultUrl = "http://127.0.0.1:8080";

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
  status [--output table|json]                  services x versions per server, datasources,
                                                agents (index, lag, last seen), deploys
  rollout status SERVICE [--wait [--timeout D]] is the rollout complete: only the latest version
                                                runs and every agent seen serves central's index
  explain NAME --from CONTAINER_ID [--output table|json]
                                                the addresses that container gets for NAME, and why

URL defaults to $ELASTICDNS_URL (else http://127.0.0.1:8080); the token to $ELASTICDNS_TOKEN.
Exit codes: 0 ok, 1 central refused the request (or no such service or name), 2 usage,
3 central unreachable, 4 rollout still in progress (rollout status without --wait, or at
--timeout).
)";

struct UsageError {
  std::string what;
};
struct Unreachable {
  std::string what;
};

// The command line: the command and its positional words, and the options given.
struct Invocation {
  std::vector<std::string> words;
  po::variables_map options;

  bool has(const std::string& name) const {
    auto it = options.find(name);
    return it != options.end() && !it->second.defaulted();
  }
  std::string one(const std::string& name, const std::string& fallback = {}) const {
    return has(name) ? options[name].as<std::string>() : fallback;
  }
  std::vector<std::string> many(const std::string& name) const {
    return has(name) ? options[name].as<std::vector<std::string>>() : std::vector<std::string>{};
  }
};

// Every option of every command; each command then allows only its own (allowOnly).
po::options_description optionsDescription() {
  po::options_description opts;
  auto single = [] { return po::value<std::string>(); };
  auto repeated = [] { return po::value<std::vector<std::string>>()->composing(); };
  opts.add_options()("help,h", "")("url", single())("token", single())("token-file", single());
  opts.add_options()("index", single())("wait", single())("count", po::value<uint64_t>());
  opts.add_options()("address", repeated())("label", repeated())("address6", single());
  opts.add_options()("dns-behaviour", single())("load-balancing", single())("port", repeated())(
      "traffic-match", repeated());
  opts.add_options()("service", single())("version", single())("server", single())(
      "state", single())("primary", po::bool_switch());
  opts.add_options()("output", single())("from", single())("timeout", single())("wait-until-done",
                                                                                po::bool_switch());
  opts.add_options()("words", po::value<std::vector<std::string>>());
  return opts;
}

// `rollout status SERVICE --wait` takes no value, unlike `watch --wait 30s`: for the rollout
// command a bare --wait becomes --wait-until-done before parsing.
std::vector<std::string> rolloutWaitFlag(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  bool rollout = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--url" || a == "--token" || a == "--token-file" || a == "--timeout") {
      ++i;  // its value
      continue;
    }
    if (!a.empty() && a[0] != '-') {
      rollout = a == "rollout";
      break;
    }
  }
  if (rollout)
    for (auto& a : args)
      if (a == "--wait") a = "--wait-until-done";
  return args;
}

Invocation parseArgs(int argc, char** argv) {
  std::vector<std::string> args = rolloutWaitFlag(argc, argv);
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argc = static_cast<int>(argp.size());
  argv = argp.data();
  po::positional_options_description positional;
  positional.add("words", -1);
  // No abbreviations: a misspelt flag is an error, not a guess.
  const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
  Invocation call;
  try {
    po::store(po::command_line_parser(argc, argv)
                  .options(optionsDescription())
                  .positional(positional)
                  .style(style)
                  .run(),
              call.options);
    po::notify(call.options);
  } catch (const po::error& e) {
    throw UsageError{e.what()};
  }
  call.words = call.many("words");
  return call;
}

void allowOnly(const Invocation& call, std::initializer_list<const char*> allowed) {
  for (const auto& [name, value] : call.options) {
    if (value.defaulted() || name == "words") continue;
    bool ok = name == "url" || name == "token" || name == "token-file" ||
              (name == "wait-until-done" && !value.as<bool>());
    for (const char* a : allowed) ok = ok || name == a;
    if (!ok) throw UsageError{"unknown option --" + name + " for this command"};
  }
}

void needWords(const Invocation& call, size_t min, size_t max, const char* usage) {
  if (call.words.size() < min || call.words.size() > max) throw UsageError{usage};
}

std::string readFile(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError{"cannot read " + path};
  ss << in.rdbuf();
  return ss.str();
}

struct Response {
  unsigned status = 0;
  std::string body;
};

class Client {
 public:
  Client(text::HttpUrl url, std::string token) : url_(std::move(url)), token_(std::move(token)) {}

  // Throws Unreachable when central cannot be reached.
  Response call(http::verb method, const std::string& path, const std::string& body = {},
                const std::string& content_type = "application/json") {
    try {
      asio::io_context io;
      tcp::resolver resolver(io);
      beast::tcp_stream stream(io);
      stream.connect(resolver.resolve(url_.host, url_.port));
      http::write(stream, request(method, path, body, content_type));
      beast::flat_buffer buffer;
      http::response_parser<http::string_body> parser;
      parser.body_limit(kMaxResponseBytes);
      http::read(stream, buffer, parser);
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return {parser.get().result_int(), std::move(parser.get().body())};
    } catch (const boost::system::system_error& e) {
      throw Unreachable{url_.text() + ": " + e.what()};
    }
  }

 private:
  http::request<http::string_body> request(http::verb method, const std::string& path,
                                           const std::string& body,
                                           const std::string& content_type) const {
    http::request<http::string_body> req(method, path, 11);
    req.set(http::field::host, url_.host);
    req.set(http::field::user_agent, "elasticdnsctl");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    if (!body.empty() || method == http::verb::put || method == http::verb::post) {
      req.set(http::field::content_type, content_type);
      req.body() = body;
    }
    req.keep_alive(false);
    req.prepare_payload();
    return req;
  }

  text::HttpUrl url_;
  std::string token_;
};

// --url, else $ELASTICDNS_URL, else the default; --token, --token-file, else $ELASTICDNS_TOKEN.
Client clientFor(const Invocation& call) {
  const char* env_url = std::getenv("ELASTICDNS_URL");
  auto url = text::parseHttpUrl(call.one("url", env_url ? env_url : kDefaultUrl));
  if (!url) throw UsageError{"--url " + url.error().reason};
  if (!url->base.empty()) throw UsageError{"--url takes no path"};
  if (call.has("token") && call.has("token-file"))
    throw UsageError{"give --token or --token-file, not both"};
  std::string token;
  if (call.has("token")) {
    token = call.one("token");
  } else if (call.has("token-file")) {
    auto t = text::readTokenFile(call.one("token-file"));
    if (!t) throw UsageError{"--token-file: " + t.error().reason};
    token = t.value();
  } else if (const char* env_token = std::getenv("ELASTICDNS_TOKEN")) {
    // An empty variable means no token, as if it were unset.
    if (auto t = text::parseToken(env_token)) token = t.value();
  }
  return Client(std::move(url).value(), token);
}

// Prints central's error and returns the exit code for it.
int refused(const Response& r) {
  std::string detail;
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object()) {
    std::string field = j["error"].value("field", "");
    std::string reason = j["error"].value("reason", "");
    detail = field.empty() ? reason : field + ": " + reason;
  }
  if (r.status == 401) detail = "unauthorized: wrong or missing token (--token, ELASTICDNS_TOKEN)";
  std::cerr << "elasticdnsctl: central refused (HTTP " << r.status << ")"
            << (detail.empty() ? "" : ": " + detail) << "\n";
  return kExitRefused;
}

int report(const Response& r) {
  if (r.status >= 300) return refused(r);
  std::cout << r.body << "\n";
  return kExitOk;
}

int runApply(const Invocation& call) {
  allowOnly(call, {});
  needWords(call, 2, 2, "usage: apply FILE|-");
  return report(clientFor(call).call(http::verb::post, "/v1/apply", readFile(call.words[1]),
                                     "application/yaml"));
}

int runTopology(const Invocation& call) {
  allowOnly(call, {"index"});
  needWords(call, 1, 1, "usage: topology [--index N]");
  std::string path = "/v1/topology";
  if (call.has("index")) path += "?index=" + call.one("index");
  auto r = clientFor(call).call(http::verb::get, path);
  if (r.status >= 300) return refused(r);
  json j = json::parse(r.body, nullptr, false);
  std::cout << (j.is_discarded() ? r.body : j.dump(2)) << "\n";
  return kExitOk;
}

// Long-polls central from --index on, printing each answer as it comes, --count times (or
// until interrupted).
int runWatch(const Invocation& call) {
  allowOnly(call, {"index", "wait", "count"});
  needWords(call, 1, 1, "usage: watch [--index N] [--wait 30s] [--count N]");
  Client client = clientFor(call);
  std::string wait = call.one("wait", "30s");
  std::optional<uint64_t> count;
  if (call.has("count")) count = call.options["count"].as<uint64_t>();
  std::string index = call.one("index");
  for (uint64_t n = 0; !count || n < *count; ++n) {
    std::string path = "/v1/topology";
    if (!index.empty()) path += "?index=" + index + "&wait=" + wait;
    auto r = client.call(http::verb::get, path);
    if (r.status >= 300) return refused(r);
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.contains("index")) {
      std::cerr << "elasticdnsctl: central sent a response that is not a topology\n";
      return kExitRefused;
    }
    std::cout << r.body << std::endl;
    index = std::to_string(j["index"].get<uint64_t>());
  }
  return kExitOk;
}

// --address repeats for datasources only; servers and containers have one.
std::optional<std::string> singleAddress(const Invocation& call) {
  auto address = call.many("address");
  if (address.size() > 1) throw UsageError{"--address given more than once"};
  if (address.empty()) return std::nullopt;
  return address.front();
}

json serverBody(const Invocation& call) {
  allowOnly(call, {"address", "label"});
  auto address = singleAddress(call);
  if (!address) throw UsageError{"server put needs --address"};
  json body = {{"address", *address}};
  for (const auto& label : call.many("label")) {
    auto eq = label.find('=');
    if (eq == std::string::npos) throw UsageError{"--label takes KEY=VALUE"};
    body["labels"][label.substr(0, eq)] = label.substr(eq + 1);
  }
  return body;
}

json serviceBody(const Invocation& call) {
  allowOnly(call, {"dns-behaviour", "load-balancing", "port", "traffic-match"});
  json body = json::object();
  if (call.has("dns-behaviour")) body["dns_behaviour"] = call.one("dns-behaviour");
  if (call.has("load-balancing")) body["load_balancing"] = call.one("load-balancing");
  if (call.has("port")) body["ports"] = call.many("port");
  if (call.has("traffic-match")) body["traffic_matches"] = call.many("traffic-match");
  return body;
}

json containerBody(const Invocation& call) {
  allowOnly(call, {"service", "version", "server", "address", "address6", "state"});
  json body = json::object();
  for (const char* f : {"service", "version", "server"}) {
    if (!call.has(f)) throw UsageError{std::string("container put needs --") + f};
    body[f] = call.one(f);
  }
  if (auto address = singleAddress(call)) body["address"] = *address;
  for (const char* f : {"address6", "state"})
    if (call.has(f)) body[f] = call.one(f);
  return body;
}

json datasourceBody(const Invocation& call) {
  allowOnly(call, {"address", "primary"});
  if (!call.has("address")) throw UsageError{"datasource put needs --address (one or more)"};
  json body = {{"addresses", call.many("address")}};
  if (call.options["primary"].as<bool>()) body["primary"] = true;
  return body;
}

// server|service|container|datasource put|delete KEY...: one record.
int runRecord(const Invocation& call) {
  using BodyFn = json (*)(const Invocation&);
  struct Kind {
    const char* collection;
    BodyFn body;
  };
  static const std::map<std::string, Kind> kKinds = {
      {"server", {"servers", serverBody}},
      {"service", {"services", serviceBody}},
      {"container", {"containers", containerBody}},
      {"datasource", {"datasources", datasourceBody}}};
  const std::string& cmd = call.words[0];
  auto kind = kKinds.find(cmd);
  if (kind == kKinds.end()) throw UsageError{"unknown command '" + cmd + "'"};
  std::string verb = call.words.size() > 1 ? call.words[1] : "";
  if (verb != "put" && verb != "delete") throw UsageError{cmd + ": expected put or delete"};
  bool is_datasource = cmd == "datasource";
  needWords(call, 3, is_datasource ? 4 : 3,
            is_datasource ? "usage: datasource put|delete TYPE [GROUP]"
                          : "usage: COMMAND put|delete NAME");
  std::string path = "/v1/" + std::string(kind->second.collection) + "/" + call.words[2];
  if (is_datasource) path += "/" + (call.words.size() > 3 ? call.words[3] : std::string("default"));
  if (verb == "delete") {
    allowOnly(call, {});
    return report(clientFor(call).call(http::verb::delete_, path));
  }
  json body = kind->second.body(call);
  return report(clientFor(call).call(http::verb::put, path, body.dump()));
}

// --output table (default) or json.
bool jsonOutput(const Invocation& call) {
  std::string output = call.one("output", "table");
  if (output != "table" && output != "json") throw UsageError{"--output takes table or json"};
  return output == "json";
}

// GET /v1/status (a long-poll from `generation` when given); the document, or the exit code
// of a refusal.
std::variant<json, int> fetchStatus(Client& client, std::optional<uint64_t> generation,
                                    const std::string& wait) {
  std::string path = "/v1/status";
  if (generation) path += "?generation=" + std::to_string(*generation) + "&wait=" + wait;
  auto r = client.call(http::verb::get, path);
  if (r.status >= 300) return refused(r);
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("services") || !j.contains("generation")) {
    std::cerr << "elasticdnsctl: central sent a response that is not a status\n";
    return kExitRefused;
  }
  return j;
}

int runStatus(const Invocation& call) {
  allowOnly(call, {"output"});
  needWords(call, 1, 1, "usage: status [--output table|json]");
  bool as_json = jsonOutput(call);
  Client client = clientFor(call);
  auto status = fetchStatus(client, std::nullopt, "");
  if (auto* code = std::get_if<int>(&status)) return *code;
  const json& j = std::get<json>(status);
  if (as_json) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  bool colour = isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;
  std::cout << central::status::renderTables(j, colour);
  return kExitOk;
}

// One line on the rollout of `service` in a status document.
std::string rolloutLine(const json& status, const json& service) {
  const json& rollout = service["rollout"];
  if (rollout.contains("verdict")) return rollout["verdict"].get<std::string>();
  std::string line = service["name"].get<std::string>() + ": ";
  if (service["versions"].empty()) return line + "no containers";
  const json& v = service["versions"].back();
  line += v["name"].get<std::string>() + " " + std::to_string(v["running"].get<uint64_t>()) +
          " running";
  uint64_t behind = status.value("agents_behind", uint64_t{0});
  if (behind)
    return line + "; " + std::to_string(behind) + " agent" + (behind > 1 ? "s" : "") +
           " not yet at index " + std::to_string(status["index"].get<uint64_t>());
  return line + "; every agent at index " + std::to_string(status["index"].get<uint64_t>());
}

// rollout status SERVICE [--wait [--timeout D]]: prints the rollout's state (again whenever it
// changes while waiting); exit 0 once complete.
int runRollout(const Invocation& call) {
  allowOnly(call, {"wait-until-done", "timeout"});
  needWords(call, 3, 3, "usage: rollout status SERVICE [--wait [--timeout D]]");
  if (call.words[1] != "status") throw UsageError{"rollout: expected status"};
  const std::string& name = call.words[2];
  bool wait = call.options["wait-until-done"].as<bool>();
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (call.has("timeout")) {
    if (!wait) throw UsageError{"--timeout goes with --wait"};
    auto d = text::parseDuration(call.one("timeout"));
    if (!d) throw UsageError{"--timeout takes a duration like 500ms, 30s or 5m"};
    deadline = std::chrono::steady_clock::now() + d.value();
  }
  Client client = clientFor(call);
  std::optional<uint64_t> generation;
  std::string last_line;
  for (;;) {
    std::string poll_wait = kStatusWait;
    if (generation && deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return kExitInProgress;
      poll_wait = std::to_string(std::min<int64_t>(left.count(), 30'000)) + "ms";
    }
    auto status = fetchStatus(client, generation, poll_wait);
    if (auto* code = std::get_if<int>(&status)) return *code;
    const json& j = std::get<json>(status);
    const json* service = nullptr;
    for (const auto& s : j["services"])
      if (s["name"] == name) service = &s;
    if (service == nullptr) {
      std::cerr << "elasticdnsctl: no service '" << name << "' at central\n";
      return kExitRefused;
    }
    std::string line = rolloutLine(j, *service);
    if (line != last_line) std::cout << line << std::endl;
    last_line = line;
    if ((*service)["rollout"]["complete"].get<bool>()) return kExitOk;
    if (!wait) return kExitInProgress;
    generation = j["generation"].get<uint64_t>();
  }
}

// explain NAME --from CONTAINER_ID: central's topology through the agent's policy code.
int runExplain(const Invocation& call) {
  allowOnly(call, {"from", "output"});
  needWords(call, 2, 2, "usage: explain NAME --from CONTAINER_ID [--output table|json]");
  if (!call.has("from")) throw UsageError{"explain needs --from CONTAINER_ID"};
  bool as_json = jsonOutput(call);
  auto r = clientFor(call).call(http::verb::get, "/v1/topology");
  if (r.status >= 300) return refused(r);
  json j = json::parse(r.body, nullptr, false);
  auto parsed = j.is_discarded() ? Result<protocol::TopologyResponse>(Error{"body", "not JSON"})
                                 : protocol::parseResponse(j);
  if (!parsed) {
    std::cerr << "elasticdnsctl: central sent a topology that does not parse: "
              << parsed.error().message() << "\n";
    return kExitRefused;
  }
  auto e = central::explainAnswer(parsed->topology, call.words[1], call.one("from"));
  if (!e) {
    std::cerr << "elasticdnsctl: " << e.error().message() << "\n";
    return kExitRefused;
  }
  std::cout << (as_json ? e->dump(2) + "\n" : central::renderExplanation(e.value()));
  return kExitOk;
}

int run(const Invocation& call) {
  if (call.has("help") || call.words.empty()) {
    std::cout << kUsage;
    return call.has("help") ? kExitOk : kExitUsage;
  }
  const std::string& cmd = call.words[0];
  if (cmd == "apply") return runApply(call);
  if (cmd == "topology") return runTopology(call);
  if (cmd == "watch") return runWatch(call);
  if (cmd == "status") return runStatus(call);
  if (cmd == "rollout") return runRollout(call);
  if (cmd == "explain") return runExplain(call);
  return runRecord(call);
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
