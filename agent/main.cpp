// elasticdns-agent: wiring only. Config → metrics → topology store → DNS server → forwarder →
// sync → signals (SIGHUP reload, SIGTERM drain) → systemd notifications.
#include <systemd/sd-daemon.h>
#include <unistd.h>

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
#include <nlohmann/json.hpp>

#include "agent/caller_identity.hpp"
#include "agent/config.hpp"
#include "agent/metrics_http.hpp"
#include "agent/server.hpp"
#include "agent/topology_store.hpp"
#include "elasticdns/metrics.hpp"
#include "elasticdns/protocol.hpp"

namespace asio = boost::asio;
using namespace elasticdns;
using namespace elasticdns::agent;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::chrono::seconds kDrainBound{3};  // SIGTERM: longest wait for forwarded queries
constexpr std::chrono::seconds kStaleCheckPeriod{1};

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

/// The snapshot persisted in state_dir (topology.json), if any and valid.
std::shared_ptr<const model::Topology> loadPersisted(const std::string& state_dir) {
  if (state_dir.empty()) return nullptr;
  std::ifstream in(state_dir + "/topology.json");
  if (!in) return nullptr;
  try {
    auto j = nlohmann::json::parse(in);
    auto t = protocol::parseTopology(j.contains("topology") ? j["topology"] : j);
    if (!t) {
      spdlog::error("sync: persisted snapshot rejected: {}", t.error().message());
      return nullptr;
    }
    return std::make_shared<const model::Topology>(std::move(t.value()));
  } catch (const std::exception& e) {
    spdlog::error("sync: persisted snapshot unreadable: {}", e.what());
    return nullptr;
  }
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  std::string config_path;
  po::options_description opts("elasticdns-agent options");
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value<std::string>(&config_path)->required(), "YAML config file");
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

  metrics::Registry registry;
  TopologyStore store;
  NoCallerIdentity no_identity;
  CallerIdentity* identity = &no_identity;
  // BPF: the eBPF helper plugs BpfRuntime in here: when config.bpf.enabled,
  //   auto bpf = BpfRuntime::start(config.bpf, RedirectTarget{...}, registry);
  // on success `identity = &bpf.value()->identity();`, on failure log once what is degraded
  // and keep NoCallerIdentity. The runtime must outlive `server` below.

  asio::io_context control;  // signals, timers, forwarder, sync, metrics endpoint

  ForwardFn forward;  // upstream: not wired yet (names outside the zone get REFUSED)

  ServerOptions sopts;
  sopts.listen = config.listen;
  sopts.allow_networks = allowOf(config);
  sopts.threads = std::max(1u, std::thread::hardware_concurrency());
  DnsServer server(sopts, store, *identity, forward, registry);
  if (auto e = server.bind()) {
    std::cerr << "elasticdns-agent: bad config: " << e->message() << "\n";
    return 2;
  }

  std::unique_ptr<MetricsHttp> metrics_http;
  if (config.metrics_listen) {
    metrics_http = std::make_unique<MetricsHttp>(control, registry);
    if (auto e = metrics_http->listen(*config.metrics_listen)) {
      std::cerr << "elasticdns-agent: bad config: " << e->message() << "\n";
      return 2;
    }
  }

  auto snapshot_time = std::make_shared<std::atomic<int64_t>>(0);
  auto publish = [&](std::shared_ptr<const model::Topology> t) {
    auto r = store.publish(std::move(t), zoneConfigOf(config));
    if (!r) {
      spdlog::error("zone: snapshot not published: {}", r.error().message());
      return;
    }
    snapshot_time->store(Clock::now().time_since_epoch().count());
    spdlog::info("zone: serving snapshot index {}", r.value());
  };
  if (auto t = loadPersisted(config.state_dir)) publish(std::move(t));

  registry.callback("elasticdns_agent_snapshot_index", "Index of the snapshot being served",
                    [&store] {
                      auto z = store.current();
                      return z ? double(z->index()) : 0.0;
                    });
  registry.callback(
      "elasticdns_agent_snapshot_age_seconds", "Seconds since the served snapshot was published",
      [snapshot_time] {
        int64_t t = snapshot_time->load();
        if (t == 0) return -1.0;
        return std::chrono::duration<double>(Clock::now().time_since_epoch() - Clock::duration(t))
            .count();
      });

  server.start();
  for (const auto& ep : server.udpEndpoints())
    std::cout << "listening on udp " << ep.address().to_string() << ":" << ep.port() << "\n";
  for (const auto& ep : server.tcpEndpoints())
    std::cout << "listening on tcp " << ep.address().to_string() << ":" << ep.port() << "\n";
  if (metrics_http) {
    auto ep = metrics_http->endpoint();
    std::cout << "listening on metrics " << ep.address().to_string() << ":" << ep.port() << "\n";
  }
  std::cout.flush();
  sd_notify(0, "READY=1");

  // SIGHUP: reload; a bad config is rejected and the old one keeps serving.
  asio::signal_set hup(control, SIGHUP);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      auto next = loadConfig(config_path);
      if (!next) {
        spdlog::error("config: reload rejected, keeping the old config: {}",
                      next.error().message());
      } else if (next->listen != config.listen || next->metrics_listen != config.metrics_listen) {
        spdlog::error("config: reload rejected: listen and metrics_listen need a restart");
      } else if (auto r = store.reconfigure(zoneConfigOf(next.value())); !r) {
        spdlog::error("config: reload rejected: {}", r.error().message());
      } else {
        config = std::move(next.value());
        server.setAllowNetworks(allowOf(config));
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

  // SIGTERM/SIGINT: stop reading, let forwarded queries finish (bounded), exit 0.
  asio::signal_set term(control, SIGTERM, SIGINT);
  asio::steady_timer drain_timer(control);
  Clock::time_point drain_deadline;
  std::function<void()> wait_drain = [&] {
    if (server.inFlight() == 0 || Clock::now() >= drain_deadline) {
      if (server.inFlight() != 0)
        spdlog::warn("server: {} forwarded queries unanswered at exit", server.inFlight());
      control.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(10));
    drain_timer.async_wait([&](const boost::system::error_code&) { wait_drain(); });
  };
  term.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("agent: signal {}, draining", sig);
    sd_notify(0, "STOPPING=1");
    server.stopReceiving();
    hup.cancel();
    watchdog.cancel();
    if (metrics_http) metrics_http->stop();
    drain_deadline = Clock::now() + kDrainBound;
    wait_drain();
  });

  (void)kStaleCheckPeriod;
  control.run();
  server.join();
  spdlog::info("agent: stopped");
  return 0;
}
