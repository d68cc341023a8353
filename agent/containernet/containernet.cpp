#include "agent/containernet/containernet.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "agent/containernet/docker_network.hpp"
#include "agent/containernet/key.hpp"
#include "agent/containernet/reconcile.hpp"
#include "agent/containernet/rtnetlink.hpp"
#include "agent/containernet/wireguard_device.hpp"
#include "elasticdns/http_client.hpp"
#include "agent/util/unique_fd.hpp"
#include "elasticdns/text.hpp"

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kOverheadIpv4 = 60;  // outer IPv4 20 + UDP 8 + WireGuard 32
constexpr uint32_t kOverheadIpv6 = 80;  // outer IPv6 40 + UDP 8 + WireGuard 32
constexpr uint32_t kDefaultUnderlayMtu = 1500;

// The name of the interface that holds `address`, or "".
std::string interfaceWithAddress(const std::string& address) {
  boost::system::error_code ec;
  auto want = asio::ip::make_address(address, ec);
  if (ec) return "";
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return "";
  std::string found;
  for (ifaddrs* i = ifs; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET && want.is_v4()) {
      asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
      if (asio::ip::address_v4(b) == want.to_v4()) found = i->ifa_name;
    } else if (i->ifa_addr->sa_family == AF_INET6 && want.is_v6()) {
      asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
      if (asio::ip::address_v6(b) == want.to_v6()) found = i->ifa_name;
    }
  }
  freeifaddrs(ifs);
  return found;
}

}  // namespace

std::string wireguardGoPidFileOf(const ContainerNetConfig& c, const std::string& state_dir) {
  return (std::filesystem::path(keyFileOf(c, state_dir)).parent_path() /
          "containernet-wireguard-go.pid")
      .string();
}

struct ContainerNet::Impl : std::enable_shared_from_this<Impl> {
  Impl(ContainerNetOptions o, metrics::Registry& m)
      : options(std::move(o)),
        key_file(keyFileOf(options.config, options.state_dir)),
        wg_pid_file(wireguardGoPidFileOf(options.config, options.state_dir)),
        work(io.get_executor()),
        retry_timer(io),
        stats_timer(io),
        liveness_timer(io),
        publish_timer(io),
        up_gauge(m.gauge("elasticdns_containernet_up",
                         "1 while the ContainerNet WireGuard interface is configured; 0 = "
                         "degraded (DNS unaffected)")),
        peers_gauge(m.gauge("elasticdns_containernet_peers",
                            "WireGuard peers ContainerNet programmed (other servers' subnets)")),
        reconciles(m.counter("elasticdns_containernet_reconciles_total",
                             "Topology snapshots applied to the WireGuard interface")),
        reconcile_errors(m.counter("elasticdns_containernet_reconcile_errors_total",
                                   "Reconciles that failed (tried again after retry_period)")),
        handshake_age(m.gauge("elasticdns_containernet_last_handshake_age_seconds",
                              "Oldest last handshake over the peers (a peer without one counts "
                              "from when the interface was opened)")),
        rx_bytes(m.gauge("elasticdns_containernet_rx_bytes",
                         "Bytes received from the current peers (sum of the device's counters)")),
        tx_bytes(m.gauge("elasticdns_containernet_tx_bytes",
                         "Bytes sent to the current peers (sum of the device's counters)")),
        published_ok(m.counter("elasticdns_containernet_publishes_total",
                               "PUT /v1/servers/{name}/wireguard to central", "result=\"ok\"")),
        published_failed(m.counter("elasticdns_containernet_publishes_total",
                                   "PUT /v1/servers/{name}/wireguard to central",
                                   "result=\"error\"")) {}

  // --- on the thread -------------------------------------------------------------------------

  void init() {
    auto k = loadOrCreateKeyFile(key_file);
    if (!k) return disable("key file " + k.error().message());
    key = k.value();
    public_key = keyToBase64(key.public_key);
    spdlog::info("containernet: public key {} (private key in {})", public_key, key_file);
    if (!openDevice()) return;
    scheduleStats();
    scheduleLiveness();
  }

