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
#include "central/etcd_store.hpp"
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
      "store", po::value<std::string>(), "sqlite (default) or etcd")(
      "data-dir", po::value<std::string>(), "directory of the SQLite database")(
      "etcd-endpoints", po::value<std::string>(),
      "etcd: comma-separated http://HOST:PORT (or all https://) of the cluster's members")(
      "etcd-prefix", po::value<std::string>(), "etcd: the key prefix (default /elasticdns/)")(
      "export", po::value<std::string>(),
      "write the store's topology as JSON to FILE (- for stdout) and exit")(
      "import", po::value<std::string>(),
      "load a topology written by --export into an empty store and exit")(
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
Config configFromCommandLine(int argc, char** argv, std::optional<std::string>& export_to,
                             std::optional<std::string>& import_from) {
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
                           {"store", "store"},
                           {"etcd-endpoints", "etcd: {endpoints"},
                           {"etcd-prefix", "etcd: {prefix"},
                           {"data-dir", "data_dir"},
                           {"admin-token-file", "admin_token_file"},
                           {"agent-token-file", "agent_token_file"},
                           {"agent-tokens-file", "agent_tokens_file"},
                           {"durability", "durability"},
                           {"agent-report-ttl", "agent_report_ttl"},
                           {"log-level", "log_level"}}) {
    if (!vm.count(flag)) continue;
    std::string value = nlohmann::json(vm[flag].as<std::string>()).dump();
    bool nested = std::string_view(key).find('{') != std::string_view::npos;
    auto c = parseConfig(std::string(key) + ": " + value + (nested ? "}" : ""), config);
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
  if (config.store == StoreKind::kSqlite && config.data_dir.empty())
    fatal("--data-dir (or data_dir in the config) is required");
  if (config.store == StoreKind::kEtcd && config.etcd.endpoints.empty())
    fatal("store etcd: --etcd-endpoints (or etcd: endpoints in the config) is required");
  if (vm.count("export")) export_to = vm["export"].as<std::string>();
  if (vm.count("import")) import_from = vm["import"].as<std::string>();
  if (export_to && import_from) fatal("--export and --import exclude each other");
  if (export_to || import_from) return config;
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

std::unique_ptr<Store> openStore(const Config& config) {
  if (config.store == StoreKind::kEtcd) {
    auto store = EtcdStore::open(config.etcd);
    if (!store) fatal(store.error().message());
    return std::move(store.value());
  }
  auto store = SqliteStore::open(config.data_dir, config.durability, config.change_log_retention);
  if (!store) fatal(store.error().message());
  return std::move(store.value());
}

std::string storeName(const Config& config) {
  if (config.store == StoreKind::kSqlite) return config.data_dir;
  std::string out = "etcd";
  for (const auto& e : config.etcd.endpoints) out += " " + e;
  return out + " prefix " + config.etcd.prefix;
}

std::unique_ptr<TopologyState> loadState(const Config& config, std::unique_ptr<Store> store) {
  std::optional<Ipam> ipam;
  if (config.containernet) ipam = ipamOf(*config.containernet);
  auto state = TopologyState::load(std::move(store), config.change_log_retention, ipam);
  if (!state) fatal("loading " + storeName(config) + ": " + state.error().message());
  return std::move(state.value());
}

// --export: the store's topology as a full GET /v1/topology answer.
[[noreturn]] void exportTopology(const Config& config, const std::string& path) {
  auto store = openStore(config);
  auto loaded = store->load();
  if (!loaded) fatal("loading " + storeName(config) + ": " + loaded.error().message());
  std::string text = protocol::writeFullResponse(loaded->topology);
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) fatal("export: cannot write " + path);
  }
  std::fflush(stdout);
  std::fprintf(stderr, "elasticdns-central: exported index %llu from %s\n",
               static_cast<unsigned long long>(loaded->topology.index), storeName(config).c_str());
  std::exit(0);
}

