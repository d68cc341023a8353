// The precomputed zone answering real wire queries (built and checked with ldns): versioned,
// non-versioned, roundrobin, sticky, closest, datasources, SRV, negative answers, EDNS, TC.
#include "agent/dns/zone.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "support/dns_util.hpp"
#include "support/topology_util.hpp"

namespace elasticdns::agent {
namespace {

using namespace std::chrono_literals;
using namespace elasticdns::testing;

model::Topology topology() {
  model::Topology t;
  t.index = 42;
  t.versions = {{"v1", 1}, {"v2", 2}, {"v3", 3}};
  for (auto* n : {"host1", "host2"})
    t.servers[n] = model::Server{n, "192.0.2.1", {}, {}, std::nullopt};
  model::Service api;
  api.name = "api";
  api.ports = {model::PortMapping{3000, 80, 443, 0, 0}, model::PortMapping{9000, 0, 0, 0, 9000}};
  t.services["api"] = api;
  model::Service flat;
  flat.name = "flat";
  flat.dns_behaviour = model::DnsBehaviour::kNonVersioned;
  t.services["flat"] = flat;
  model::Service sticky;
  sticky.name = "sticky";
  sticky.load_balancing = model::LoadBalancing::kSticky;
  t.services["sticky"] = sticky;
  model::Service near;
  near.name = "near";
  near.load_balancing = model::LoadBalancing::kClosest;
  t.services["near"] = near;
  auto add = [&](model::Container c) { t.containers[c.id] = c; };
  add(container("api-1a", "api", "v1", "host1", "10.0.1.1"));
  add(container("api-1b", "api", "v1", "host2", "10.0.1.2"));
  add(container("api-3a", "api", "v3", "host1", "10.0.3.1"));
  add(container("api-3b", "api", "v3", "host1", "10.0.3.2"));
  add(container("api-3c", "api", "v3", "host2", "10.0.3.3", model::ContainerState::kDraining));
  t.containers["api-3a"].address6 = "fd00::31";
  add(container("web-1", "web", "v1", "host1", "127.0.1.1"));
  add(container("web-2", "web", "v2", "host1", "127.0.1.2"));
  add(container("web-3", "web", "v3", "host2", "127.0.1.3"));
  add(container("flat-1", "flat", "v1", "host1", "10.5.0.1"));
  add(container("flat-3", "flat", "v3", "host1", "10.5.0.3"));
  for (int i = 1; i <= 4; ++i)
    add(container("sticky-" + std::to_string(i), "sticky", "v1", "host1",
                  "10.6.0." + std::to_string(i)));
  add(container("near-1", "near", "v1", "host1", "10.7.0.1"));
  add(container("near-2", "near", "v1", "host2", "10.7.0.2"));
  add(container("near-3", "near", "v1", "host2", "10.7.0.3"));
  model::Datasource main{"mysql", "main", true, {"10.9.0.1", "fd00::91"}};
  model::Datasource spare{"mysql", "spare", false, {"10.9.0.2"}};
  model::Datasource redis{"redis", "default", false, {"10.9.1.1"}};
  t.datasources[main.key()] = main;
  t.datasources[spare.key()] = spare;
  t.datasources[redis.key()] = redis;
  t.recomputeDerived();
  return t;
}

class AgentAnswers : public ::testing::Test {
 protected:
  void SetUp() override {
    ZoneConfig cfg;
    cfg.server_name = "host1";
    auto z = Zone::build(topology(), cfg);
    ASSERT_TRUE(z.ok()) << z.error().message();
    zone = z.value();
  }