  bool openDevice() {
    auto d = openWireGuardDevice(options.config, wg_pid_file);
    if (!d) {
      disable(d.error().message());
      return false;
    }
    device = std::move(d.value());
    opened_at = std::chrono::system_clock::now();
    device_fresh = true;
    applied_mtu = 0;
    spdlog::info("containernet: {} is {} WireGuard", options.config.interface,
                 device->kernel() ? "kernel" : "userspace (wireguard-go)");
    return true;
  }

  void disable(const std::string& why) {
    disabled = true;
    up_gauge.set(0);
    spdlog::error(
        "containernet: disabled: {}. Degraded: no mesh between the hosts' containers; "
        "DNS is not affected",
        why);
  }

  void reconcile() {
    if (disabled || !topology || stopping) return;
    if (!device || !device->alive()) {
      up_gauge.set(0);
      device.reset();
      auto d = openWireGuardDevice(options.config, wg_pid_file);
      if (!d) return failed(d.error().message());
      device = std::move(d.value());
      opened_at = std::chrono::system_clock::now();
      device_fresh = true;
      applied_mtu = 0;
    }
    if (auto e = apply()) return failed(e->message());
    reconciles.inc();
    up_gauge.set(1);
    retry_timer.cancel();
    maybePublish();
    ensureDockerNetwork();
  }

  // With Docker discovery on and this server's subnet known: the Docker network with the
  // subnet, its gateway, the bridge and the MTU (docker_network.hpp). Once Docker created the
  // bridge, a reconcile puts the MTU and the gateway on it (the same address Docker gave it).
  void ensureDockerNetwork() {
    if (options.docker_socket.empty() || options.config.docker_network.empty()) return;
    auto it = topology->servers.find(options.server);
    if (it == topology->servers.end() || it->second.subnet.empty()) return;
    auto gateway = gatewayOf(it->second.subnet);
    if (!gateway) return;  // no gateway, no peer: desiredNet says why
    if (!docker_network) {
      DockerNetworkKeeper::Options o;
      o.socket = options.docker_socket;
      o.backoff_min = options.backoff_min;
      o.backoff_max = options.backoff_max;
      o.request_timeout = options.request_timeout;
      o.on_kept = [this] {
        applied_mtu = 0;
        reconcile();
      };
      docker_network = std::make_unique<DockerNetworkKeeper>(io, std::move(o));
    }
    docker_network->ensure({options.config.docker_network, it->second.subnet, gateway->address,
                            options.config.bridge, applied_mtu});
  }

