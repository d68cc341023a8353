// Fuzz target for the agent's query path: the parser, then an answer from a small zone (or an
// error response), as the server does. Built as a libFuzzer target with clang
// (-DELASTICDNS_FUZZ=ON), and always as a replay program that ctest runs on the corpus plus
// deterministic mutations of it (truncations and bit flips), under the sanitizers when
// -DELASTICDNS_SANITIZE=ON.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include <netinet/in.h>

#include "agent/dns/zone.hpp"
#include "agent/dns/wire.hpp"

namespace {

using namespace elasticdns;
using namespace elasticdns::agent;

const Zone& fuzzZone() {
  static std::shared_ptr<const Zone> zone = [] {
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
    ZoneConfig cfg;
    cfg.server_name = "h1";
    return Zone::build(t, cfg).value();
  }();
  return *zone;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static StickyTable sticky;
  static std::vector<uint8_t> out(wire::kMaxMessageSize);
  std::span<const uint8_t> packet(data, size);
  wire::Query q;
  auto st = wire::parseQuery(packet, q);
  if (st == wire::ParseStatus::kDrop) return 0;
  if (st != wire::ParseStatus::kOk) {
    wire::writeErrorResponse(q, packet, wire::kFormErr, std::span<uint8_t>(out.data(), 512));
    return 0;
  }
  sockaddr_storage src{};
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(0x7F000100u | (size & 0x1F));
  std::memcpy(&src, &sin, sizeof sin);
  AnswerInput in;
  in.query = &q;
  in.packet = packet;
  in.source = &src;
  in.stale = size & 1;
  in.limit = (size & 2) ? wire::kMaxMessageSize : wire::udpLimit(q);
  in.rotation = static_cast<uint32_t>(size);
  in.sticky = &sticky;
  std::span<uint8_t> o(out.data(), (size & 2) ? out.size() : wire::kMaxUdpPayload);
  AnswerOutcome r = fuzzZone().answer(in, o);
  if (r.length > o.size()) __builtin_trap();
  if (r.in_zone && r.length >= wire::kHeaderSize && (out[0] != data[0] || out[1] != data[1]))
    __builtin_trap();  // the ID must be echoed
  return 0;
}
