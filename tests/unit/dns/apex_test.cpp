// The zone apex as a delegation checker sees it, with replies parsed by ldns: NS naming the
// agent, the SOA's MNAME, ANY, the NS name's A/AAAA, glue as additional data (dropped, without
// TC, when it does not fit), an NS name outside the zone, a topology name the NS name shadows,
// and the DO bit copied into the reply's OPT (RFC 3225 3).
#include <gtest/gtest.h>

#include <set>

#include "agent/dns/zone.hpp"
#include "support/dns_util.hpp"
#include "support/topology_util.hpp"

namespace elasticdns::agent {
namespace {

using namespace elasticdns::testing;

model::Topology topology() {
  model::Topology t;
  t.index = 9;
  t.versions = {{"v1", 1}};
  t.containers["api-1"] = container("api-1", "api", "v1", "host1", "10.0.1.1");
  t.containers["ns-1"] = container("ns-1", "ns", "v1", "host1", "10.0.9.9");  // a service "ns"
  t.recomputeDerived();
  return t;
}

std::string text(const ldns_rdf* rdf) {
  char* s = ldns_rdf2str(rdf);
  std::string out = s;
  free(s);
  return out;
}

/// "owner type rdata" of each record of a section.
std::multiset<std::string> section(const ldns_pkt* p, ldns_pkt_section which) {
  std::multiset<std::string> out;
  ldns_rr_list* l = ldns_pkt_get_section_clone(p, which);
  for (size_t i = 0; i < ldns_rr_list_rr_count(l); ++i) {
    ldns_rr* rr = ldns_rr_list_rr(l, i);
    if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_OPT) continue;
    char* type = ldns_rr_type2str(ldns_rr_get_type(rr));
    std::string s = text(ldns_rr_owner(rr)) + " " + type;
    free(type);
    for (size_t k = 0; k < ldns_rr_rd_count(rr); ++k) s += " " + text(ldns_rr_rdf(rr, k));
    out.insert(s);
  }
  ldns_rr_list_deep_free(l);
  return out;
}

class Apex : public ::testing::Test {
 protected:
  void build(ZoneConfig cfg) {
    auto z = Zone::build(topology(), cfg);
    ASSERT_TRUE(z.ok()) << z.error().message();
    zone_ = z.value();
  }
  Pkt ask(const std::string& name, ldns_rr_type type, QueryOptions o = {}, size_t limit = 0) {
    auto query = makeQuery(name, type, o);
    wire::Query q;
    EXPECT_EQ(wire::parseQuery(query, q), wire::ParseStatus::kOk);
    sockaddr_storage src = v4("127.0.0.1");
    AnswerInput in;
    in.query = &q;
    in.packet = query;
    in.source = &src;
    in.limit = limit ? limit : wire::udpLimit(q);
    std::vector<uint8_t> out(wire::kMaxMessageSize);
    AnswerOutcome r = zone_->answer(in, out);
    EXPECT_TRUE(r.in_zone);
    length_ = r.length;
    return fromWire(std::span<const uint8_t>(out.data(), r.length));
  }
  static ZoneConfig withAddresses() {
    ZoneConfig cfg;
    cfg.ns_addresses = {"127.0.0.1", "::1"};
    return cfg;
  }
  std::shared_ptr<const Zone> zone_;
  size_t length_ = 0;
};

using Set = std::multiset<std::string>;

TEST_F(Apex, NsNamesTheAgentWithItsAddressesAsAdditionalData) {
  build(withAddresses());
  auto p = ask("cloud66.local", LDNS_RR_TYPE_NS);
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(ldns_pkt_aa(p.get()));
  EXPECT_EQ(section(p.get(), LDNS_SECTION_ANSWER), Set{"cloud66.local. NS ns.cloud66.local."});
  EXPECT_EQ(section(p.get(), LDNS_SECTION_AUTHORITY), Set{});
  EXPECT_EQ(section(p.get(), LDNS_SECTION_ADDITIONAL),
            (Set{"ns.cloud66.local. A 127.0.0.1", "ns.cloud66.local. AAAA ::1"}));
}

TEST_F(Apex, SoaMnameIsTheNsName) {
  build(withAddresses());
  auto p = ask("cloud66.local", LDNS_RR_TYPE_SOA);
  ASSERT_TRUE(p);
  ldns_rr* soa = ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0);
  ASSERT_NE(soa, nullptr);
  EXPECT_EQ(text(ldns_rr_rdf(soa, 0)), "ns.cloud66.local.");
  EXPECT_EQ(text(ldns_rr_rdf(soa, 2)), "9") << "serial = the snapshot index";
  // The negative answers' SOA too.
  auto nx = ask("nope.cloud66.local", LDNS_RR_TYPE_A);
  soa = ldns_rr_list_rr(ldns_pkt_authority(nx.get()), 0);
  ASSERT_NE(soa, nullptr);
  EXPECT_EQ(text(ldns_rr_rdf(soa, 0)), "ns.cloud66.local.");
}

