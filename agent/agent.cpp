#include "agent/agent.hpp"

#include <malloc.h>
#include <sched.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <iostream>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "agent/ops/systemd.hpp"
#include "elasticdns/text.hpp"
#include "elasticdns/validate.hpp"

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kDrainBound{3};  // SIGTERM, handover: longest wait for forwarded
                                                // queries and open TCP connections
constexpr std::chrono::milliseconds kDrainPollPeriod{10};
constexpr std::chrono::milliseconds kBpfCgroupPoll{1000};  // while eBPF waits for bpf.cgroup
constexpr std::chrono::seconds kStaleCheckPeriod{1};
constexpr const char* kResolvConf = "/etc/resolv.conf";
constexpr int kExitBadConfig = 2;

ZoneConfig zoneConfigOf(const AgentConfig& c) {
  ZoneConfig z;
  z.domain = c.domain;
  z.server_name = c.server_name;
  z.ttl = c.ttl;
  z.negative_ttl = c.negative_ttl;
  z.sticky_window = c.sticky_window;
  z.ns_name = c.nameserver.name;
  for (const auto& a : apexNsAddresses(c)) z.ns_addresses.push_back(a.to_string());
  return z;
}

std::vector<Cidr> allowOf(const AgentConfig& c) {
  return c.allow_networks.empty() ? defaultAllowNetworks(c.listen) : c.allow_networks;
}

/// The configured upstreams, else resolv.conf's nameservers minus the agent's own addresses.
std::vector<asio::ip::udp::endpoint> upstreamsOf(const AgentConfig& c) {
  if (!c.upstreams.empty()) return c.upstreams;
  std::vector<asio::ip::address> own;
  for (const auto& l : c.listen) own.push_back(l.address());
  return readResolvConf(kResolvConf, own);
}

/// Settings that only a restart applies: a reload that changes one is rejected.
bool needsRestart(const AgentConfig& next, const AgentConfig& now) {
  return next.listen != now.listen || next.metrics_listen != now.metrics_listen ||
         next.central_urls != now.central_urls ||
         next.central_token_file != now.central_token_file || next.state_dir != now.state_dir ||
         next.docker != now.docker ||
         next.forward_limit.per_second != now.forward_limit.per_second ||
         next.forward_limit.burst != now.forward_limit.burst || next.traffic != now.traffic ||
         next.upstream_failure_cache.initial != now.upstream_failure_cache.initial ||
         next.upstream_failure_cache.max != now.upstream_failure_cache.max ||
         next.containernet != now.containernet;
}

/// One worker per core this process may run on (its affinity, not the machine's count).
size_t workerThreads() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  return sched_getaffinity(0, sizeof cpus, &cpus) == 0
             ? static_cast<size_t>(std::max(1, CPU_COUNT(&cpus)))
             : std::max(1u, std::thread::hardware_concurrency());
}

int badConfig(const std::string& message) {
  std::cerr << "elasticdns-agent: bad config: " << message << "\n";
  return kExitBadConfig;
}

}  // namespace

TrafficSettings trafficSettingsOf(const AgentConfig& c,
                                  const std::vector<asio::ip::udp::endpoint>& dns_endpoints) {
  TrafficSettings s;
  s.config = c.traffic;
  s.domain = c.domain;
  s.resolver = c.traffic.resolver;
  if (s.resolver.empty() && !dns_endpoints.empty()) {
    auto ep = dns_endpoints.front();
    auto address = ep.address();
    if (address.is_unspecified())
      address = address.is_v4() ? asio::ip::address(asio::ip::address_v4::loopback())
                                : asio::ip::address(asio::ip::address_v6::loopback());
    s.resolver = text::formatHostPort(address.to_string(), ep.port());
  }
  if (s.resolver.empty()) s.resolver = "127.0.0.1:53";
  s.work_dir = !c.traffic.work_dir.empty() ? std::filesystem::path(c.traffic.work_dir)
               : !c.state_dir.empty()      ? std::filesystem::path(c.state_dir) / "traffic"
                                           : std::filesystem::path("/var/lib/elasticdns/traffic");
  return s;
}

Agent::Agent(AgentConfig config, std::string config_path)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      stale_timer_(control_),
      hangup_(control_),
      rotate_(control_),
      watchdog_(control_),
      termination_(control_),
      drain_timer_(control_),
      bpf_retry_(control_) {}

Agent::~Agent() = default;