  void failed(const std::string& why) {
    reconcile_errors.inc();
    up_gauge.set(0);
    spdlog::error("containernet: reconcile failed: {}; trying again in {} ms", why,
                  options.retry_period.count());
    retry_timer.expires_after(options.retry_period);
    retry_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->reconcile();
    });
  }

  // The underlay MTU (the link with this server's address) minus WireGuard's overhead.
  uint32_t mtuFor(const model::Server* own) const {
    if (options.config.mtu != 0) return options.config.mtu;
    std::string address = own ? own->address : "";
    bool v6 = address.find(':') != std::string::npos;
    uint32_t underlay = kDefaultUnderlayMtu;
    if (auto link = interfaceWithAddress(address); !link.empty())
      if (auto m = rtnl::linkMtu(link)) underlay = m.value();
    return underlay - (v6 ? kOverheadIpv6 : kOverheadIpv4);
  }

  std::optional<Error> apply() {
    const std::string& ifname = options.config.interface;
    unsigned index = rtnl::linkIndex(ifname);
    if (index == 0) return Error{"interface", ifname + " is gone"};
    const model::Server* own = nullptr;
    if (auto it = topology->servers.find(options.server); it != topology->servers.end())
      own = &it->second;
    uint32_t mtu = mtuFor(own);
    if (mtu != applied_mtu) {
      if (auto e = rtnl::setLinkUp(index, mtu)) return e;
      if (unsigned b = bridgeIndex(); b != 0)
        if (auto e = rtnl::setLinkUp(b, mtu)) return e;
      applied_mtu = mtu;
      spdlog::info("containernet: {} up, MTU {}", ifname, mtu);
    }
    DesiredNet desired = desiredNet(*topology, options.server, public_key);
    auto state = device->read();
    if (!state) return state.error();
    auto routes = rtnl::routes(index);
    if (!routes) return routes.error();
    CurrentNet current;
    for (const auto& p : state->peers) current.peers.push_back(p.config);
    current.routes = routes.value();
    NetPlan plan = planNet(current, desired);
    DeviceSettings settings;
    settings.persistent_keepalive = kPersistentKeepaliveSeconds;
    if (device_fresh || state->public_key != public_key ||
        state->listen_port != options.config.listen_port) {
      settings.private_key = key.private_key;
      settings.listen_port = options.config.listen_port;
    }
    if (!plan.peers.empty() || settings.private_key) {
      if (auto e = device->apply(plan.peers, settings, key_file)) return e;
      spdlog::info("containernet: {} peers: {} set, {} removed{}", ifname, plan.peers.set.size(),
                   plan.peers.remove.size(), settings.private_key ? ", key and port set" : "");
    }
    // A new device or key has no session with any peer; a peer just set may have none either.
    const bool prime_all = device_fresh || settings.private_key.has_value();
    device_fresh = false;
    if (auto e = applyAddresses(index, desired)) return e;
    const std::string source = desired.gateway ? desired.gateway->address : "";
    for (const auto& r : plan.remove_routes)
      if (auto e = rtnl::deleteRoute(index, r)) return e;
    for (const auto& r : plan.add_routes)
      if (auto e = rtnl::replaceRoute(index, r, source)) return e;
    if (source != routes_source) {  // the gateway changed: every route gets the new source
      for (const auto& r : desired.routes)
        if (auto e = rtnl::replaceRoute(index, r, source)) return e;
      routes_source = source;
    }
    if (desired.gateway)
      primeHandshakes(prime_all ? desired.peers : plan.peers.set, desired.gateway->address);
    peers_gauge.set(static_cast<double>(desired.peers.size()));
    updateStats(state.value());
    return std::nullopt;
  }

  // WireGuard starts a handshake only when it has a packet for a peer, and the other side keeps
  // sending on a session this side may have lost (its wireguard-go restarted, its key rotated)
  // until its rekey timeout, about 15 s later (persistent keepalive, which would do it, is off:
  // reconcile.hpp). So one empty datagram from this host's gateway to each such peer's gateway,
  // port 9 (discard), makes this side initiate a handshake at once, without waiting for the
  // containers' traffic. Sent without blocking; a failure only costs that wait.
  static void primeHandshakes(const std::vector<PeerConfig>& peers, const std::string& source) {
    if (peers.empty()) return;
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return;
    sockaddr_in from{};
    from.sin_family = AF_INET;
    if (inet_pton(AF_INET, source.c_str(), &from.sin_addr) == 1)
      (void)::bind(fd.get(), reinterpret_cast<const sockaddr*>(&from), sizeof(from));
    for (const auto& peer : peers)
      for (const auto& subnet : peer.allowed_ips) {
        auto gateway = gatewayOf(subnet);
        if (!gateway) continue;
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(9);
        if (inet_pton(AF_INET, gateway->address.c_str(), &to.sin_addr) != 1) continue;
        (void)::sendto(fd.get(), nullptr, 0, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to),
                       sizeof(to));
      }
  }

  unsigned bridgeIndex() const {
    return options.config.bridge.empty() ? 0 : rtnl::linkIndex(options.config.bridge);
  }

  // The gateway (first host of this server's subnet) on the bridge with the subnet's prefix;
  // without a bridge, as a /32 on the WireGuard interface. Either way the host owns it, so it
  // is the source address of the host's own packets to the other subnets (the routes name it),
  // which the peers' allowed IPs accept.
  std::optional<Error> applyAddresses(unsigned index, const DesiredNet& desired) {
    unsigned bridge = bridgeIndex();
    std::optional<rtnl::Ipv4Prefix> on_interface;
    if (desired.gateway && bridge == 0)
      on_interface = rtnl::Ipv4Prefix{desired.gateway->address, 32};
    if (bridge != 0) {
      auto have = rtnl::addresses(bridge);
      if (!have) return have.error();
      // The gateway this agent put there for an earlier lease (the server was deleted and put
      // again, or its subnet changed): its address and connected route go with the lease.
      if (bridge_gateway && bridge_gateway != desired.gateway &&
          std::find(have->begin(), have->end(), *bridge_gateway) != have->end())
        if (auto e = rtnl::deleteAddress(bridge, *bridge_gateway)) return e;
      bridge_gateway.reset();
      if (desired.gateway) {
        if (std::find(have->begin(), have->end(), *desired.gateway) == have->end())
          if (auto e = rtnl::addAddress(bridge, *desired.gateway)) return e;
        bridge_gateway = desired.gateway;
      }
    }
    auto have = rtnl::addresses(index);
    if (!have) return have.error();
    for (const auto& a : have.value())
      if (!on_interface || a != *on_interface)
        if (auto e = rtnl::deleteAddress(index, a)) return e;
    if (on_interface && std::find(have->begin(), have->end(), *on_interface) == have->end())
      if (auto e = rtnl::addAddress(index, *on_interface)) return e;
    return std::nullopt;
  }

  void updateStats(const DeviceState& state) {
    auto now = std::chrono::system_clock::now();
    int64_t now_sec =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    int64_t opened_sec =
        std::chrono::duration_cast<std::chrono::seconds>(opened_at.time_since_epoch()).count();
    int64_t oldest = 0;
    uint64_t rx = 0, tx = 0;
    for (const auto& p : state.peers) {
      int64_t at = p.last_handshake_sec != 0 ? p.last_handshake_sec : opened_sec;
      oldest = std::max(oldest, now_sec - at);
      rx += p.rx_bytes;
      tx += p.tx_bytes;
    }
    handshake_age.set(static_cast<double>(oldest));
    rx_bytes.set(static_cast<double>(rx));
    tx_bytes.set(static_cast<double>(tx));
  }

  void scheduleStats() {
    stats_timer.expires_after(options.stats_period);
    stats_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopping) return;
      if (self->device && self->device->alive())
        if (auto s = self->device->read()) self->updateStats(s.value());
      self->scheduleStats();
    });
  }

  // A wireguard-go that exited (or a kernel link deleted) takes every peer with it: checked
  // every liveness_period (a waitpid or an ifindex lookup), then started again and
  // reprogrammed.
  void scheduleLiveness() {
    liveness_timer.expires_after(options.liveness_period);
    liveness_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopping) return;
      if (self->device && !self->device->alive()) self->reconcile();
      self->scheduleLiveness();
    });
  }

  // --- publishing ----------------------------------------------------------------------------

  std::string endpoint() const {
    if (!options.config.endpoint.empty()) return options.config.endpoint;
    if (!topology) return "";
    auto it = topology->servers.find(options.server);
    if (it == topology->servers.end() || it->second.address.empty()) return "";
    return text::formatHostPort(it->second.address, options.config.listen_port);
  }

  // Publishes when central's record of this server differs from this key and endpoint.
  void maybePublish() {
    if (options.central_urls.empty() || publishing || public_key.empty()) return;
    model::WireGuardPeer want{public_key, endpoint()};
    if (want.endpoint.empty()) return;  // no address yet: the next snapshot may bring it
    if (auto it = topology->servers.find(options.server);
        it != topology->servers.end() && it->second.wireguard == want)
      return;
    publishing = true;
    publish(want, 0);
  }

  void publish(const model::WireGuardPeer& want, size_t url_index) {
    auto url = text::parseHttpUrl(options.central_urls[url_index % options.central_urls.size()]);
    if (!url) return publishFailed(want, url_index, "bad central URL");
    HttpRequest req;
    req.method = boost::beast::http::verb::put;
    req.target = "/v1/servers/" + options.server + "/wireguard";
    req.token = options.token;
    req.body = nlohmann::json{{"public_key", want.public_key}, {"endpoint", want.endpoint}}.dump();
    req.timeout = options.request_timeout;
    exchange =
        httpRequest(io.get_executor(), url.value(), std::move(req),
                    [self = shared_from_this(), want, url_index](Result<HttpResponse> r) {
                      self->exchange.reset();
                      if (self->stopping) return;
                      if (!r) return self->publishFailed(want, url_index + 1, r.error().message());
                      if (r->status == 200) {
                        self->published_ok.inc();
                        self->publishing = false;
                        self->backoff = self->options.backoff_min;
                        spdlog::info("containernet: published public key {} endpoint {} to central",
                                     want.public_key, want.endpoint);
                        return;
                      }
                      std::string why = "central answered " + std::to_string(r->status);
                      if (r->status == 404)
                        why += " (no server record " + self->options.server + " yet)";
                      if (!r->body.empty()) why += ": " + r->body.substr(0, 200);
                      // 5xx: another central may do; 4xx: the same answer anywhere.
                      self->publishFailed(want, url_index + (r->status >= 500 ? 1 : 0), why);
                    });
  }

  void publishFailed(const model::WireGuardPeer& want, size_t next_url, const std::string& why) {
    published_failed.inc();
    spdlog::warn("containernet: publishing the public key failed: {}; retrying in {} ms", why,
                 backoff.count());
    publish_timer.expires_after(backoff);
    backoff = std::min(backoff * 2, options.backoff_max);
    publish_timer.async_wait(
        [self = shared_from_this(), want, next_url](const boost::system::error_code& ec) {
          if (ec || self->stopping) return;
          // The key or endpoint may have changed meanwhile: publish what is wanted now.
          model::WireGuardPeer now{self->public_key, self->endpoint()};
          self->publish(now.endpoint.empty() ? want : now, next_url);
        });
  }

  // --- rotation ------------------------------------------------------------------------------

  void reloadKey() {
    if (disabled || stopping) return;
    auto k = loadKeyFile(key_file);
    if (!k) {
      spdlog::error("containernet: key not rotated: {}", k.error().message());
      return;
    }
    if (k->private_key == key.private_key) {
      spdlog::info("containernet: key file unchanged; nothing to rotate");
      return;
    }
    key = k.value();
    public_key = keyToBase64(key.public_key);
    device_fresh = true;  // the next apply sets the private key
    spdlog::info("containernet: rotated; new public key {}", public_key);
    publish_timer.cancel();
    if (exchange) exchange->cancel();
    exchange.reset();
    publishing = false;
    backoff = options.backoff_min;
    reconcile();
  }

  ContainerNetOptions options;
  const std::string key_file;
  const std::string wg_pid_file;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::steady_timer retry_timer, stats_timer, liveness_timer, publish_timer;

  KeyPair key;
  std::string public_key;
  std::unique_ptr<WireGuardDevice> device;
  std::chrono::system_clock::time_point opened_at;
  bool device_fresh = true;
  uint32_t applied_mtu = 0;
  std::string routes_source;
  // The gateway address applyAddresses last put on the bridge (in this process).
  std::optional<rtnl::Ipv4Prefix> bridge_gateway;
  std::shared_ptr<const model::Topology> topology;
  std::atomic<bool> disabled{false};
  std::atomic<bool> stopping{false};

  bool publishing = false;
  std::chrono::milliseconds backoff = options.backoff_min;
  std::shared_ptr<HttpExchange> exchange;
  std::unique_ptr<DockerNetworkKeeper> docker_network;

  metrics::Gauge& up_gauge;
  metrics::Gauge& peers_gauge;
  metrics::Counter& reconciles;
  metrics::Counter& reconcile_errors;
  metrics::Gauge& handshake_age;
  metrics::Gauge& rx_bytes;
  metrics::Gauge& tx_bytes;
  metrics::Counter& published_ok;
  metrics::Counter& published_failed;
};

