// Query-path micro benchmark: ns per query for ldns_wire2pkt (+ free) against the agent's hand
// parser (agent/dns/wire.cpp), and for the whole answer (parse + Zone::answer from a snapshot of
// 10,000 containers, versioned policy), and for the forward_limit check of a forwarded query
// (RateLimiter::allow, one caller and 100,000 callers). Prints figures; not run by ctest.
//   agent_parse_bench [ITERATIONS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "agent/dns/rate_limiter.hpp"
#include "agent/dns/wire.hpp"
#include "agent/dns/zone.hpp"
#include "support/dns_util.hpp"
#include "support/topology_util.hpp"

using namespace elasticdns;
using namespace elasticdns::agent;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const size_t iters = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 2'000'000;
  const int services = 1000;
  model::Topology t;
  t.index = 1;
  t.versions = {{"v1", 1}, {"v2", 2}, {"v3", 3}};
  auto add = [&](std::string id, std::string svc, std::string ver, std::string addr) {
    t.containers[id] = testing::container(id, svc, ver, "bench", addr);
  };
  add("client", "client", "v3", "127.0.0.1");
  for (int s = 0; s < services; ++s) {
    for (int k = 0; k < 4; ++k)
      add("svc" + std::to_string(s) + "-" + std::to_string(k), "svc" + std::to_string(s), "v2",
          "10." + std::to_string(64 + s / 256) + "." + std::to_string(s % 256) + "." +
              std::to_string(k + 1));
    for (int k = 0; k < 2; ++k)
      add("svc" + std::to_string(s) + "-old" + std::to_string(k), "svc" + std::to_string(s), "v1",
          "10.200." + std::to_string(s % 256) + "." + std::to_string(k + 1));
  }
  for (int f = 0; t.containers.size() < 10'000; ++f)
    add("filler" + std::to_string(f), "filler" + std::to_string(f / 8), "v1",
        "10.250." + std::to_string((f >> 8) & 255) + "." + std::to_string(f & 255));
  t.recomputeDerived();
  auto zone = Zone::build(t, ZoneConfig{}).value();

  std::vector<std::vector<uint8_t>> queries;
  for (int s = 0; s < services; ++s)
    queries.push_back(testing::makeQuery("svc" + std::to_string(s) + ".cloud66.local",
                                         LDNS_RR_TYPE_A, {.id = static_cast<uint16_t>(s)}));

  auto t0 = Clock::now();
  size_t ok = 0;
  for (size_t i = 0; i < iters / 10; ++i) {
    ldns_pkt* p = nullptr;
    const auto& q = queries[i % queries.size()];
    if (ldns_wire2pkt(&p, q.data(), q.size()) == LDNS_STATUS_OK) ++ok;
    ldns_pkt_free(p);
  }
  double ldns_ns =
      std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / (iters / 10);

  t0 = Clock::now();
  wire::Query wq;
  for (size_t i = 0; i < iters; ++i) {
    const auto& q = queries[i % queries.size()];
    ok += wire::parseQuery(q, wq) == wire::ParseStatus::kOk;
  }
  double hand_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / iters;

  sockaddr_storage src{};
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::memcpy(&src, &sin, sizeof sin);
  StickyTable sticky;
  std::vector<uint8_t> out(wire::kMaxUdpPayload);
  size_t bytes = 0;
  t0 = Clock::now();
  for (size_t i = 0; i < iters; ++i) {
    const auto& q = queries[i % queries.size()];
    wire::parseQuery(q, wq);
    AnswerInput in;
    in.query = &wq;
    in.packet = q;
    in.source = &src;
    in.now = Clock::time_point{};
    in.limit = wire::udpLimit(wq);
    in.rotation = static_cast<uint32_t>(i);
    in.sticky = &sticky;
    bytes += zone->answer(in, out).length;
  }
  double answer_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / iters;
  std::printf("containers=%zu services=%d iterations=%zu\n", t.containers.size(), services, iters);
  std::printf(
      "ldns_wire2pkt+free_ns=%.1f hand_parse_ns=%.1f parse_and_answer_ns=%.1f "
      "answer_bytes=%zu (ok=%zu)\n",
      ldns_ns, hand_ns, answer_ns, bytes / iters, ok);

  // forward_limit: the key of a caller and its bucket, per forwarded query. A rate nobody
  // reaches here, so every call takes the whole path (refill, take a token).
  RateLimiter limiter(1e6, 1e6);
  auto limit_ns = [&](size_t callers) {
    size_t allowed = 0;
    auto start = Clock::now();
    for (size_t i = 0; i < iters; ++i) {
      sockaddr_storage from{};
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      sin.sin_addr.s_addr = htonl(0x0A000000u + static_cast<uint32_t>(i % callers));
      std::memcpy(&from, &sin, sizeof sin);
      allowed +=
          limiter.allow(RateLimiter::callerKey({}, from), start + std::chrono::microseconds(i));
    }
    double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count() / iters;
    return allowed == iters ? ns : -1.0;
  };
  double one = limit_ns(1), many = limit_ns(100000);
  std::printf("forward_limit_ns: one_caller=%.1f callers_100000=%.1f\n", one, many);
  return 0;
}