int Agent::run() {
  if (auto failed = start()) return *failed;
  return serve();
}

std::optional<int> Agent::start() {
  if (auto failed = readTokenFile()) return failed;
  makeForwarder();
  takeInheritedSockets();
  // The metrics listener first: its address is never a DNS listen address.
  std::optional<int> metrics_fd;
  if (config_.metrics_listen)
    metrics_fd = inherited_.take(true, config_.metrics_listen->address().to_string(),
                                 config_.metrics_listen->port());
  if (auto failed = bindServer()) return failed;
  // Before eBPF: a start that fails must not have moved the redirect.
  if (auto failed = startMetrics(metrics_fd)) return failed;
  startBpf();
  startTraffic();       // before sync: the first snapshot reaches it
  startContainerNet();  // likewise
  startSync();
  startDocker();
  if (bpf_)
    server_->start(bpf_->identity());
  else if (!bpf_waiting_for_.empty())
    server_->start(late_identity_);
  else
    server_->start(no_identity_);
  if (!bpf_waiting_for_.empty()) waitForBpfCgroup();
  announce();
  started_ = Clock::now();
  checkStale();
  hangup_.add(SIGHUP);
  waitForHangup();
  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0)
    startWatchdog(std::chrono::microseconds(watchdog_usec / 2));
  waitForTermination();
  finishTakeover();
  listenForHandover();
  return std::nullopt;
}

int Agent::serve() {
  control_.run();
  // A new agent that took the sockets over adopted the interface: its wireguard-go stays.
  if (containernet_) containernet_->stop(handed_to_ != 0);
  server_->join();
  if (handed_to_ != 0)
    spdlog::info("agent: handed over to PID {} after answering {} queries; stopped", handed_to_,
                 server_->answeredQueries());
  else
    spdlog::info("agent: stopped after answering {} queries", server_->answeredQueries());
  return 0;
}

void Agent::stop() {
  asio::post(control_, [this] { drain(); });
}

std::vector<asio::ip::udp::endpoint> Agent::udpEndpoints() const {
  return server_ ? server_->udpEndpoints() : std::vector<asio::ip::udp::endpoint>{};
}

std::optional<int> Agent::readTokenFile() {
  if (config_.central_token_file.empty()) return std::nullopt;
  auto t = text::readTokenFile(config_.central_token_file);
  if (!t) return badConfig("central/token_file: " + t.error().reason);
  token_ = t.value();
  return std::nullopt;
}

// Names outside the zone go to the upstreams; with none, they get REFUSED.
void Agent::makeForwarder() {
  UpstreamConfig upstreams;
  upstreams.servers = upstreamsOf(config_);
  upstreams.failure_hold = config_.upstream_failure_cache.initial;
  upstreams.failure_hold_max = config_.upstream_failure_cache.max;
  if (upstreams.servers.empty())
    spdlog::warn("upstream: no upstream resolvers; names outside {} get REFUSED", config_.domain);
  have_upstreams_ = !upstreams.servers.empty();
  forwarder_ = std::make_unique<Forwarder>(control_, upstreams, registry_);
}

void Agent::takeInheritedSockets() {
  // Socket activation: the sockets elasticdns-agent.socket holds are adopted, not bound, so a
  // restart drops no query.
  inherited_ = takeSystemdSockets();
  socket_activated_ = !inherited_.sockets.empty() || !inherited_.ignored.empty();
  // Hot handover (handover.hpp), everywhere else: take the running agent's sockets before
  // binding anything; it serves them until this one says it is ready.
  handover_path_ = handover::socketPath(config_.state_dir);
  if (!socket_activated_ && !handover_path_.empty()) {
    using Status = handover::TakeResult::Status;
    takeover_ = handover::takeSockets(handover_path_, handover::kTakeTimeout);
    if (takeover_.status == Status::kTaken) {
      spdlog::info("handover: took {} sockets from PID {}", takeover_.sockets.sockets.size(),
                   takeover_.old_pid);
      inherited_ = std::move(takeover_.sockets);
    } else if (takeover_.status == Status::kFailed) {
      spdlog::warn("handover: {}; binding afresh (SO_REUSEPORT: beside an agent still running)",
                   takeover_.detail);
    } else if (!takeover_.detail.empty()) {
      spdlog::info("handover: {}; binding afresh", takeover_.detail);
    }
  }
  for (const auto& why : inherited_.ignored) spdlog::warn("server: socket ignored: {}", why);
}