ContainerNet::ContainerNet(ContainerNetOptions options, metrics::Registry& metrics)
    : impl_(std::make_shared<Impl>(std::move(options), metrics)) {}

ContainerNet::~ContainerNet() {
  stop(false);
}

void ContainerNet::start() {
  if (thread_.joinable()) return;
  // The running agent's PID, for --rotate-key.
  const std::string pid_file = pidFileOf(impl_->options.config, impl_->options.state_dir);
  {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(pid_file).parent_path(), ec);
    std::ofstream out(pid_file, std::ios::trunc);
    out << ::getpid() << "\n";
  }
  asio::post(impl_->io, [impl = impl_] { impl->init(); });
  thread_ = std::thread([impl = impl_] { impl->io.run(); });
}

void ContainerNet::update(std::shared_ptr<const model::Topology> topology) {
  asio::post(impl_->io, [impl = impl_, t = std::move(topology)]() mutable {
    bool newest = !impl->topology || impl->topology.get() != t.get();
    impl->topology = std::move(t);
    if (newest) impl->reconcile();
  });
}

void ContainerNet::reloadKey() {
  asio::post(impl_->io, [impl = impl_] { impl->reloadKey(); });
}

bool ContainerNet::up() const {
  return impl_->up_gauge.value() == 1;
}

