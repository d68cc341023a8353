// ContainerNet against a real wireguard-go in throwaway network namespaces (root only; skipped
// with the reason otherwise). The test process moves itself into a new network namespace
// (unshare), which goes away with it; a second host, when needed, is a named namespace the
// test deletes. Interface names carry the PID: wireguard-go's UAPI socket directory is shared
// by every network namespace.
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "agent/containernet/containernet.hpp"
#include "agent/containernet/key.hpp"
#include "agent/containernet/reconcile.hpp"
#include "agent/containernet/uapi.hpp"
#include "agent/traffic/process.hpp"

namespace elasticdns::agent {
namespace {

namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

// `sh -c script` to completion (10 s at most): its exit code and output.
ProcessResult sh(const std::string& script) {
  return runProcess({"/bin/sh", "-c", script}, 10s);
}

std::string publicKey(const WireGuardKey& private_key) {
  return keyToBase64(publicKeyOf(private_key).value());
}

model::Server server(const std::string& name, const std::string& address, const std::string& subnet,
                     const std::string& key) {
  model::Server s;
  s.name = name;
  s.address = address;
  s.subnet = subnet;
  if (!key.empty()) s.wireguard = model::WireGuardPeer{key, address + ":51820"};
  return s;
}

std::shared_ptr<const model::Topology> topologyOf(std::vector<model::Server> servers) {
  auto t = std::make_shared<model::Topology>();
  for (auto& s : servers) t->servers[s.name] = std::move(s);
  return t;
}

// Polls `done` every 50 ms until it holds or `bound` passed.
template <class Fn>
bool eventually(Fn done, std::chrono::milliseconds bound = 10s) {
  auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

// A scripted central on 127.0.0.1 (in the test's namespace), on its own thread: answers every
// request with the next status of `statuses` (the last one repeats) and records it.
class FakeCentral {
 public:
  struct Request {
    std::string method, target, authorization, body;
  };
  explicit FakeCentral(std::vector<unsigned> statuses)
      : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        statuses_(std::move(statuses)) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeCentral() {
    io_.stop();
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  std::vector<Request> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
      auto buffer = std::make_shared<beast::flat_buffer>();
      auto req = std::make_shared<http::request<http::string_body>>();
      http::async_read(*stream, *buffer, *req, [this, stream, buffer, req](auto ec, size_t) {
        if (ec) return;
        unsigned status;
        {
          std::lock_guard lock(mu_);
          requests_.push_back({std::string(req->method_string()), std::string(req->target()),
                               std::string((*req)[http::field::authorization]), req->body()});
          status = statuses_[std::min(requests_.size(), statuses_.size()) - 1];
        }
        auto res = std::make_shared<http::response<http::string_body>>(http::status(status), 11);
        res->body() = status == 200 ? "{}" : "{\"error\":\"no such server\"}";
        res->prepare_payload();
        http::async_write(*stream, *res, [stream, res](auto, size_t) {
          boost::system::error_code ignored;
          stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        });
      });
      accept();
    });
  }
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<unsigned> statuses_;
  std::mutex mu_;
  std::vector<Request> requests_;
  std::thread thread_;
};

class ContainerNetNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: network namespaces and TUN devices";
    if (::access("/usr/bin/wireguard-go", X_OK) != 0 || ::access("/usr/bin/wg", X_OK) != 0)
      GTEST_SKIP() << "needs wireguard-go and wg (scripts/install-deps.sh)";
    if (!moved_) {
      ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << strerror(errno);
      moved_ = true;
      ASSERT_TRUE(sh("ip link set lo up").ok());
    }
    tag_ = std::to_string(::getpid());
    dir_ = fs::temp_directory_path() / ("cn-netns-test-" + tag_);
    fs::create_directories(dir_);
    ifname_ = "cnt" + tag_;
  }

  void TearDown() override {
    net_.reset();  // stops its wireguard-go
    std::ifstream pid_file(dir_ / "containernet-wireguard-go.pid");
    long pid = 0;
    if (pid_file >> pid && pid > 1) ::kill(static_cast<pid_t>(pid), SIGTERM);
    if (peer_pid_ > 1) ::kill(peer_pid_, SIGTERM);
    for (const auto& ns : namespaces_) sh("ip netns del " + ns);
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  ContainerNetOptions options() {
    ContainerNetOptions o;
    o.config.enabled = true;
    o.config.interface = ifname_;
    o.config.implementation = WireGuardImplementation::kUserspace;
    o.config.wireguard_go = "/usr/bin/wireguard-go";
    o.state_dir = dir_.string();
    o.server = "h1";
    o.retry_period = 200ms;
    o.stats_period = 200ms;
    return o;
  }

  // The peers of the interface as `wg show dump` reads them.
  std::vector<PeerConfig> peersOnInterface() {
    auto r = sh("wg show " + ifname_ + " dump");
    if (!r.ok()) return {{"wg show failed: " + r.output, "", {}}};
    auto state = parseWgDump(r.output);
    if (!state) return {{"bad dump: " + state.error().message(), "", {}}};
    std::vector<PeerConfig> out;
    for (const auto& p : state->peers) out.push_back(p.config);
    std::sort(out.begin(), out.end(),
              [](const PeerConfig& a, const PeerConfig& b) { return a.public_key < b.public_key; });
    return out;
  }

  std::string routesOnInterface() {
    return sh("ip -4 route show dev " + ifname_ + " proto 66").output;
  }

  static inline bool moved_ = false;
  std::string tag_;
  fs::path dir_;
  std::string ifname_;
  metrics::Registry registry_;
  std::unique_ptr<ContainerNet> net_;
  pid_t peer_pid_ = -1;
  std::vector<std::string> namespaces_;
};

