// The nginx renderer: golden texts for the seed's examples, names and defaults per port,
// escaping, and that container churn renders the same text.
#include "agent/traffic/render.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "elasticdns/validate.hpp"
#include "support/topology_util.hpp"

namespace elasticdns::agent {
namespace {

using nlohmann::json;

model::Service service(const std::string& name, json body) {
  auto s = validate::parseService(body, name);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message());
  return s.value();
}

RenderOptions options() {
  RenderOptions o;
  o.domain = "cloud66.local";
  o.resolver = "169.254.20.10:53";
  o.valid = std::chrono::seconds(5);
  o.retries = 3;
  o.connect_timeout = std::chrono::milliseconds(500);
  o.certificate_for = [](std::string_view name) -> std::optional<CertificatePair> {
    if (name != "app.your_domain.com") return std::nullopt;
    return CertificatePair{"/certs/app.your_domain.com.crt", "/certs/app.your_domain.com.key"};
  };
  o.fallback = {"/work/self-signed.crt", "/work/self-signed.key"};
  return o;
}

// The seed's examples: the short forms, the long form with tcp/udp, exact and wildcard matches,
// a "_" catch-all, and a service alone on its port.
model::Topology seedTopology() {
  model::Topology t;
  t.index = 7;
  t.services["web"] =
      service("web", {{"ports", {"3000:80:443"}},
                      {"traffic_matches", {"app.your_domain.com", "*.anotherdomain.com"}}});
  t.services["admin"] = service("admin", {{"ports", {"4000::8443"}}});
  t.services["worker"] = service("worker", {{"ports", {"5000"}}});
  t.services["fallback"] =
      service("fallback", {{"ports", {"3001:80"}}, {"traffic_matches", {"_"}}});
  t.services["db"] = service(
      "db",
      {{"ports", {{{"container", 5432}, {"tcp", 15432}}, {{"container", 53}, {"udp", 5353}}}}});
  return t;
}

std::string golden(const std::string& name, const std::string& actual) {
  std::string path = std::string(ELASTICDNS_SOURCE_DIR) + "/tests/unit/traffic/golden/" + name;
  if (std::getenv("ELASTICDNS_UPDATE_GOLDEN")) std::ofstream(path) << actual;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing golden file " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(RenderTraffic, SeedExamplesMatchGoldenText) {
  auto r = renderTraffic(seedTopology(), options());
  EXPECT_EQ(r.http, golden("seed-http.conf", r.http));
  EXPECT_EQ(r.stream, golden("seed-stream.conf", r.stream));
  EXPECT_EQ(r.warnings,
            std::vector<std::string>{"https port 443: no certificate for \"*.anotherdomain.com\" "
                                     "(service web): serving the self-signed one"});
}

TEST(RenderTraffic, ContainerPortOnlyPublishesNothing) {
  model::Topology t;
  t.services["worker"] = service("worker", {{"ports", {"5000", {{"container", 6000}}}}});
  auto r = renderTraffic(t, options());
  EXPECT_EQ(r.http.find("server {"), std::string::npos);
  EXPECT_EQ(r.stream.find("stream {"), std::string::npos);
  EXPECT_TRUE(r.warnings.empty());
}

TEST(RenderTraffic, ContainerChurnRendersTheSameText) {
  auto t = seedTopology();
  auto before = renderTraffic(t, options());
  t.versions["v1"] = 1;
  t.versions["v2"] = 2;
  for (int i = 0; i < 50; ++i)
    t.containers["c" + std::to_string(i)] =
        testing::container("c" + std::to_string(i), "web", i < 25 ? "v1" : "v2", "host1",
                           "10.0.0." + std::to_string(i + 1));
  t.index = 99;
  t.recomputeDerived();
  EXPECT_EQ(renderTraffic(t, options()), before);
}

TEST(RenderTraffic, ServicesSharingAPortWithoutMatchesGetTheirOwnNames) {
  model::Topology t;
  t.services["api"] = service("api", {{"ports", {"3000:80"}}});
  t.services["web"] = service("web", {{"ports", {"3000:80"}}});
  auto r = renderTraffic(t, options());
  EXPECT_NE(r.http.find("server_name \"api\" \"api.cloud66.local\";"), std::string::npos);
  EXPECT_NE(r.http.find("server_name \"web\" \"web.cloud66.local\";"), std::string::npos);
  // Nobody matches "_": other names get 404 instead of an arbitrary service.
  EXPECT_NE(r.http.find("listen 80 default_server;\n    return 404;"), std::string::npos);
}

TEST(RenderTraffic, HttpsPortWithoutCatchAllRejectsTheHandshake) {
  model::Topology t;
  t.services["web"] =
      service("web", {{"ports", {"3000::443"}}, {"traffic_matches", {"a.example"}}});
  auto r = renderTraffic(t, options());
  EXPECT_NE(r.http.find("listen 443 ssl default_server;\n    ssl_reject_handshake on;"),
            std::string::npos);
}

TEST(RenderTraffic, OddNamesAreQuoted) {
  model::Topology t;
  t.services["web"] = service(
      "web", {{"ports", {"3000:80"}},
              {"traffic_matches",
               {"we\"ird.example", "back\\slash.example", "semi;{colon}", "$host", "tab\there"}}});
  auto r = renderTraffic(t, options());
  EXPECT_NE(r.http.find("server_name \"we\\\"ird.example\" \"back\\\\slash.example\" "
                        "\"semi;{colon}\" \"$host\" \"tab\\there\";"),
            std::string::npos)
      << r.http;
}

TEST(RenderTraffic, CollidingPortsAreLeftOutWithAWarning) {
  model::Topology t;
  t.services["a"] = service("a", {{"ports", {{{"container", 1}, {"tcp", 9000}}}}});
  t.services["b"] = service("b", {{"ports", {{{"container", 2}, {"tcp", 9000}}, "3:9000"}}});
  t.services["c"] = service("c", {{"ports", {"4:81"}}, {"traffic_matches", {"_"}}});
  t.services["d"] = service("d", {{"ports", {"5:81"}}, {"traffic_matches", {"_", "d.example"}}});
  auto r = renderTraffic(t, options());
  ASSERT_EQ(r.warnings.size(), 3u);
  EXPECT_EQ(r.warnings[0], "http port 81: service d also matches \"_\"; c keeps the default");
  EXPECT_EQ(r.warnings[1], "http port 9000 of service b left out: a publishes it as tcp");
  EXPECT_EQ(r.warnings[2], "tcp port 9000 of service b left out: a publishes it");
  EXPECT_EQ(r.stream.find("a.cloud66.local"), r.stream.rfind("a.cloud66.local"));
  EXPECT_EQ(r.stream.find("b.cloud66.local"), std::string::npos);
}

TEST(RenderTraffic, CertificateStems) {
  EXPECT_EQ(certificateStem("app.example.com"), "app.example.com");
  EXPECT_EQ(certificateStem("*.example.com"), "_wildcard.example.com");
  EXPECT_EQ(certificateStem("../etc/passwd"), "");
  EXPECT_EQ(certificateStem(".."), "");
  EXPECT_EQ(certificateStem(""), "");
}

}  // namespace
}  // namespace elasticdns::agent
