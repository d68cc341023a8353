// elasticdns-agent: wiring only. Config → metrics → topology store → DNS server → forwarder →
// sync → signals (SIGHUP reload, SIGTERM drain) → systemd notifications.
#include <malloc.h>
#include <sched.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/program_options.hpp>

#include "agent/config.hpp"
#include "agent/dns/caller_identity.hpp"
#include "agent/dns/server.hpp"
#include "agent/dns/topology_store.hpp"
#include "agent/ebpf/loader.hpp"
#include "agent/ops/docker.hpp"
#include "agent/ops/handover.hpp"
#include "agent/ops/metrics_http.hpp"
#include "agent/ops/systemd.hpp"
#include "agent/sync/sync_client.hpp"
#include "agent/upstream/forwarder.hpp"
#include "elasticdns/metrics.hpp"

namespace asio = boost::asio;
using namespace elasticdns;
using namespace elasticdns::agent;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::chrono::seconds kDrainBound{3};  // SIGTERM, handover: longest wait for forwarded
                                                // queries and open TCP connections
constexpr std::chrono::seconds kStaleCheckPeriod{1};
constexpr const char* kResolvConf = "/etc/resolv.conf";

ZoneConfig zoneConfigOf(const AgentConfig& c) {
  ZoneConfig z;
  z.domain = c.domain;
  z.server_name = c.server_name;
  z.ttl = c.ttl;
  z.negative_ttl = c.negative_ttl;
  z.sticky_window = c.sticky_window;
  return z;
}

std::vector<Cidr> allowOf(const AgentConfig& c) {
  return c.allow_networks.empty() ? defaultAllowNetworks(c.listen) : c.allow_networks;
}

/// ADDR:PORT, [V6]:PORT: the form the config's `listen` takes.
std::string hostPort(const asio::ip::address& a, uint16_t port) {
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(port);
}

/// The token on the first line of `path`, whitespace trimmed.
Result<std::string> readToken(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  if (!in || !std::getline(in, token)) return Error{"central/token_file", "cannot read " + path};
  auto b = token.find_first_not_of(" \t\r");
  auto e = token.find_last_not_of(" \t\r");
  token = b == std::string::npos ? "" : token.substr(b, e - b + 1);
  if (token.empty()) return Error{"central/token_file", path + " holds no token"};
  return token;
}

