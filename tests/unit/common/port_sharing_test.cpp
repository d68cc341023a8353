// validate::checkPortSharing: the traffic port rule central applies to puts and applies.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "elasticdns/validate.hpp"

namespace elasticdns::validate {
namespace {

using nlohmann::json;

std::map<std::string, model::Service> services(json all) {
  std::map<std::string, model::Service> out;
  for (auto it = all.begin(); it != all.end(); ++it) {
    auto s = parseService(it.value(), it.key());
    EXPECT_TRUE(s.ok()) << it.key();
    out[it.key()] = s.value();
  }
  return out;
}

TEST(PortSharing, DistinctMatchesShareAPort) {
  auto s = services({{"api", {{"ports", {"3000:80:443"}}, {"traffic_matches", {"api.example"}}}},
                     {"web", {{"ports", {"3001:80:443"}}, {"traffic_matches", {"*.example", "_"}}}},
                     {"db", {{"ports", {{{"container", 5432}, {"tcp", 5432}, {"udp", 5432}}}}}},
                     {"worker", {{"ports", {"5000"}}}}});
  EXPECT_FALSE(checkPortSharing(s));
}

TEST(PortSharing, ErrorsNameBothServicesAndThePort) {
  struct Case {
    json services;
    std::string field;
    std::string reason;
  } cases[] = {
      {{{"api", {{"ports", {"3000:80"}}}}, {"web", {{"ports", {"3001:80"}}}}},
       "services/web/traffic_matches",
       "http port 80 is published by both services 'api' and 'web': each needs distinct "
       "traffic_matches"},
      {{{"api", {{"ports", {"3000:80"}}, {"traffic_matches", {"A.example"}}}},
        {"web", {{"ports", {"3001:80"}}, {"traffic_matches", {"b.example", "a.example"}}}}},
       "services/web/traffic_matches",
       "http port 80: services 'api' and 'web' both match 'a.example'"},
      {{{"api", {{"ports", {"3000::443"}}, {"traffic_matches", {"_"}}}},
        {"web", {{"ports", {"3001::443"}}, {"traffic_matches", {"_"}}}}},
       "services/web/traffic_matches",
       "https port 443: services 'api' and 'web' both match '_'"},
      {{{"api", {{"ports", {"3000:8080"}}}}, {"web", {{"ports", {"3001::8080"}}}}},
       "services/web/ports",
       "https port 8080: services 'api' and 'web' publish it as http and https"},
      {{{"a", {{"ports", {{{"container", 1}, {"tcp", 9000}}}}}},
        {"b", {{"ports", {{{"container", 2}, {"tcp", 9000}}}}}}},
       "services/b/ports",
       "tcp port 9000 is published by both services 'a' and 'b'"},
      {{{"a", {{"ports", {"3000:80", "3001:80"}}}}},
       "services/a/ports",
       "http port 80 is published twice"},
  };
  for (const auto& c : cases) {
    auto e = checkPortSharing(services(c.services));
    ASSERT_TRUE(e) << c.services.dump();
    EXPECT_EQ(e->field, c.field);
    EXPECT_EQ(e->reason, c.reason);
  }
}

TEST(PortSharing, OnlyConflictsOfTouchedServicesAreReported) {
  auto s = services(
      {{"a", {{"ports", {"1:80"}}}}, {"b", {{"ports", {"2:80"}}}}, {"c", {{"ports", {"3:81"}}}}});
  std::set<std::string> only_c = {"c"}, only_b = {"b"};
  EXPECT_FALSE(checkPortSharing(s, &only_c));
  EXPECT_TRUE(checkPortSharing(s, &only_b));
}

}  // namespace
}  // namespace elasticdns::validate