std::optional<int> Agent::bindServer() {
  ServerOptions options;
  options.inherited = &inherited_;
  options.listen = config_.listen;
  options.allow_networks = allowOf(config_);
  options.forward_per_second = config_.forward_limit.per_second;
  options.forward_burst = config_.forward_limit.burst;
  options.threads = workerThreads();
  ForwardFn forward = [this](const wire::Query& query, std::span<const uint8_t> packet,
                             Forwarder::Done done) {
    if (!have_upstreams_.load()) return done({});
    forwarder_->forward(query, packet, std::move(done));
  };
  size_t inherited_count = inherited_.sockets.size();
  server_ = std::make_unique<DnsServer>(options, store_, forward, registry_);
  if (auto e = server_->bind()) return badConfig(e->message());
  const char* origin = socket_activated_ ? "systemd" : "the previous agent";
  for (const auto& left : inherited_.sockets) {
    spdlog::warn("server: {} passed {} {}:{}, which is not a listen address: closed", origin,
                 left.stream ? "tcp" : "udp", left.address, left.port);
    ::close(left.fd);
  }
  if (inherited_count > inherited_.sockets.size())
    spdlog::info("server: adopted {} socket(s) from {}",
                 inherited_count - inherited_.sockets.size(), origin);
  inherited_.sockets.clear();
  return std::nullopt;
}

std::optional<int> Agent::startMetrics(std::optional<int> inherited_fd) {
  if (!config_.metrics_listen) return std::nullopt;
  metrics_http_ = std::make_unique<MetricsHttp>(control_, registry_);
  auto e = inherited_fd ? metrics_http_->adopt(*inherited_fd, *config_.metrics_listen)
                        : metrics_http_->listen(*config_.metrics_listen);
  if (e) return badConfig(e->message());
  return std::nullopt;
}

void Agent::startBpf() {
  if (!config_.bpf.enabled) return;
  if (auto missing = missingBpfCgroup(config_.bpf)) {
    // Docker's systemd driver makes a cgroup-parent slice only for the first container.
    bpf_waiting_for_ = *missing;
    spdlog::warn(
        "ebpf: waiting for bpf.cgroup {} to appear (checked every {} ms); until then callers "
        "are identified by source address only, and containers' DNS is not redirected",
        bpf_waiting_for_, kBpfCgroupPoll.count());
    return;
  }
  attachBpf();
}

void Agent::waitForBpfCgroup() {
  bpf_retry_.expires_after(kBpfCgroupPoll);
  bpf_retry_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || draining_) return;
    struct stat st;
    if (::stat(bpf_waiting_for_.c_str(), &st) != 0) return waitForBpfCgroup();
    spdlog::info("ebpf: bpf.cgroup {} appeared", bpf_waiting_for_);
    bpf_waiting_for_.clear();
    attachBpf();
  });
}

void Agent::attachBpf() {
  auto started =
      BpfRuntime::start(config_.bpf, redirectTargetOf(server_->udpEndpoints()), registry_);
  if (started) {
    bpf_ = std::move(started.value());
    late_identity_.set(&bpf_->identity());
    return;
  }
  spdlog::error(
      "ebpf: disabled: {}. Degraded: callers are identified by source address only, and "
      "containers' DNS is not redirected (only those whose resolv.conf names the agent reach "
      "it)",
      started.error().message());
}

void Agent::startSync() {
  auto publish = [this](std::shared_ptr<const model::Topology> t) {
    if (traffic_) traffic_->update(t);
    if (containernet_) containernet_->update(t);
    auto r = store_.publish(std::move(t), zoneConfigOf(config_));
    if (!r)
      spdlog::error("zone: snapshot not published: {}", r.error().message());
    else
      spdlog::info("zone: serving snapshot index {}", r.value());
    // Parsing a snapshot (a JSON DOM) and building its zone leave freed heap behind; hand it
    // back to the kernel.
    malloc_trim(0);
  };
  SyncConfig sync;
  sync.urls = config_.central_urls;
  sync.token = token_;
  sync.state_dir = config_.state_dir;
  // Central only answers a long-poll when something changed or the wait ran out, so the last
  // contact is at most `wait` old while central is up: keep it under stale_after.
  sync.wait =
      std::clamp(config_.stale_after / 2, std::chrono::seconds(1), std::chrono::seconds(30));
  // The agent's report to central with every poll (a server name central would refuse is not
  // sent: the report must never stop the sync).
  if (validate::isDnsName(config_.server_name)) {
    sync.report = [this] {
      report::AgentReport r;
      r.server = config_.server_name;
      r.version = ELASTICDNS_VERSION;
      r.ebpf_identity = bpf_ != nullptr;
      r.ebpf_redirect = bpf_ != nullptr && config_.bpf.redirect;
      if (traffic_) r.traffic_generation = traffic_->generation();
      return r;
    };
  }
  sync_ = std::make_unique<SyncClient>(control_, sync, registry_, publish);
  sync_->start();  // publishes the persisted snapshot, if any, before returning
}