// --import: an --export file into an empty store, in commits the store takes. Versions keep
// their generations (so their order), servers their leases.
[[noreturn]] void importTopology(const Config& config, const std::string& path) {
  auto parsed = nlohmann::json::parse(readFile(path, "import"), nullptr, false);
  if (parsed.is_discarded()) fatal("import: " + path + " is not JSON");
  auto response = protocol::parseResponse(parsed);
  if (!response || !response->full)
    fatal("import: " + path + " is not a full topology (elasticdns-central --export): " +
          (response ? std::string("a delta") : response.error().message()));
  auto store = openStore(config);
  auto existing = store->load();
  if (!existing) fatal("loading " + storeName(config) + ": " + existing.error().message());
  if (existing->topology.index != 0)
    fatal("import: " + storeName(config) + " is not empty (index " +
          std::to_string(existing->topology.index) + "); import only into a new store");
  const model::Topology& t = response->topology;
  std::vector<StoredChange> all;
  auto add = [&](protocol::RecordKind kind, const std::string& key, std::string value) {
    all.push_back({0, protocol::ChangeOp::kPut, kind, key, std::move(value), {}});
  };
  for (const auto& [name, g] : t.versions)
    add(protocol::RecordKind::kVersion, name,
        nlohmann::json{{"generation", g}, {"name", name}}.dump());
  auto addAll = [&](const auto& records) {
    for (const auto& [key, r] : records) {
      protocol::Record record{r};
      add(protocol::kindOf(record), key, protocol::toJson(record).dump());
    }
  };
  addAll(t.servers);
  addAll(t.services);
  addAll(t.datasources);
  addAll(t.containers);
  uint64_t index = 0;
  size_t per_commit = store->maxChangesPerCommit();
  for (size_t start = 0; start < all.size(); start += per_commit) {
    std::vector<StoredChange> part(
        all.begin() + static_cast<std::ptrdiff_t>(start),
        all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), start + per_commit)));
    for (size_t i = 0; i < part.size(); ++i) {
      part[i].index = index + i + 1;
      part[i].change = protocol::writeChange(part[i].index, part[i].op, part[i].kind, part[i].key,
                                             part[i].value);
    }
    auto committed = store->commit(part, index);
    if (!committed) fatal("import: " + committed.error().message());
    index = committed.value();
  }
  std::fprintf(stderr, "elasticdns-central: imported %zu records into %s, index %llu\n", all.size(),
               storeName(config).c_str(), static_cast<unsigned long long>(index));
  std::exit(0);
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

// A replica over etcd: other replicas' commits reach memory through the store's watch.
void followEtcd(EtcdStore& etcd, boost::asio::io_context& io, TopologyState& state,
                Router& router) {
  EtcdStore::Follow follow;
  follow.post = [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); };
  follow.changes = [&state, &router](uint64_t index, std::vector<RemoteChange> changes) {
    uint64_t before = state.index();
    if (auto e = state.applyRemote(index, changes))
      spdlog::error("central.etcd: revision {}: skipped a record: {}", index, e->message());
    if (state.index() != before) router.storeAdvanced();
  };
  follow.compacted = [&state, &router, &etcd] {
    if (auto e = state.reload()) {
      spdlog::error("central.etcd: reload after compaction failed: {}", e->message());
    } else {
      spdlog::info("central.etcd: reloaded at index {}: watchers behind get a full snapshot",
                   state.index());
      router.storeAdvanced();
    }
    etcd.resume();
  };
  follow.health = [&router, &etcd](bool healthy) {
    if (healthy)
      spdlog::info("central.etcd: the quorum answers again; writes are accepted");
    else
      spdlog::warn(
          "central.etcd: no quorum answers (last watch endpoint {}): writes are "
          "refused, reads are served from memory",
          etcd.watchEndpoint());
    router.storeHealthChanged(healthy);
  };
  follow.beat = [&router] { router.retryConflicted(); };
  etcd.follow(std::move(follow));
}

// Serves the API until SIGINT or SIGTERM, then exits: every acknowledged write is committed
// already, so it closes the database (a clean checkpoint) and leaves without unwinding the
// sessions still queued in the io_context (they refer to the server and router on this frame).
[[noreturn]] void serveUntilSignal(const Config& config, Tokens tokens,
                                   std::unique_ptr<TopologyState> state, EtcdStore* etcd) {
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
  spdlog::info("central: listening on {}, store {}, index {}{}", address, storeName(config),
               state->index(),
               config.store == StoreKind::kEtcd         ? ""
               : config.durability == Durability::kFull ? ", durability full"
                                                        : ", durability normal");
  logContainerNet(*state);
  if (etcd) followEtcd(*etcd, io, *state, router);

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
  std::optional<std::string> export_to, import_from;
  Config config = configFromCommandLine(argc, argv, export_to, import_from);
  setUpLogging(config.log_level);
  if (export_to) exportTopology(config, *export_to);
  if (import_from) importTopology(config, *import_from);
  fitConnectionsToFileLimit(config);
  Tokens tokens = loadTokens(config);
  auto store = openStore(config);
  auto* etcd = dynamic_cast<EtcdStore*>(store.get());
  serveUntilSignal(config, std::move(tokens), loadState(config, std::move(store)), etcd);
}
