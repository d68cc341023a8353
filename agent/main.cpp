// elasticdns-agent: arguments → config → Agent (agent.hpp) → run; or --detach.
#include <iostream>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/program_options.hpp>

#include "agent/agent.hpp"
#include "agent/config.hpp"
#include "agent/containernet/containernet.hpp"
#include "agent/ebpf/loader.hpp"
#include "agent/traffic/print_config.hpp"

using namespace elasticdns::agent;

namespace {

/// --detach: remove the pinned eBPF programs a stopped agent left attached, and with
/// containernet.enabled the WireGuard interface (its routes go with it) and its wireguard-go.
int detach(const AgentConfig& config) {
  std::string err = detachBpf(config.bpf);
  if (!err.empty()) {
    std::cerr << "elasticdns-agent: detach: " << err << "\n";
    return 1;
  }
  std::cout << "detached: nothing pinned under " << config.bpf.pin_path << "\n";
  if (config.containernet.enabled) {
    if (auto e = teardownContainerNet(config.containernet, config.state_dir)) {
      std::cerr << "elasticdns-agent: detach: containernet: " << e->message() << "\n";
      return 1;
    }
    std::cout << "detached: no interface " << config.containernet.interface << "\n";
  }
  return 0;
}

/// --rotate-key: a new ContainerNet key file; the running agent is told with SIGUSR2.
int rotateKey(const AgentConfig& config) {
  if (!config.containernet.enabled) {
    std::cerr << "elasticdns-agent: --rotate-key: containernet is not enabled\n";
    return 2;
  }
  auto r = rotateContainerNetKey(config.containernet, config.state_dir);
  if (!r) {
    std::cerr << "elasticdns-agent: --rotate-key: " << r.error().message() << "\n";
    return 1;
  }
  std::cout << r.value() << "\n";
  return 0;
}

/// --print-traffic-config: the nginx configuration for the topology in `topology_path`
/// (default: the snapshot in state_dir).
int printTraffic(const AgentConfig& config, std::string topology_path) {
  if (topology_path.empty()) {
    if (config.state_dir.empty()) {
      std::cerr << "elasticdns-agent: --print-traffic-config needs --topology FILE (or a "
                   "state_dir with a snapshot)\n";
      return 2;
    }
    topology_path = config.state_dir + "/topology.json";
  }
  auto topology = loadTopologyFile(topology_path);
  if (!topology) {
    std::cerr << "elasticdns-agent: topology: " << topology.error().message() << "\n";
    return 1;
  }
  std::cout << printableTrafficConfig(trafficSettingsOf(config, config.listen), topology.value());
  return 0;
}

/// SIGTERM and SIGINT stay caught until the process ends. Asio gives a signal its default action
/// back when the last signal set that catches it is destroyed: the Agent's goes with the Agent,
/// and a second SIGTERM during the last steps of a stop (systemd, an impatient operator) would
/// then kill the stopping agent with a signal status. This set is never destroyed; a signal it
/// catches is only queued, never read.
void keepStopSignalsCaught() {
  static auto* io = new boost::asio::io_context;
  static auto* set = new boost::asio::signal_set(*io, SIGTERM, SIGINT);
  (void)set;
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  std::string config_path;
  std::string topology_path;
  po::options_description opts("elasticdns-agent options");
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value<std::string>(&config_path)->required(), "YAML config file")(
      "detach",
      "detach the eBPF programs pinned under bpf.pin_path, remove the pins, remove the "
      "ContainerNet interface and its wireguard-go, and exit")(
      "rotate-key",
      "write a new ContainerNet private key and tell the running agent (SIGUSR2), and exit")(
      "print-traffic-config", "print the nginx configuration of the topology, and exit")(
      "topology", po::value<std::string>(&topology_path),
      "with --print-traffic-config: central's GET /v1/topology answer or a snapshot file "
      "(- = stdin); default: the snapshot in state_dir");
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
  if (vm.count("detach")) return detach(loaded.value());
  if (vm.count("rotate-key")) return rotateKey(loaded.value());
  if (vm.count("print-traffic-config")) return printTraffic(loaded.value(), topology_path);
  keepStopSignalsCaught();
  Agent agent(std::move(loaded.value()), config_path);
  return agent.run();
}