// Docker discovery: register this host's labelled containers with central.
void Agent::startDocker() {
  if (!config_.docker.enabled) return;
  DockerDiscoveryOptions options;
  options.docker = config_.docker;
  // ContainerNet's Docker network first when no preference is configured: a container on it
  // is registered with its ContainerNet address.
  if (options.docker.networks.empty() && config_.containernet.enabled &&
      !config_.containernet.docker_network.empty())
    options.docker.networks = {config_.containernet.docker_network};
  options.server = config_.server_name;
  options.central_urls = config_.central_urls;
  options.token = token_;
  docker_ = std::make_unique<DockerDiscovery>(control_, options, registry_);
  docker_->start();
}

// Traffic distribution: nginx follows the topology's ports and traffic_matches.
void Agent::startTraffic() {
  if (!config_.traffic.enabled) return;
  auto settings = trafficSettingsOf(config_, server_->udpEndpoints());
  spdlog::info("traffic: nginx configuration in {} and {}, resolving at {}",
               settings.config.http_file, settings.config.stream_file, settings.resolver);
  traffic_ = std::make_unique<NginxController>(std::move(settings), registry_);
  traffic_->start();
}

// ContainerNet: the WireGuard mesh between the hosts' container subnets, on its own thread.
void Agent::startContainerNet() {
  if (!config_.containernet.enabled) return;
  ContainerNetOptions options;
  options.config = config_.containernet;
  options.state_dir = config_.state_dir;
  options.server = config_.server_name;
  options.central_urls = config_.central_urls;
  options.token = token_;
  if (config_.docker.enabled) options.docker_socket = config_.docker.socket;
  containernet_ = std::make_unique<ContainerNet>(std::move(options), registry_);
  rotate_.add(SIGUSR2);  // before start() writes the PID file --rotate-key signals
  waitForRotation();
  containernet_->start();
}

// SIGUSR2 (`elasticdns-agent --rotate-key` sends it): the key file is read again.
void Agent::waitForRotation() {
  rotate_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    spdlog::info("containernet: SIGUSR2, reading the key file again");
    containernet_->reloadKey();
    waitForRotation();
  });
}

void Agent::announce() {
  for (const auto& ep : server_->udpEndpoints())
    std::cout << "listening on udp " << text::formatHostPort(ep.address().to_string(), ep.port())
              << "\n";
  for (const auto& ep : server_->tcpEndpoints())
    std::cout << "listening on tcp " << text::formatHostPort(ep.address().to_string(), ep.port())
              << "\n";
  if (metrics_http_) {
    auto ep = metrics_http_->endpoint();
    std::cout << "listening on metrics "
              << text::formatHostPort(ep.address().to_string(), ep.port()) << "\n";
  }
  std::cout.flush();
  sd_notify(0, "READY=1");
}

// Serve-stale (RFC 8767): past stale_after without central, zone answers carry EDE 3. The age
// counts from the last contact, or from the start when central was never reached. With no
// central, answers are never stale and no timer runs. While fresh, nothing can change before
// the last contact + stale_after (a contact only moves it later): the check sleeps until then.
// While stale, a contact may end it at any time: the check runs every kStaleCheckPeriod.
// (Waking every second regardless cost about 0.2 ms of CPU a second on an idle agent here.)
void Agent::checkStale() {
  if (config_.central_urls.empty()) return;
  const auto now = Clock::now();
  const auto since = std::max(sync_->lastContact(), started_);
  const bool stale = now - since > config_.stale_after;
  server_->setStale(stale);
  auto next = now + kStaleCheckPeriod;
  if (!stale) next = std::max(next, since + config_.stale_after + std::chrono::milliseconds(1));
  stale_timer_.expires_at(next);  // cancels a wait still pending (a reload calls this again)
  stale_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) checkStale();
  });
}