  struct Reply {
    Pkt pkt;
    AnswerOutcome outcome;
    std::vector<uint8_t> bytes;
  };
  Reply ask(const std::string& name, ldns_rr_type type, const char* from = "127.0.0.1",
            uint16_t edns = 0, size_t limit = 0, policy::TimePoint now = {}, bool stale = false,
            std::string_view container_id = {}) {
    auto query = makeQuery(name, type, {.edns = edns != 0, .udp_size = edns});
    wire::Query q;
    EXPECT_EQ(wire::parseQuery(query, q), wire::ParseStatus::kOk);
    sockaddr_storage src = v4(from);
    AnswerInput in;
    in.query = &q;
    in.packet = query;
    in.source = &src;
    in.container_id = container_id;
    in.now = now;
    in.stale = stale;
    in.limit = limit ? limit : wire::udpLimit(q);
    in.rotation = rotation++;
    in.sticky = &sticky;
    Reply r;
    r.bytes.resize(wire::kMaxMessageSize);
    r.outcome = zone->answer(in, r.bytes);
    r.bytes.resize(r.outcome.length);
    if (r.outcome.length)
      r.pkt = fromWire(std::span<const uint8_t>(r.bytes.data(), r.bytes.size()));
    return r;
  }
  std::set<std::string> addressesOf(const std::string& name, const char* from,
                                    ldns_rr_type type = LDNS_RR_TYPE_A) {
    auto r = ask(name, type, from);
    EXPECT_TRUE(r.pkt);
    auto a = answers(r.pkt.get());
    return {a.begin(), a.end()};
  }

  std::shared_ptr<const Zone> zone;
  StickyTable sticky;
  uint32_t rotation = 0;
};

using Set = std::set<std::string>;

TEST_F(AgentAnswers, VersionedBySourceAddress) {
  EXPECT_EQ(addressesOf("api.cloud66.local", "127.0.1.1"), (Set{"10.0.1.1", "10.0.1.2"}))
      << "v1 caller: v1 containers";
  EXPECT_EQ(addressesOf("api.cloud66.local", "127.0.1.2"), (Set{"10.0.1.1", "10.0.1.2"}))
      << "v2 caller, api has no v2: newest older (v1)";
  EXPECT_EQ(addressesOf("api.cloud66.local", "127.0.1.3"), (Set{"10.0.3.1", "10.0.3.2"}))
      << "v3 caller: v3, draining container left out";
  EXPECT_EQ(addressesOf("api.cloud66.local", "127.0.0.1"), (Set{"10.0.3.1", "10.0.3.2"}))
      << "unknown caller: latest";
  EXPECT_EQ(addressesOf("api.cloud66.local", "127.0.0.1", LDNS_RR_TYPE_AAAA), (Set{"fd00::31"}));
}

TEST_F(AgentAnswers, CallerIdentityWinsOverAddress) {
  auto r = ask("api.cloud66.local", LDNS_RR_TYPE_A, "127.0.1.3", 0, 0, {}, false, "web-1");
  auto a = answers(r.pkt.get());
  EXPECT_EQ(Set(a.begin(), a.end()), (Set{"10.0.1.1", "10.0.1.2"}));
  EXPECT_TRUE(r.outcome.caller_known);
  auto u = ask("api.cloud66.local", LDNS_RR_TYPE_A, "127.0.9.9");
  EXPECT_FALSE(u.outcome.caller_known);
}

TEST_F(AgentAnswers, NonVersionedAlwaysLatest) {
  EXPECT_EQ(addressesOf("flat.cloud66.local", "127.0.1.1"), (Set{"10.5.0.3"}));
  EXPECT_EQ(addressesOf("flat.cloud66.local", "127.0.0.1"), (Set{"10.5.0.3"}));
}

TEST_F(AgentAnswers, RoundRobinRotates) {
  std::set<std::string> firsts;
  for (int i = 0; i < 4; ++i) {
    auto r = ask("api.cloud66.local", LDNS_RR_TYPE_A, "127.0.1.1");
    auto a = answers(r.pkt.get());
    ASSERT_EQ(a.size(), 2u);
    firsts.insert(a[0]);
  }
  EXPECT_EQ(firsts.size(), 2u) << "each address comes first in turn";
}

TEST_F(AgentAnswers, StickyPinsOneAddressWithinTheWindow) {
  policy::TimePoint t0{};
  auto first = ask("sticky.cloud66.local", LDNS_RR_TYPE_A, "127.0.1.1", 0, 0, t0);
  auto a = answers(first.pkt.get());
  ASSERT_EQ(a.size(), 1u) << "a single address";
  for (int i = 1; i < 5; ++i) {
    auto r = ask("sticky.cloud66.local", LDNS_RR_TYPE_A, "127.0.1.1", 0, 0, t0 + i * 10s);
    EXPECT_EQ(answers(r.pkt.get()), a) << "same address within the window";
  }
  auto late = ask("sticky.cloud66.local", LDNS_RR_TYPE_A, "127.0.1.1", 0, 0, t0 + 57s);
  ldns_rr* rr = ldns_rr_list_rr(ldns_pkt_answer(late.pkt.get()), 0);
  EXPECT_EQ(ldns_rr_ttl(rr), 3u) << "TTL no longer than what is left of the window";
  // Another caller rotates independently; with 4 members, callers spread.
  std::set<std::string> seen;
  for (int c = 1; c <= 3; ++c) {
    std::string from = "127.0.1." + std::to_string(c);
    for (int k = 0; k < 3; ++k) {
      auto r = ask("sticky.cloud66.local", LDNS_RR_TYPE_A, from.c_str(), 0, 0, t0 + 1s);
      seen.insert(answers(r.pkt.get()).at(0));
    }
  }
  EXPECT_GE(seen.size(), 2u);
}

TEST_F(AgentAnswers, StickyPinDroppedWhenItsContainerGoes) {
  policy::TimePoint t0{};
  auto first =
      answers(ask("sticky.cloud66.local", LDNS_RR_TYPE_A, "127.0.1.1", 0, 0, t0).pkt.get());
  ASSERT_EQ(first.size(), 1u);
  // New snapshot without the pinned container; the same sticky table.
  auto t = topology();
  for (auto it = t.containers.begin(); it != t.containers.end(); ++it)
    if (it->second.address == first[0]) {
      it->second.state = model::ContainerState::kDraining;
      break;
    }
  ZoneConfig cfg;
  cfg.server_name = "host1";
  zone = Zone::build(t, cfg).value();
  auto after =
      answers(ask("sticky.cloud66.local", LDNS_RR_TYPE_A, "127.0.1.1", 0, 0, t0 + 1s).pkt.get());
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], first[0]);
}