TEST_F(Apex, AnyAtTheApexIsSoaAndNs) {
  build(withAddresses());
  auto p = ask("cloud66.local", LDNS_RR_TYPE_ANY);
  ASSERT_TRUE(p);
  auto answer = section(p.get(), LDNS_SECTION_ANSWER);
  ASSERT_EQ(answer.size(), 2u);
  EXPECT_EQ(answer.count("cloud66.local. NS ns.cloud66.local."), 1u);
  EXPECT_EQ(answer.rbegin()->rfind("cloud66.local. SOA ns.cloud66.local. hostmaster", 0), 0u);
  EXPECT_EQ(section(p.get(), LDNS_SECTION_ADDITIONAL),
            (Set{"ns.cloud66.local. A 127.0.0.1", "ns.cloud66.local. AAAA ::1"}));
}

TEST_F(Apex, TheNsNameAnswersTheAgentsAddressesAndShadowsTheTopology) {
  build(withAddresses());
  EXPECT_EQ(section(ask("ns.cloud66.local", LDNS_RR_TYPE_A).get(), LDNS_SECTION_ANSWER),
            Set{"ns.cloud66.local. A 127.0.0.1"});
  EXPECT_EQ(section(ask("NS.Cloud66.Local", LDNS_RR_TYPE_AAAA).get(), LDNS_SECTION_ANSWER),
            Set{"NS.Cloud66.Local. AAAA ::1"});
  // Other names are as before.
  EXPECT_EQ(answers(ask("api.cloud66.local", LDNS_RR_TYPE_A).get()),
            std::vector<std::string>{"10.0.1.1"});
}

TEST_F(Apex, MixedCaseQuestionKeepsTheCompressedNamesRight) {
  build(withAddresses());
  auto p = ask("ClOuD66.LoCaL", LDNS_RR_TYPE_NS);
  ASSERT_TRUE(p);
  ldns_rr* ns = ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0);
  ASSERT_NE(ns, nullptr);
  EXPECT_EQ(text(ldns_rr_rdf(ns, 0)), "ns.ClOuD66.LoCaL.");
  ldns_rr* glue = ldns_rr_list_rr(ldns_pkt_additional(p.get()), 0);
  ASSERT_NE(glue, nullptr);
  EXPECT_EQ(text(ldns_rr_owner(glue)), "ns.ClOuD66.LoCaL.");
}

TEST_F(Apex, AdditionalDataThatDoesNotFitIsLeftOutWithoutTc) {
  ZoneConfig cfg;
  for (int i = 1; i <= 40; ++i) cfg.ns_addresses.push_back("fd00::" + std::to_string(i));
  build(cfg);
  auto p = ask("cloud66.local", LDNS_RR_TYPE_NS);
  ASSERT_TRUE(p);
  EXPECT_LE(length_, 512u);
  EXPECT_FALSE(ldns_pkt_tc(p.get()));
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 1);
  EXPECT_EQ(ldns_pkt_arcount(p.get()), 0);
  auto tcp = ask("cloud66.local", LDNS_RR_TYPE_NS, {}, wire::kMaxMessageSize);
  EXPECT_EQ(ldns_pkt_arcount(tcp.get()), 40) << "over TCP it fits";
}

TEST_F(Apex, AnNsNameOutsideTheZoneHasNoAddressesHere) {
  ZoneConfig cfg;
  cfg.ns_name = "dns1.example.net";
  build(cfg);
  auto p = ask("cloud66.local", LDNS_RR_TYPE_NS);
  EXPECT_EQ(section(p.get(), LDNS_SECTION_ANSWER), Set{"cloud66.local. NS dns1.example.net."});
  EXPECT_EQ(ldns_pkt_arcount(p.get()), 0);
  auto soa_reply = ask("cloud66.local", LDNS_RR_TYPE_SOA);
  ldns_rr* soa = ldns_rr_list_rr(ldns_pkt_answer(soa_reply.get()), 0);
  ASSERT_NE(soa, nullptr);
  EXPECT_EQ(text(ldns_rr_rdf(soa, 0)), "dns1.example.net.");
  // "ns" is the topology's service again.
  EXPECT_EQ(answers(ask("ns.cloud66.local", LDNS_RR_TYPE_A).get()),
            std::vector<std::string>{"10.0.9.9"});
}

TEST_F(Apex, TheDoBitIsCopiedIntoTheReply) {
  build(withAddresses());
  for (bool dnssec_ok : {false, true}) {
    for (auto [name, type] : {std::pair{"cloud66.local", LDNS_RR_TYPE_NS},
                              std::pair{"api.cloud66.local", LDNS_RR_TYPE_A},
                              std::pair{"nope.cloud66.local", LDNS_RR_TYPE_A},
                              std::pair{"_explain.api.cloud66.local", LDNS_RR_TYPE_TXT}}) {
      auto p = ask(name, type, {.edns = true, .dnssec_ok = dnssec_ok});
      ASSERT_TRUE(p) << name;
      EXPECT_TRUE(ldns_pkt_edns(p.get())) << name;
      EXPECT_EQ(ldns_pkt_edns_do(p.get()), dnssec_ok) << name;
    }
  }
}

}  // namespace
}  // namespace elasticdns::agent