// SIGHUP: reload; a bad config is rejected and the old one keeps serving.
void Agent::waitForHangup() {
  hangup_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    reload();
    waitForHangup();
  });
}

void Agent::reload() {
  auto next = loadConfig(config_path_);
  if (!next) {
    spdlog::error("config: reload rejected, keeping the old config: {}", next.error().message());
  } else if (needsRestart(next.value(), config_)) {
    spdlog::error(
        "config: reload rejected: listen, metrics_listen, central, state_dir, docker, "
        "forward_limit, traffic, upstream_failure_cache and containernet need a restart");
  } else if (auto r = store_.reconfigure(zoneConfigOf(next.value())); !r) {
    spdlog::error("config: reload rejected: {}", r.error().message());
  } else {
    config_ = std::move(next.value());
    checkStale();  // stale_after may have changed
    server_->setAllowNetworks(allowOf(config_));
    auto servers = upstreamsOf(config_);
    have_upstreams_ = !servers.empty();
    forwarder_->setServers(std::move(servers));
    if (traffic_) traffic_->recheck();
    spdlog::info("config: reloaded {}", config_path_);
  }
}

// WATCHDOG=1 at half the interval systemd asks for.
void Agent::startWatchdog(std::chrono::microseconds interval) {
  sd_notify(0, "WATCHDOG=1");
  watchdog_.expires_after(interval);
  watchdog_.async_wait([this, interval](const boost::system::error_code& ec) {
    if (!ec) startWatchdog(interval);
  });
}

void Agent::waitForTermination() {
  termination_.add(SIGTERM);
  termination_.add(SIGINT);
  termination_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("agent: signal {}, draining", sig);
    drain();
  });
}

// Hot handover: the old agent stops serving only now that this one serves.
void Agent::finishTakeover() {
  if (!takeover_.connection) return;
  if (auto e = handover::sendReady(takeover_.connection.get()))
    spdlog::warn(
        "handover: PID {} did not hear that this agent is ready ({}); it keeps serving the "
        "same sockets until it is stopped",
        takeover_.old_pid, e->reason);
  takeover_.connection = UniqueFd();
}

// Then this one owns the control socket (the old one never removes it).
void Agent::listenForHandover() {
  if (socket_activated_ || handover_path_.empty()) return;
  handover_listener_ = std::make_unique<handover::Listener>(
      control_, handover_path_,
      [this] {
        std::vector<int> fds = server_->listeningSockets();
        if (metrics_http_ && metrics_http_->nativeHandle() >= 0)
          fds.push_back(metrics_http_->nativeHandle());
        return fds;
      },
      [this](uint32_t pid) {
        handed_to_ = pid;
        spdlog::info("agent: PID {} serves the sockets now; draining", pid);
        drain();
      });
  if (auto e = handover_listener_->listen())
    spdlog::warn("handover: {}: a restart outside systemd will drop queries", e->message());
}

// Stop reading, stop every part, then wait (bounded) for forwarded queries and open TCP
// connections before the control loop ends.
void Agent::drain() {
  if (draining_) return;
  draining_ = true;
  sd_notify(0, "STOPPING=1");
  server_->stopReceiving();
  sync_->stop();
  if (docker_) docker_->stop();
  stale_timer_.cancel();
  hangup_.cancel();
  rotate_.cancel();
  watchdog_.cancel();
  bpf_retry_.cancel();
  if (metrics_http_) metrics_http_->stop();
  if (handover_listener_) handover_listener_->stop();
  drain_deadline_ = Clock::now() + kDrainBound;
  waitForDrain();
}

void Agent::waitForDrain() {
  bool idle = server_->inFlight() == 0 && server_->tcpConnections() == 0;
  if (idle || Clock::now() >= drain_deadline_) {
    if (server_->inFlight() != 0)
      spdlog::warn("server: {} forwarded queries unanswered at exit", server_->inFlight());
    if (server_->tcpConnections() != 0)
      spdlog::warn("server: {} TCP connections still open at exit", server_->tcpConnections());
    control_.stop();
    return;
  }
  drain_timer_.expires_after(kDrainPollPeriod);
  drain_timer_.async_wait([this](const boost::system::error_code&) { waitForDrain(); });
}

}  // namespace elasticdns::agent