TEST_F(AgentAnswers, ClosestPrefersTheCallersServer) {
  EXPECT_EQ(addressesOf("near.cloud66.local", "127.0.1.1"), (Set{"10.7.0.1"})) << "web-1 on host1";
  EXPECT_EQ(addressesOf("near.cloud66.local", "127.0.1.3"), (Set{"10.7.0.2", "10.7.0.3"}))
      << "web-3 on host2";
  EXPECT_EQ(addressesOf("near.cloud66.local", "127.0.0.1"), (Set{"10.7.0.1"}))
      << "unknown caller: this agent's server (host1)";
  ZoneConfig cfg;
  cfg.server_name = "host9";
  zone = Zone::build(topology(), cfg).value();
  EXPECT_EQ(addressesOf("near.cloud66.local", "127.0.0.1"),
            (Set{"10.7.0.1", "10.7.0.2", "10.7.0.3"}))
      << "none on the caller's server: all";
}

TEST_F(AgentAnswers, DatasourcesGroupsAndPrimary) {
  EXPECT_EQ(addressesOf("mysql.cloud66.local", "127.0.0.1"), (Set{"10.9.0.1"}));
  EXPECT_EQ(addressesOf("mysql.cloud66.local", "127.0.0.1", LDNS_RR_TYPE_AAAA), (Set{"fd00::91"}));
  EXPECT_EQ(addressesOf("main.mysql.cloud66.local", "127.0.0.1"), (Set{"10.9.0.1"}));
  EXPECT_EQ(addressesOf("spare.mysql.cloud66.local", "127.0.0.1"), (Set{"10.9.0.2"}));
  EXPECT_EQ(addressesOf("redis.cloud66.local", "127.0.0.1"), (Set{"10.9.1.1"}))
      << "no primary: the default group";
}