TEST_F(ContainerNetNetns, PeersAndRoutesFollowTheTopology) {
  auto key = [] { return publicKey(generatePrivateKey().value()); };
  const std::string b = key(), c = key(), d = key(), e = key();
  net_ = std::make_unique<ContainerNet>(options(), registry_);
  net_->start();
  auto own = server("h1", "192.0.2.1", "10.240.1.0/24", "");
  auto first = topologyOf({own, server("h2", "192.0.2.2", "10.240.2.0/24", b),
                           server("h3", "192.0.2.3", "10.240.3.0/24", c),
                           server("h4", "192.0.2.4", "10.240.4.0/24", d),
                           server("h5", "192.0.2.5", "", e)});  // no subnet: no peer
  net_->update(first);
  auto want = desiredNet(*first, "h1", "").peers;
  ASSERT_EQ(want.size(), 3u);
  EXPECT_TRUE(eventually([&] { return peersOnInterface() == want; }))
      << "wg show dump has " << peersOnInterface().size() << " peers";
  EXPECT_TRUE(eventually([&] { return net_->up(); }));
  // Peers first, then the address and the routes: wait for the last of them.
  EXPECT_TRUE(eventually([&] {
    return routesOnInterface() ==
           "10.240.2.0/24 scope link src 10.240.1.1 \n"
           "10.240.3.0/24 scope link src 10.240.1.1 \n"
           "10.240.4.0/24 scope link src 10.240.1.1 \n";
  })) << routesOnInterface();
  EXPECT_NE(sh("ip -4 addr show dev " + ifname_).output.find("inet 10.240.1.1/32"),
            std::string::npos);
  EXPECT_NE(sh("ip link show dev " + ifname_).output.find("mtu 1440"), std::string::npos)
      << "auto MTU: no link holds 192.0.2.1, so 1500 - 60";
  auto dump = sh("wg show " + ifname_ + " dump").output;
  EXPECT_NE(dump.find("\t51820\t"), std::string::npos) << "listen port";
  EXPECT_NE(dump.find("\t25\n"), std::string::npos) << "persistent keepalive";

  // h2 rotated its key, h3 left, h4 moved: one update.
  const std::string b2 = key();
  auto second = topologyOf({own, server("h2", "192.0.2.2", "10.240.2.0/24", b2),
                            server("h4", "198.51.100.4", "10.240.4.0/24", d)});
  net_->update(second);
  want = desiredNet(*second, "h1", "").peers;
  ASSERT_EQ(want.size(), 2u);
  EXPECT_TRUE(eventually([&] { return peersOnInterface() == want; }));
  EXPECT_TRUE(eventually([&] {
    return routesOnInterface() ==
           "10.240.2.0/24 scope link src 10.240.1.1 \n"
           "10.240.4.0/24 scope link src 10.240.1.1 \n";
  })) << routesOnInterface();

  // Everyone left.
  net_->update(topologyOf({own}));
  EXPECT_TRUE(eventually([&] { return peersOnInterface().empty(); }));
  EXPECT_TRUE(eventually([&] { return routesOnInterface().empty(); })) << routesOnInterface();
  auto metrics = registry_.render();
  EXPECT_NE(metrics.find("elasticdns_containernet_up 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("elasticdns_containernet_peers 0\n"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("elasticdns_containernet_reconcile_errors_total 0\n") == std::string::npos,
            false)
      << metrics;

  // Stop: wireguard-go ends, and its interface and UAPI socket with it.
  std::ifstream pid_file(dir_ / "containernet-wireguard-go.pid");
  long pid = 0;
  ASSERT_TRUE(pid_file >> pid);
  net_->stop(false);
  EXPECT_NE(::kill(static_cast<pid_t>(pid), 0), 0) << "wireguard-go still runs";
  EXPECT_TRUE(eventually([&] { return !sh("ip link show dev " + ifname_).ok(); }, 3s));
  EXPECT_TRUE(eventually([&] { return !fs::exists(uapiSocketPath(ifname_)); }, 3s));
}

// Two hosts: this namespace (the agent's ContainerNet, a bridge with a "container" namespace
// behind it) and a named one with a hand-configured wireguard-go. The host and its container
// both reach the other host's subnet: the source addresses the peers see are inside this
// host's subnet, so their allowed IPs take them.
TEST_F(ContainerNetNetns, HostAndContainerReachTheOtherHostsSubnet) {
  const std::string other = "cnt-b-" + tag_, container = "cnt-c-" + tag_;
  const std::string other_if = "cnb" + tag_, bridge = "cnbr" + tag_;
  namespaces_ = {other, container};
  auto other_key = generatePrivateKey().value();
  const std::string other_key_file = (dir_ / "other.key").string();
  ASSERT_TRUE(writeKeyFile(other_key_file, other_key).ok());
  auto own_key = loadOrCreateKeyFile((dir_ / "containernet.key").string());
  ASSERT_TRUE(own_key.ok());
  for (const std::string& step :
       {"ip netns add " + other, "ip netns add " + container,
        // the underlay between the hosts
        "ip link add va" + tag_ + " type veth peer name vb" + tag_ + " netns " + other,
        "ip addr add 192.168.78.1/24 dev va" + tag_, "ip link set va" + tag_ + " up",
        "ip -n " + other + " addr add 192.168.78.2/24 dev vb" + tag_,
        "ip -n " + other + " link set vb" + tag_ + " up", "ip -n " + other + " link set lo up",
        // a container on this host's bridge
        "ip link add " + bridge + " type bridge", "ip link set " + bridge + " up",
        "ip link add vc" + tag_ + " type veth peer name eth0 netns " + container,
        "ip link set vc" + tag_ + " master " + bridge + " up",
        "ip -n " + container + " addr add 10.240.1.5/24 dev eth0",
        "ip -n " + container + " link set eth0 up",
        "ip -n " + container + " route add default via 10.240.1.1",
        std::string("sysctl -qw net.ipv4.ip_forward=1")}) {
    auto r = sh(step);
    ASSERT_TRUE(r.ok()) << step << ": " << r.output;
  }
  // The other host: wireguard-go, programmed by hand as its agent would.
  std::string start_other = "exec ip netns exec " + other + " /usr/bin/wireguard-go -f " +
                            other_if + " >/dev/null 2>&1 & echo $!";
  auto started = sh(start_other);
  ASSERT_TRUE(started.ok());
  peer_pid_ = static_cast<pid_t>(std::stol(started.output));
  ASSERT_TRUE(eventually([&] { return fs::exists(uapiSocketPath(other_if)); }, 5s));
  const std::string own_public = keyToBase64(own_key->public_key);
  for (const std::string& step :
       {"ip netns exec " + other + " wg set " + other_if + " private-key " + other_key_file +
            " listen-port 51820 peer " + own_public +
            " endpoint 192.168.78.1:51820 allowed-ips 10.240.1.0/24",
        "ip -n " + other + " addr add 10.240.2.1/32 dev " + other_if,
        "ip -n " + other + " link set " + other_if + " mtu 1420 up",
        "ip -n " + other + " route add 10.240.1.0/24 dev " + other_if + " src 10.240.2.1"}) {
    auto r = sh(step);
    ASSERT_TRUE(r.ok()) << step << ": " << r.output;
  }

  auto o = options();
  o.config.bridge = bridge;
  net_ = std::make_unique<ContainerNet>(o, registry_);
  net_->start();
  net_->update(topologyOf({server("h1", "192.168.78.1", "10.240.1.0/24", own_public),
                           server("h2", "192.168.78.2", "10.240.2.0/24", publicKey(other_key))}));
  ASSERT_TRUE(eventually([&] { return peersOnInterface().size() == 1; }));
  EXPECT_TRUE(eventually([&] {
    return sh("ip -4 addr show dev " + bridge).output.find("inet 10.240.1.1/24") !=
           std::string::npos;
  })) << "the gateway is on the bridge";
  EXPECT_EQ(sh("ip -4 addr show dev " + ifname_).output, "") << "and not on the interface";
  EXPECT_NE(sh("ip link show dev " + ifname_).output.find("mtu 1440"), std::string::npos)
      << "auto MTU: the veth holding 192.168.78.1 has 1500";
  // Host → the other host's gateway; the first ping may wait for the handshake.
  EXPECT_TRUE(eventually([&] { return sh("ping -c 1 -W 1 10.240.2.1").ok(); }, 8s));
  // Container → the other host's gateway, forwarded by this host.
  EXPECT_TRUE(eventually(
      [&] { return sh("ip netns exec " + container + " ping -c 1 -W 1 10.240.2.1").ok(); }, 5s));
  // Path MTU: 1440 - 28 fits with DF set, one byte more does not.
  EXPECT_TRUE(sh("ping -c 1 -W 2 -M do -s 1412 10.240.2.1").ok());
  EXPECT_FALSE(sh("ping -c 1 -W 2 -M do -s 1413 10.240.2.1").ok());
}

// The public key and endpoint go to central until it answers 200 (404 first: no server record
// yet), not again while the snapshot shows them, and again after a rotation and when central
// lost them.
TEST_F(ContainerNetNetns, PublishesToCentralAndRotates) {
  FakeCentral central({404, 200});
  auto o = options();
  o.central_urls = {central.url()};
  o.token = "agent-secret";
  o.backoff_min = 50ms;
  net_ = std::make_unique<ContainerNet>(o, registry_);
  net_->start();
  auto own = server("h1", "192.0.2.1", "10.240.1.0/24", "");
  net_->update(topologyOf({own}));
  ASSERT_TRUE(eventually([&] { return central.requests().size() == 2; }));
  auto key = loadKeyFile((dir_ / "containernet.key").string());
  ASSERT_TRUE(key.ok()) << key.error().message();
  const std::string public_key = keyToBase64(key->public_key);
  for (const auto& r : central.requests()) {
    EXPECT_EQ(r.method, "PUT");
    EXPECT_EQ(r.target, "/v1/servers/h1/wireguard");
    EXPECT_EQ(r.authorization, "Bearer agent-secret");
    EXPECT_EQ(nlohmann::json::parse(r.body),
              (nlohmann::json{{"public_key", public_key}, {"endpoint", "192.0.2.1:51820"}}));
  }
  EXPECT_EQ(registry_.render().find("private"), std::string::npos);

  // Central has it: no more writes.
  auto published = own;
  published.wireguard = model::WireGuardPeer{public_key, "192.0.2.1:51820"};
  net_->update(topologyOf({published}));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(central.requests().size(), 2u);

  // Rotation: a new key file, read on reloadKey (SIGUSR2 in the agent).
  auto fresh = generatePrivateKey().value();
  ASSERT_TRUE(writeKeyFile((dir_ / "containernet.key").string(), fresh).ok());
  net_->reloadKey();
  ASSERT_TRUE(eventually([&] { return central.requests().size() == 3; }));
  const std::string rotated = publicKey(fresh);
  EXPECT_EQ(nlohmann::json::parse(central.requests()[2].body)["public_key"], rotated);
  EXPECT_TRUE(eventually([&] {
    auto dump = sh("wg show " + ifname_ + " dump").output;
    return dump.find("\t" + rotated + "\t51820\t") != std::string::npos;
  })) << "the interface has the new private key";

  // Central lost the record's key (a restore from an old backup): published again.
  published.wireguard = model::WireGuardPeer{rotated, "192.0.2.1:51820"};
  net_->update(topologyOf({published}));
  std::this_thread::sleep_for(200ms);
  size_t before = central.requests().size();
  net_->update(topologyOf({own}));
  EXPECT_TRUE(eventually([&] { return central.requests().size() == before + 1; }));
}

// Neither implementation works (userspace only, and no such program): one error, the
// interface absent, nothing else affected; no root needed.
TEST(ContainerNetDegraded, DisabledWhenNoImplementationWorks) {
  const fs::path dir = fs::temp_directory_path() / ("cn-degraded-" + std::to_string(::getpid()));
  metrics::Registry registry;
  ContainerNetOptions o;
  o.config.enabled = true;
  o.config.interface = "cnd" + std::to_string(::getpid());
  o.config.implementation = WireGuardImplementation::kUserspace;
  o.config.wireguard_go = (dir / "no-such-wireguard-go").string();
  o.state_dir = dir.string();
  o.server = "h1";
  {
    ContainerNet net(o, registry);
    net.start();
    net.update(topologyOf({server("h1", "192.0.2.1", "10.240.1.0/24", "")}));
    EXPECT_TRUE(eventually([&] { return net.disabled(); }));
    EXPECT_FALSE(net.up());
    EXPECT_NE(registry.render().find("elasticdns_containernet_up 0\n"), std::string::npos);
    EXPECT_NE(registry.render().find("elasticdns_containernet_reconciles_total 0\n"),
              std::string::npos);
  }
  EXPECT_FALSE(fs::exists("/sys/class/net/" + o.config.interface));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace elasticdns::agent
