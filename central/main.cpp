// elasticdns-central: reads the config, opens the store, serves the HTTP API.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/program_options.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "central/config.hpp"
#include "central/http_server.hpp"
#include "central/state.hpp"
#include "central/store.hpp"
#include "central/watch.hpp"
#include "elasticdns/text.hpp"

namespace po = boost::program_options;
using namespace elasticdns;
using namespace elasticdns::central;

namespace {

[[noreturn]] void fatal(const std::string& what) {
  std::cerr << "elasticdns-central: " << what << "\n";
  std::exit(2);
}

std::string readFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fatal(std::string(what) + ": cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string readToken(const std::string& path, const char* what) {
  auto token = text::readTokenFile(path);
  if (!token) fatal(std::string(what) + ": " + token.error().reason);
  return token.value();
}

constexpr size_t kReservedDescriptors = 64;  // SQLite, logs, the listener, accept headroom

// 1,000s of watchers each hold a socket: use every descriptor the hard limit allows. Returns
// the soft limit now in force.
size_t raiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<size_t>(rl.rlim_cur);
}

po::options_description optionsDescription() {
  po::options_description opts("elasticdns-central options");
  opts.add_options()("help,h", "show this help")("config", po::value<std::string>(),
                                                 "YAML config file (flags override it)")(
      "listen", po::value<std::string>(), "ADDR:PORT to listen on (port 0: the kernel picks)")(
      "data-dir", po::value<std::string>(), "directory of the SQLite database")(
      "admin-token-file", po::value<std::string>(), "file holding the admin (read-write) token")(
      "agent-token-file", po::value<std::string>(), "file holding the agent (read-only) token")(
      "agent-tokens-file", po::value<std::string>(),
      "file of per-server agent tokens: `TOKEN SERVER` lines")(
      "durability", po::value<std::string>(), "full (fsync every commit) or normal")(
      "agent-report-ttl", po::value<std::string>(),
      "an agent that has not polled for this long is shown as not seen (e.g. 60s)")(
      "log-level", po::value<std::string>(), "trace, debug, info, warn, error")(
      "containernet-cluster-cidr", po::value<std::string>(),
      "ContainerNet: the IPv4 network whose subnets are leased to servers (turns it on)")(
      "containernet-subnet-prefix", po::value<std::string>(),
      "ContainerNet: the prefix length of each server's subnet (default 24)");
  return opts;
}

// The config file (--config), then the flags over it, through the same validation. Exits on
// --help and on any error.
Config configFromCommandLine(int argc, char** argv) {
  auto opts = optionsDescription();
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    fatal(e.what());
  }
  if (vm.count("help")) {
    std::cout << opts << "\n";
    std::exit(0);
  }
  Config config;
  if (vm.count("config")) {
    std::string path = vm["config"].as<std::string>();
    auto c = parseConfig(readFile(path, "config"));
    if (!c) fatal(path + ": " + c.error().message());
    config = c.value();
  }
  for (auto [flag, key] : {std::pair{"listen", "listen"},
                           {"data-dir", "data_dir"},
                           {"admin-token-file", "admin_token_file"},
                           {"agent-token-file", "agent_token_file"},
                           {"agent-tokens-file", "agent_tokens_file"},
                           {"durability", "durability"},
                           {"agent-report-ttl", "agent_report_ttl"},
                           {"log-level", "log_level"}}) {
    if (!vm.count(flag)) continue;
    auto c = parseConfig(
        std::string(key) + ": " + nlohmann::json(vm[flag].as<std::string>()).dump(), config);
    if (!c) fatal(std::string("--") + flag + ": " + c.error().reason);
    config = c.value();
  }
  auto flag = [&](const char* name) -> std::optional<std::string> {
    if (!vm.count(name)) return std::nullopt;
    return vm[name].as<std::string>();
  };
  auto c = withContainerNetFlags(config, flag("containernet-cluster-cidr"),
                                 flag("containernet-subnet-prefix"));
  if (!c) fatal("--containernet-*: " + c.error().message());
  config = c.value();
  if (config.data_dir.empty()) fatal("--data-dir (or data_dir in the config) is required");
  if (config.admin_token_file.empty())
    fatal("--admin-token-file (or admin_token_file in the config) is required");
  return config;
}