TEST_F(AgentAnswers, SrvFromPorts) {
  EXPECT_EQ(addressesOf("_http._tcp.api.cloud66.local", "127.0.0.1", LDNS_RR_TYPE_SRV),
            (Set{"0 0 3000 api.cloud66.local."}));
  EXPECT_EQ(addressesOf("_https._tcp.api.cloud66.local", "127.0.0.1", LDNS_RR_TYPE_SRV),
            (Set{"0 0 3000 api.cloud66.local."}));
  EXPECT_EQ(addressesOf("_9000._udp.api.cloud66.local", "127.0.0.1", LDNS_RR_TYPE_SRV),
            (Set{"0 0 9000 api.cloud66.local."}));
  EXPECT_EQ(addressesOf("_9000._tcp.api.cloud66.local", "127.0.0.1", LDNS_RR_TYPE_SRV),
            (Set{"0 0 9000 api.cloud66.local."}));
}

TEST_F(AgentAnswers, NegativeAnswersCarryTheSoa) {
  auto nx = ask("nope.cloud66.local", LDNS_RR_TYPE_A);
  EXPECT_EQ(ldns_pkt_get_rcode(nx.pkt.get()), LDNS_RCODE_NXDOMAIN);
  ASSERT_EQ(ldns_pkt_nscount(nx.pkt.get()), 1);
  ldns_rr* soa = ldns_rr_list_rr(ldns_pkt_authority(nx.pkt.get()), 0);
  EXPECT_EQ(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
  EXPECT_EQ(ldns_rr_ttl(soa), 5u);
  EXPECT_TRUE(ldns_pkt_aa(nx.pkt.get()));

  for (auto [name, type] : {std::pair{"api.cloud66.local", LDNS_RR_TYPE_TXT},
                            std::pair{"_tcp.api.cloud66.local", LDNS_RR_TYPE_A},
                            std::pair{"mysql.cloud66.local", LDNS_RR_TYPE_SRV},
                            std::pair{"flat.cloud66.local", LDNS_RR_TYPE_AAAA}}) {
    auto r = ask(name, type);
    EXPECT_EQ(ldns_pkt_get_rcode(r.pkt.get()), LDNS_RCODE_NOERROR) << name;
    EXPECT_EQ(ldns_pkt_ancount(r.pkt.get()), 0) << name;
    EXPECT_EQ(ldns_pkt_nscount(r.pkt.get()), 1) << name << ": NODATA with SOA";
  }
  auto apex = ask("cloud66.local", LDNS_RR_TYPE_SOA);
  EXPECT_EQ(ldns_pkt_ancount(apex.pkt.get()), 1);
}

TEST_F(AgentAnswers, OutsideTheZoneIsNotAnswered) {
  auto r = ask("example.com", LDNS_RR_TYPE_A);
  EXPECT_FALSE(r.outcome.in_zone);
  EXPECT_EQ(r.outcome.length, 0u);
  EXPECT_FALSE(ask("xcloud66.local", LDNS_RR_TYPE_A).outcome.in_zone);
  EXPECT_TRUE(ask("a.b.c.cloud66.local", LDNS_RR_TYPE_A).outcome.in_zone);
}

TEST_F(AgentAnswers, QuestionCaseEchoed) {
  auto r = ask("ApI.ClOuD66.LoCaL", LDNS_RR_TYPE_A, "127.0.1.1");
  ldns_rr* q = ldns_rr_list_rr(ldns_pkt_question(r.pkt.get()), 0);
  char* owner = ldns_rdf2str(ldns_rr_owner(q));
  EXPECT_STREQ(owner, "ApI.ClOuD66.LoCaL.");
  free(owner);
  EXPECT_EQ(answers(r.pkt.get()).size(), 2u);
  EXPECT_EQ(ldns_pkt_id(r.pkt.get()), 4242);
}

TEST_F(AgentAnswers, EdnsTruncationAndStale) {
  // 40 containers do not fit in 512 bytes: TC without EDNS, full with a large buffer.
  auto t = topology();
  for (int i = 0; i < 40; ++i)
    t.containers["big-" + std::to_string(i)] =
        container("big-" + std::to_string(i), "big", "v1", "host1", "10.8.0." + std::to_string(i));
  t.recomputeDerived();
  zone = Zone::build(t, ZoneConfig{}).value();
  auto small = ask("big.cloud66.local", LDNS_RR_TYPE_A);
  EXPECT_TRUE(ldns_pkt_tc(small.pkt.get()));
  EXPECT_EQ(ldns_pkt_ancount(small.pkt.get()), 0);
  EXPECT_LE(small.bytes.size(), 512u);
  auto large = ask("big.cloud66.local", LDNS_RR_TYPE_A, "127.0.0.1", 1232);
  EXPECT_FALSE(ldns_pkt_tc(large.pkt.get()));
  EXPECT_EQ(ldns_pkt_ancount(large.pkt.get()), 40);
  EXPECT_EQ(ldns_pkt_edns_udp_size(large.pkt.get()), 1232);
  auto tcp = ask("big.cloud66.local", LDNS_RR_TYPE_A, "127.0.0.1", 0, wire::kMaxMessageSize);
  EXPECT_EQ(ldns_pkt_ancount(tcp.pkt.get()), 40) << "TCP: the full answer";

  auto stale = ask("api.cloud66.local", LDNS_RR_TYPE_A, "127.0.0.1", 1232, 0, {}, true);
  ldns_rdf* data = ldns_pkt_edns_data(stale.pkt.get());
  ASSERT_NE(data, nullptr) << "EDE option present";
  ASSERT_EQ(ldns_rdf_size(data), 6u);
  const uint8_t* d = ldns_rdf_data(data);
  EXPECT_EQ((d[0] << 8) | d[1], 15) << "option code EDE";
  EXPECT_EQ((d[4] << 8) | d[5], 3) << "Stale Answer";
  auto no_edns = ask("api.cloud66.local", LDNS_RR_TYPE_A, "127.0.0.1", 0, 0, {}, true);
  EXPECT_EQ(ldns_pkt_edns(no_edns.pkt.get()), false) << "no OPT when the client sent none";
}

}  // namespace
}  // namespace elasticdns::agent