bool ContainerNet::disabled() const {
  return impl_->disabled;
}

void ContainerNet::stop(bool handed_over) {
  if (!thread_.joinable()) return;
  impl_->stopping = true;
  asio::post(impl_->io, [impl = impl_] {
    impl->retry_timer.cancel();
    impl->stats_timer.cancel();
    impl->liveness_timer.cancel();
    impl->publish_timer.cancel();
    if (impl->exchange) impl->exchange->cancel();
    if (impl->docker_network) impl->docker_network->stop();
    impl->work.reset();
    impl->io.stop();
  });
  thread_.join();
  // io.stop() left the cancelled waits' handlers queued, each holding the Impl that owns the
  // io_context: run them (they see the cancellation or `stopping` and return), so nothing keeps
  // it alive.
  impl_->io.restart();
  impl_->io.poll();
  if (impl_->device && !handed_over) impl_->device->stopProcess();
  if (!handed_over) {
    // Only our own PID: a new agent may have written its own meanwhile.
    const std::string pid_file = pidFileOf(impl_->options.config, impl_->options.state_dir);
    std::ifstream in(pid_file);
    long pid = 0;
    if (in >> pid && pid == ::getpid()) {
      std::error_code ec;
      std::filesystem::remove(pid_file, ec);
    }
  }
}