// Logs go to stderr: stdout's first line is the `listening on` line.
void setUpLogging(const std::string& level) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("central"));
  spdlog::set_level(spdlog::level::from_str(level));
}

// Raises the open-files limit and keeps max_connections within it.
void fitConnectionsToFileLimit(Config& config) {
  size_t files = raiseFileLimit();
  if (files > kReservedDescriptors && config.max_connections > files - kReservedDescriptors) {
    config.max_connections = files - kReservedDescriptors;
    spdlog::warn("central: max_connections lowered to {} (open-files limit {})",
                 config.max_connections, files);
  }
}

Tokens loadTokens(const Config& config) {
  Tokens tokens;
  tokens.admin = readToken(config.admin_token_file, "admin token");
  if (!config.agent_token_file.empty())
    tokens.agent = readToken(config.agent_token_file, "agent token");
  if (!config.agent_tokens_file.empty()) {
    auto servers = AgentTokens::parse(readFile(config.agent_tokens_file, "agent tokens"));
    if (!servers) fatal(config.agent_tokens_file + ": " + servers.error().message());
    tokens.servers = std::move(servers.value());
  }
  return tokens;
}

std::unique_ptr<TopologyState> loadState(const Config& config) {
  auto store = SqliteStore::open(config.data_dir, config.durability, config.change_log_retention);
  if (!store) fatal(store.error().message());
  std::optional<Ipam> ipam;
  if (config.containernet) ipam = ipamOf(*config.containernet);
  auto state = TopologyState::load(std::move(store.value()), config.change_log_retention, ipam);
  if (!state) fatal("loading " + config.data_dir + ": " + state.error().message());
  return std::move(state.value());
}

void logContainerNet(const TopologyState& state) {
  const auto& ipam = state.ipam();
  if (ipam)
    spdlog::info("central: containernet on: /{} subnets of {}, {} of {} leased",
                 ipam->subnetPrefix(), ipam->clusterCidr(), state.leases(), ipam->size());
  else if (state.leases() > 0)
    spdlog::warn(
        "central: containernet off: {} servers keep the subnets leased before; no new leases",
        state.leases());
}

// Serves the API until SIGINT or SIGTERM, then exits: every acknowledged write is committed
// already, so it closes the database (a clean checkpoint) and leaves without unwinding the
// sessions still queued in the io_context (they refer to the server and router on this frame).
[[noreturn]] void serveUntilSignal(const Config& config, Tokens tokens,
                                   std::unique_ptr<TopologyState> state) {
  boost::asio::io_context io(1);
  metrics::Registry registry;
  WatchRegistry watchers(config.max_watchers);
  Router router(
      *state, watchers, std::move(tokens), registry,
      [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); },
      RouterOptions{config.agent_report_ttl});
  HttpServer server(io, router, ServerLimits{config.max_connections, config.idle_timeout});
  auto listen = text::parseHostPort(config.listen);
  if (!listen) fatal("listen: " + listen.error().reason);
  auto bound = server.listen(listen->host, listen->port);
  if (!bound) fatal(bound.error().message());
  server.start();
  std::string address = text::formatHostPort(bound->address().to_string(), bound->port());
  std::printf("listening on %s\n", address.c_str());
  std::fflush(stdout);
  spdlog::info("central: listening on {}, data in {}, index {}, durability {}", address,
               config.data_dir, state->index(),
               config.durability == Durability::kFull ? "full" : "normal");
  logContainerNet(*state);

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    spdlog::info("central: signal {}, stopping", sig);
    server.stop();
    io.stop();
  });
  io.run();
  state.reset();
  std::fflush(stdout);
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  Config config = configFromCommandLine(argc, argv);
  setUpLogging(config.log_level);
  fitConnectionsToFileLimit(config);
  Tokens tokens = loadTokens(config);
  serveUntilSignal(config, std::move(tokens), loadState(config));
}