namespace elasticdns::agent {
namespace {

TEST_F(AgentAnswers, ExplainTellsWhy) {
  auto txt = [&](const char* name, const char* from) {
    auto r = ask(name, LDNS_RR_TYPE_TXT, from);
    EXPECT_TRUE(r.pkt);
    auto a = answers(r.pkt.get());
    return a.empty() ? std::string() : a[0];
  };
  std::string v2 = txt("_explain.api.cloud66.local", "127.0.1.2");
  EXPECT_NE(v2.find("caller=web-2 version=v2 server=host1"), std::string::npos) << v2;
  EXPECT_NE(v2.find("version=v1 (newest older version)"), std::string::npos) << v2;
  std::string unknown = txt("_explain.api.cloud66.local", "127.0.9.9");
  EXPECT_NE(unknown.find("caller=unknown"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("latest (unknown caller)"), std::string::npos) << unknown;
  ask("sticky.cloud66.local", LDNS_RR_TYPE_A, "127.0.1.1");
  std::string pin = txt("_explain.sticky.cloud66.local", "127.0.1.1");
  EXPECT_NE(pin.find("pin=held for 60s more"), std::string::npos) << pin;
  auto nx = ask("_explain.nope.cloud66.local", LDNS_RR_TYPE_TXT);
  EXPECT_EQ(ldns_pkt_get_rcode(nx.pkt.get()), LDNS_RCODE_NXDOMAIN);
}

}  // namespace
}  // namespace elasticdns::agent