std::optional<Error> teardownContainerNet(const ContainerNetConfig& config,
                                          const std::string& state_dir) {
  return removeWireGuardDevice(config, wireguardGoPidFileOf(config, state_dir));
}

Result<std::string> rotateContainerNetKey(const ContainerNetConfig& config,
                                          const std::string& state_dir) {
  auto key = generatePrivateKey();
  if (!key) return key.error();
  const std::string key_file = keyFileOf(config, state_dir);
  auto written = writeKeyFile(key_file, key.value());
  if (!written) return written.error();
  std::string line = "new public key " + keyToBase64(written->public_key) + " in " + key_file;
  std::ifstream in(pidFileOf(config, state_dir));
  long pid = 0;
  // Only an agent: a stale file may name a PID some other program has now.
  std::ifstream comm;
  std::string name;
  if (in >> pid && pid > 1 && (comm.open("/proc/" + std::to_string(pid) + "/comm"), comm) &&
      std::getline(comm, name) && name.rfind("elasticdns", 0) == 0 &&
      ::kill(static_cast<pid_t>(pid), SIGUSR2) == 0)
    return line + "; the running agent (PID " + std::to_string(pid) + ") was told (SIGUSR2)";
  return line + "; no running agent found: it takes the key when it starts";
}

}  // namespace elasticdns::agent
