// ContainerNet's reconcile, pure (agent/containernet/reconcile): the cost per topology snapshot
// with SERVERS servers (default 1,000), each with a subnet and a WireGuard identity.
//   containernet_reconcile_bench [SERVERS] [ITERATIONS]
// Prints the time per call of: desiredNet (topology -> peers, routes, gateway), planNet with
// nothing to change (the steady state: a snapshot that touched no server), planNet after one
// key rotation, the UAPI `set=1` text of that plan, and the first start (every peer new: plan
// and its UAPI text). No sockets, no devices.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent/containernet/reconcile.hpp"
#include "agent/containernet/uapi.hpp"
#include "elasticdns/model.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace agent = elasticdns::agent;
namespace model = elasticdns::model;

/// A distinct base64 WireGuard public key per `n` (32 bytes: 43 characters whose last carries 2
/// bits, then '=').
std::string key(unsigned n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string k(43, 'A');
  for (size_t i = 0; i < 6; ++i, n /= 64) k[i] = kAlphabet[n % 64];
  return k + "=";
}

std::string ipv4(unsigned v) {
  return std::to_string(v >> 24 & 255) + "." + std::to_string(v >> 16 & 255) + "." +
         std::to_string(v >> 8 & 255) + "." + std::to_string(v & 255);
}

/// SERVERS servers "s0".."sN-1": subnet /28 number i of 10.128.0.0/9, address 10.0.x.y.
model::Topology topology(unsigned servers, unsigned rotated = ~0u) {
  model::Topology t;
  for (unsigned i = 0; i < servers; ++i) {
    model::Server s;
    s.name = "s" + std::to_string(i);
    s.address = ipv4((10u << 24) + 256 + i);
    s.subnet = ipv4((10u << 24) + (128u << 16) + i * 16) + "/28";
    s.wireguard = model::WireGuardPeer{key(i == rotated ? i + 1000000 : i), s.address + ":51820"};
    t.servers.emplace(s.name, std::move(s));
  }
  return t;
}

template <typename F>
double microsPer(unsigned iterations, F&& f) {
  auto start = Clock::now();
  for (unsigned i = 0; i < iterations; ++i) f();
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / iterations;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned servers = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 1000;
  unsigned iterations = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 200;
  if (servers < 2 || iterations < 1) {
    std::fprintf(stderr, "usage: containernet_reconcile_bench [SERVERS>=2] [ITERATIONS>=1]\n");
    return 2;
  }
  const std::string self = "s0";
  const std::string own = key(0);
  model::Topology before = topology(servers);
  model::Topology after = topology(servers, servers / 2);  // one server rotated its key

  agent::DesiredNet desired = agent::desiredNet(before, self, own);
  agent::DesiredNet rotated = agent::desiredNet(after, self, own);
  if (desired.peers.size() != servers - 1 || desired.routes.size() != servers - 1) {
    std::fprintf(stderr, "desiredNet gave %zu peers and %zu routes for %u servers (skipped %zu)\n",
                 desired.peers.size(), desired.routes.size(), servers, desired.skipped.size());
    return 1;
  }
  agent::CurrentNet current{desired.peers, desired.routes};
  agent::NetPlan one = agent::planNet(current, rotated);
  if (one.peers.remove.size() != 1 || one.peers.set.size() != 1) {
    std::fprintf(stderr, "a rotation planned %zu removals and %zu sets\n", one.peers.remove.size(),
                 one.peers.set.size());
    return 1;
  }
  agent::DeviceSettings settings;
  settings.persistent_keepalive = agent::kPersistentKeepaliveSeconds;

  volatile size_t sink = 0;
  double desired_us = microsPer(
      iterations, [&] { sink = sink + agent::desiredNet(before, self, own).peers.size(); });
  double steady_us =
      microsPer(iterations, [&] { sink = sink + agent::planNet(current, desired).empty(); });
  double rotation_us = microsPer(
      iterations, [&] { sink = sink + agent::planNet(current, rotated).peers.set.size(); });
  double render_one_us = microsPer(iterations, [&] {
    auto text = agent::renderUapiSet(one.peers, settings);
    sink = sink + (text ? text->size() : 0);
  });
  agent::CurrentNet empty;
  agent::NetPlan all = agent::planNet(empty, desired);
  double first_us = microsPer(iterations, [&] {
    auto plan = agent::planNet(empty, desired);
    auto text = agent::renderUapiSet(plan.peers, settings);
    sink = sink + (text ? text->size() : 0);
  });
  auto full_text = agent::renderUapiSet(all.peers, settings);

  std::printf("containernet reconcile, %u servers (%zu peers, %zu routes), %u iterations:\n",
              servers, desired.peers.size(), desired.routes.size(), iterations);
  std::printf("  desiredNet (topology -> peers, routes, gateway)  %10.1f us\n", desired_us);
  std::printf("  planNet, nothing changed                          %10.1f us\n", steady_us);
  std::printf("  planNet, one key rotated                          %10.1f us\n", rotation_us);
  std::printf("  UAPI set=1 text of that plan                      %10.1f us\n", render_one_us);
  std::printf("  first start: plan + UAPI text of every peer       %10.1f us (%zu bytes)\n",
              first_us, full_text ? full_text->size() : 0);
  std::printf("  per snapshot (desiredNet + planNet, one change)   %10.1f us\n",
              desired_us + rotation_us);
  return sink == 0 ? 1 : 0;
}
