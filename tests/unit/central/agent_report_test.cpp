// The ElasticDNS-Agent header: what the agent formats, central parses; bad input names the key.
#include <gtest/gtest.h>

#include "elasticdns/agent_report.hpp"

using namespace elasticdns;

namespace {

report::AgentReport sample() {
  report::AgentReport r;
  r.server = "host1.example.com";
  r.index = 42;
  r.version = "0.1.0";
  r.sync_age_ms = 12;
  r.ebpf_identity = true;
  return r;
}

TEST(AgentReport, FormatThenParseIsTheSame) {
  auto r = sample();
  EXPECT_EQ(report::format(r),
            "server=host1.example.com; index=42; version=0.1.0; sync_age_ms=12; "
            "ebpf_identity=on; ebpf_redirect=off");
  auto back = report::parse(report::format(r));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back.value(), r);
  r.peers_up = 2;
  r.peers_total = 3;
  r.traffic_generation = 7;
  back = report::parse(report::format(r));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back.value(), r);
}

TEST(AgentReport, UnknownKeysAreIgnored) {
  auto r = report::parse("server=h1; index=1; version=v1; future_thing=whatever");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->server, "h1");
}

TEST(AgentReport, BadInputNamesTheKey) {
  struct Case {
    const char* text;
    const char* field;
  };
  for (auto c : std::initializer_list<Case>{
           {"index=1; version=v1", "agent_report/server"},
           {"server=h1; version=v1", "agent_report/index"},
           {"server=h1; index=1", "agent_report/version"},
           {"server=Host_1; index=1; version=v1", "agent_report/server"},
           {"server=h1; index=-1; version=v1", "agent_report/index"},
           {"server=h1; index=1x; version=v1", "agent_report/index"},
           {"server=h1; index=1; version=v 1", "agent_report/version"},
           {"server=h1; index=1; version=v1; ebpf_identity=yes", "agent_report/ebpf_identity"},
           {"server=h1; index=1; version=v1; peers=4/3", "agent_report/peers"},
           {"server=h1; index=1; version=v1; peers=4", "agent_report/peers"},
           {"server=h1; index=1; version=v1; traffic_generation=x",
            "agent_report/traffic_generation"},
           {"server=h1; server=h2; index=1; version=v1", "agent_report/server"},
           {"server=h1; index=1; version=v1; garbage", "agent_report"},
       }) {
    auto r = report::parse(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().field, c.field) << c.text << ": " << r.error().message();
  }
  EXPECT_FALSE(report::parse(std::string(2000, 'a')));
}

}  // namespace