/// The configured upstreams, else resolv.conf's nameservers minus the agent's own addresses.
std::vector<asio::ip::udp::endpoint> upstreamsOf(const AgentConfig& c) {
  if (!c.upstreams.empty()) return c.upstreams;
  std::vector<asio::ip::address> own;
  for (const auto& l : c.listen) own.push_back(l.address());
  return readResolvConf(kResolvConf, own);
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  std::string config_path;
  po::options_description opts("elasticdns-agent options");
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value<std::string>(&config_path)->required(), "YAML config file")(
      "detach", "detach the eBPF programs pinned under bpf.pin_path, remove the pins, and exit");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    if (vm.count("help")) {
      std::cout << opts << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "elasticdns-agent: " << e.what() << "\n" << opts << "\n";
    return 2;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("agent"));  // stdout: "listening on" lines
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  auto loaded = loadConfig(config_path);
  if (!loaded) {
    std::cerr << "elasticdns-agent: bad config: " << loaded.error().message() << "\n";
    return 2;
  }
  AgentConfig config = std::move(loaded.value());
  if (vm.count("detach")) {
    std::string err = detachBpf(config.bpf);
    if (!err.empty()) {
      std::cerr << "elasticdns-agent: detach: " << err << "\n";
      return 1;
    }
    std::cout << "detached: nothing pinned under " << config.bpf.pin_path << "\n";
    return 0;
  }

  metrics::Registry registry;
  TopologyStore store;
  // BPF needs the bound port; the server takes the identity when it starts. `bpf` and
  // `no_identity` outlive `server`.
  NoCallerIdentity no_identity;
  std::unique_ptr<BpfRuntime> bpf;

  asio::io_context control;  // signals, timers, forwarder, sync, metrics endpoint

  std::string token;
  if (!config.central_token_file.empty()) {
    auto t = readToken(config.central_token_file);
    if (!t) {
      std::cerr << "elasticdns-agent: bad config: " << t.error().message() << "\n";
      return 2;
    }
    token = t.value();
  }

  // Names outside the zone go to the upstreams; with none, they get REFUSED.
  UpstreamConfig ucfg;
  ucfg.servers = upstreamsOf(config);
  if (ucfg.servers.empty())
    spdlog::warn("upstream: no upstream resolvers; names outside {} get REFUSED", config.domain);
  Forwarder forwarder(control, ucfg, registry);
  auto have_upstreams = std::make_shared<std::atomic<bool>>(!ucfg.servers.empty());
  ForwardFn forward = [&forwarder, have_upstreams](const wire::Query& query,
                                                   std::span<const uint8_t> packet,
                                                   Forwarder::Done done) {
    if (!have_upstreams->load()) return done({});
    forwarder.forward(query, packet, std::move(done));
  };

  // Socket activation: the sockets elasticdns-agent.socket holds are adopted, not bound, so a
  // restart drops no query.
  InheritedSockets inherited = takeSystemdSockets();
  const bool socket_activated = !inherited.sockets.empty() || !inherited.ignored.empty();
  // Hot handover (handover.hpp), everywhere else: take the running agent's sockets before
  // binding anything; it serves them until this one says it is ready.
  const std::string handover_path = handover::socketPath(config.state_dir);
  handover::TakeResult takeover;
  if (!socket_activated && !handover_path.empty()) {
    using Status = handover::TakeResult::Status;
    takeover = handover::takeSockets(handover_path, handover::kTakeTimeout);
    if (takeover.status == Status::kTaken) {
      spdlog::info("handover: took {} sockets from PID {}", takeover.sockets.sockets.size(),
                   takeover.old_pid);
      inherited = std::move(takeover.sockets);
    } else if (takeover.status == Status::kFailed) {
      spdlog::warn("handover: {}; binding afresh (SO_REUSEPORT: beside an agent still running)",
                   takeover.detail);
    } else if (!takeover.detail.empty()) {
      spdlog::info("handover: {}; binding afresh", takeover.detail);
    }
  }
  const char* origin = socket_activated ? "systemd" : "the previous agent";
  for (const auto& why : inherited.ignored) spdlog::warn("server: socket ignored: {}", why);
  // The metrics listener first: its address is never a DNS listen address.
  std::optional<int> metrics_fd;
  if (config.metrics_listen)
    metrics_fd = inherited.take(true, config.metrics_listen->address().to_string(),
                                config.metrics_listen->port());
  size_t inherited_count = inherited.sockets.size();

  ServerOptions sopts;
  sopts.inherited = &inherited;
  sopts.listen = config.listen;
  sopts.allow_networks = allowOf(config);
  sopts.forward_per_second = config.forward_limit.per_second;
  sopts.forward_burst = config.forward_limit.burst;
  // One worker per core this process may run on (its affinity, not the machine's count).
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  sopts.threads = sched_getaffinity(0, sizeof cpus, &cpus) == 0
                      ? static_cast<size_t>(std::max(1, CPU_COUNT(&cpus)))
                      : std::max(1u, std::thread::hardware_concurrency());
  DnsServer server(sopts, store, forward, registry);
  if (auto e = server.bind()) {
    std::cerr << "elasticdns-agent: bad config: " << e->message() << "\n";
    return 2;
  }
  for (const auto& left : inherited.sockets) {
    spdlog::warn("server: {} passed {} {}:{}, which is not a listen address: closed", origin,
                 left.stream ? "tcp" : "udp", left.address, left.port);
    ::close(left.fd);
  }
  if (inherited_count > inherited.sockets.size())
    spdlog::info("server: adopted {} socket(s) from {}", inherited_count - inherited.sockets.size(),
                 origin);
  inherited.sockets.clear();

  // Before eBPF: a start that fails must not have moved the redirect.
  std::unique_ptr<MetricsHttp> metrics_http;
  if (config.metrics_listen) {
    metrics_http = std::make_unique<MetricsHttp>(control, registry);
    auto e = metrics_fd ? metrics_http->adopt(*metrics_fd, *config.metrics_listen)
                        : metrics_http->listen(*config.metrics_listen);
    if (e) {
      std::cerr << "elasticdns-agent: bad config: " << e->message() << "\n";
      return 2;
    }
  }

  if (config.bpf.enabled) {
    auto started = BpfRuntime::start(config.bpf, redirectTargetOf(server.udpEndpoints()), registry);
    if (started) {
      bpf = std::move(started.value());
    } else {
      spdlog::error(
          "ebpf: disabled: {}. Degraded: callers are identified by source address only, and "
          "containers' DNS is not redirected (only those whose resolv.conf names the agent reach "
          "it)",
          started.error().message());
    }
  }

  auto publish = [&store, &config](std::shared_ptr<const model::Topology> t) {
    auto r = store.publish(std::move(t), zoneConfigOf(config));
    if (!r)
      spdlog::error("zone: snapshot not published: {}", r.error().message());
    else
      spdlog::info("zone: serving snapshot index {}", r.value());
    // Parsing a snapshot (a JSON DOM) and building its zone leave freed heap behind; hand it
    // back to the kernel (with 10,000 containers: ~24 MB RSS without this, see README).
    malloc_trim(0);
  };
  SyncConfig scfg;
  scfg.urls = config.central_urls;
  scfg.token = token;
  scfg.state_dir = config.state_dir;
  // Central only answers a long-poll when something changed or the wait ran out, so the last
  // contact is at most `wait` old while central is up: keep it under stale_after.
  scfg.wait = std::clamp(config.stale_after / 2, std::chrono::seconds(1), std::chrono::seconds(30));
  SyncClient sync(control, scfg, registry, publish);
  sync.start();  // publishes the persisted snapshot, if any, before returning

  // Docker discovery: register this host's labelled containers with central.
  std::unique_ptr<DockerDiscovery> docker;
  if (config.docker.enabled) {
    DockerDiscoveryOptions dopts;
    dopts.docker = config.docker;
    dopts.server = config.server_name;
    dopts.central_urls = config.central_urls;
    dopts.token = token;
    docker = std::make_unique<DockerDiscovery>(control, dopts, registry);
    docker->start();
  }

  server.start(bpf ? static_cast<CallerIdentity&>(bpf->identity()) : no_identity);
  for (const auto& ep : server.udpEndpoints())
    std::cout << "listening on udp " << hostPort(ep.address(), ep.port()) << "\n";
  for (const auto& ep : server.tcpEndpoints())
    std::cout << "listening on tcp " << hostPort(ep.address(), ep.port()) << "\n";
  if (metrics_http) {
    auto ep = metrics_http->endpoint();
    std::cout << "listening on metrics " << hostPort(ep.address(), ep.port()) << "\n";
  }
  std::cout.flush();
  sd_notify(0, "READY=1");

  // Serve-stale (RFC 8767): past stale_after without central, zone answers carry EDE 3. The
  // age counts from the last contact, or from the start when central was never reached.
  const Clock::time_point started = Clock::now();
  asio::steady_timer stale_timer(control);
  std::function<void()> check_stale = [&] {
    if (!config.central_urls.empty()) {
      auto since = std::max(sync.lastContact(), started);
      server.setStale(Clock::now() - since > config.stale_after);
    }
    stale_timer.expires_after(kStaleCheckPeriod);
    stale_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) check_stale();
    });
  };
  check_stale();

  // SIGHUP: reload; a bad config is rejected and the old one keeps serving.
  asio::signal_set hup(control, SIGHUP);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      auto next = loadConfig(config_path);
      if (!next) {
        spdlog::error("config: reload rejected, keeping the old config: {}",
                      next.error().message());
      } else if (next->listen != config.listen || next->metrics_listen != config.metrics_listen ||
                 next->central_urls != config.central_urls ||
                 next->central_token_file != config.central_token_file ||
                 next->state_dir != config.state_dir || next->docker != config.docker ||
                 next->forward_limit.per_second != config.forward_limit.per_second ||
                 next->forward_limit.burst != config.forward_limit.burst) {
        spdlog::error(
            "config: reload rejected: listen, metrics_listen, central, state_dir, docker and "
            "forward_limit need a restart");
      } else if (auto r = store.reconfigure(zoneConfigOf(next.value())); !r) {
        spdlog::error("config: reload rejected: {}", r.error().message());
      } else {
        config = std::move(next.value());
        server.setAllowNetworks(allowOf(config));
        auto servers = upstreamsOf(config);
        have_upstreams->store(!servers.empty());
        forwarder.setServers(std::move(servers));
        spdlog::info("config: reloaded {}", config_path);
      }
      wait_hup();
    });
  };
  wait_hup();

  // WATCHDOG=1 at half the interval systemd asks for.
  asio::steady_timer watchdog(control);
  uint64_t watchdog_usec = 0;
  std::function<void()> kick;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    kick = [&] {
      sd_notify(0, "WATCHDOG=1");
      watchdog.expires_after(std::chrono::microseconds(watchdog_usec / 2));
      watchdog.async_wait([&](const boost::system::error_code& ec) {
        if (!ec) kick();
      });
    };
    kick();
  }

  // SIGTERM/SIGINT, or a new agent took the sockets over: stop reading, let forwarded queries
  // and open TCP connections finish (bounded), exit 0.
  asio::signal_set term(control, SIGTERM, SIGINT);
  asio::steady_timer drain_timer(control);
  Clock::time_point drain_deadline;
  std::unique_ptr<handover::Listener> handover_listener;
  bool draining = false;
  uint32_t handed_to = 0;
  std::function<void()> wait_drain = [&] {
    bool idle = server.inFlight() == 0 && server.tcpConnections() == 0;
    if (idle || Clock::now() >= drain_deadline) {
      if (server.inFlight() != 0)
        spdlog::warn("server: {} forwarded queries unanswered at exit", server.inFlight());
      if (server.tcpConnections() != 0)
        spdlog::warn("server: {} TCP connections still open at exit", server.tcpConnections());
      control.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(10));
    drain_timer.async_wait([&](const boost::system::error_code&) { wait_drain(); });
  };
  auto drain = [&] {
    if (draining) return;
    draining = true;
    sd_notify(0, "STOPPING=1");
    server.stopReceiving();
    sync.stop();
    if (docker) docker->stop();
    stale_timer.cancel();
    hup.cancel();
    watchdog.cancel();
    if (metrics_http) metrics_http->stop();
    if (handover_listener) handover_listener->stop();
    drain_deadline = Clock::now() + kDrainBound;
    wait_drain();
  };
  term.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("agent: signal {}, draining", sig);
    drain();
  });

  // Hot handover: the old agent stops serving only now that this one serves; then this one
  // owns the control socket (the old one never removes it).
  if (takeover.connection) {
    if (auto e = handover::sendReady(takeover.connection.get()))
      spdlog::warn(
          "handover: PID {} did not hear that this agent is ready ({}); it keeps serving the "
          "same sockets until it is stopped",
          takeover.old_pid, e->reason);
    takeover.connection = UniqueFd();
  }
  if (!socket_activated && !handover_path.empty()) {
    handover_listener = std::make_unique<handover::Listener>(
        control, handover_path,
        [&] {
          std::vector<int> fds = server.listeningSockets();
          if (metrics_http && metrics_http->nativeHandle() >= 0)
            fds.push_back(metrics_http->nativeHandle());
          return fds;
        },
        [&](uint32_t pid) {
          handed_to = pid;
          spdlog::info("agent: PID {} serves the sockets now; draining", pid);
          drain();
        });
    if (auto e = handover_listener->listen())
      spdlog::warn("handover: {}: a restart outside systemd will drop queries", e->message());
  }

  control.run();
  server.join();
  if (handed_to != 0)
    spdlog::info("agent: handed over to PID {} after answering {} queries; stopped", handed_to,
                 server.answeredQueries());
  else
    spdlog::info("agent: stopped after answering {} queries", server.answeredQueries());
  return 0;
}
