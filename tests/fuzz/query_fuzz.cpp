// Fuzz target for the agent's query path: the server's QueryHandler deciding about a message
// against a small zone (parse, allow list, errors, the zone's answer, the forward limit). Built
// as a libFuzzer target with clang (-DELASTICDNS_FUZZ=ON), and always as a replay program that
// ctest runs on the corpus plus deterministic mutations of it (truncations and bit flips), under
// the sanitizers when -DELASTICDNS_SANITIZE=ON.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include <netinet/in.h>

#include "agent/dns/query_handler.hpp"
#include "agent/dns/wire.hpp"
#include "agent/dns/zone.hpp"

namespace {

using namespace elasticdns;
using namespace elasticdns::agent;

model::Topology fuzzTopology() {
  model::Topology t;
  t.index = 1;
  t.versions = {{"v1", 1}, {"v2", 2}};
  model::Service s;
  s.name = "api";
  s.ports = {model::PortMapping{80, 80, 443, 0, 53}};
  t.services["api"] = s;
  s.name = "st";
  s.load_balancing = model::LoadBalancing::kSticky;
  t.services["st"] = s;
  for (int i = 0; i < 30; ++i) {
    model::Container c;
    c.id = "c" + std::to_string(i);
    c.service = i % 2 ? "api" : "st";
    c.version = i % 3 ? "v1" : "v2";
    c.server = "h" + std::to_string(i % 2);
    c.address = "127.0.1." + std::to_string(i);
    c.address6 = "fd00::" + std::to_string(i + 1);
    t.containers[c.id] = c;
  }
  t.datasources["mysql/default"] = model::Datasource{"mysql", "default", false, {"10.0.0.1"}};
  t.recomputeDerived();
  return t;
}

// Every caller allowed, a forward limit that the fuzzer's few callers reach.
struct Harness {
  TopologyStore store;
  NoCallerIdentity identity;
  QueryHandlerShared shared{
      store, 1, 4, {parseCidr("0.0.0.0/0").value(), parseCidr("::/0").value()}};
  std::unique_ptr<QueryHandler> handler;
  Harness() {
    ZoneConfig cfg;
    cfg.server_name = "h1";
    cfg.ns_addresses = {"127.0.0.1", "::1"};  // the apex NS's glue
    store.publish(std::make_shared<const model::Topology>(fuzzTopology()), cfg).value();
    shared.identity = &identity;
    shared.forwarding = true;
    handler = std::make_unique<QueryHandler>(shared, 0);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness h;
  static std::vector<uint8_t> out(wire::kMaxMessageSize);
  std::span<const uint8_t> packet(data, size);
  Peer peer;
  peer.transport = (size & 2) ? Transport::kTcp : Transport::kUdp;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(0x7F000100u | (size & 0x1F));
  std::memcpy(&peer.addr, &sin, sizeof sin);
  h.shared.stale = size & 1;
  std::span<uint8_t> o(out.data(), (size & 2) ? out.size() : wire::kMaxUdpPayload);
  wire::Query q;
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::seconds(size);
  QueryDecision d = h.handler->handle(packet, peer, now, o, q);
  if (d.action != QueryDecision::Action::kReply) return 0;
  if (d.length > o.size()) __builtin_trap();
  if (d.length >= wire::kHeaderSize && (out[0] != data[0] || out[1] != data[1]))
    __builtin_trap();  // the ID must be echoed
  return 0;
}
