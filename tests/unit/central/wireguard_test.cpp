// PUT/DELETE /v1/servers/{name}/wireguard through a real central (Router → TopologyState →
// SQLite file): who may write it (the admin token; a per-server token for its own server
// only), what it changes (only the server's wireguard, as a server change in the log), bad
// input (400 naming the field, nothing changed), and server puts that keep it.
#include <gtest/gtest.h>

#include "central/agent_tokens.hpp"
#include "containernet_fixture.hpp"

namespace elasticdns::central {
namespace {

using nlohmann::json;
using testing::ContainerNetCentral;
using testing::kAdmin;
using testing::kH1;
using testing::kH2;
using testing::kH3;
using testing::kReader;

const std::string kKey1 = "WjBMtu18bUMD7RfItn7YA/A/9INSW5D0ilB6d1bu0RQ=";
const std::string kKey2 = "0NT5E7zqHfMHqVjQN9Aq0oB2PMEEgx3D48B6+5m/Fgw=";

std::string wg(const std::string& key, const std::string& endpoint) {
  return json{{"public_key", key}, {"endpoint", endpoint}}.dump();
}

class WireGuard : public ContainerNetCentral {
 protected:
  void SetUp() override {
    ASSERT_FALSE(reopen(ipam("10.240.0.0/16", 24)));
    ASSERT_EQ(putServer("h1", "192.0.2.1").status, 200u);
    ASSERT_EQ(putServer("h2", "192.0.2.2").status, 200u);
  }
  const std::optional<model::WireGuardPeer>& wireguardOf(const std::string& server) const {
    return topology().servers.at(server).wireguard;
  }
};

TEST_F(WireGuard, TheServersOwnTokenPublishesIt) {
  uint64_t index = topology().index;
  auto r = call("PUT", "/v1/servers/h1/wireguard", wg(kKey1, "192.0.2.1:51820"), kH1);
  ASSERT_EQ(r.status, 200u) << r.body.dump();
  EXPECT_EQ(r.body["changes"], 1);
  EXPECT_EQ(topology().index, index + 1);
  ASSERT_TRUE(wireguardOf("h1"));
  EXPECT_EQ(*wireguardOf("h1"), (model::WireGuardPeer{kKey1, "192.0.2.1:51820"}));
  // Nothing else of the record moved.
  EXPECT_EQ(topology().servers.at("h1").subnet, "10.240.0.0/24");
  EXPECT_EQ(topology().servers.at("h1").address, "192.0.2.1");
  // A server change in the log: the agents' delta carries the whole record.
  auto delta = call("GET", "/v1/topology?index=" + std::to_string(index), {}, kReader);
  ASSERT_EQ(delta.body["kind"], "delta");
  ASSERT_EQ(delta.body["changes"].size(), 1u);
  const auto& change = delta.body["changes"][0];
  EXPECT_EQ(change["kind"], "server");
  EXPECT_EQ(change["key"], "h1");
  EXPECT_EQ(change["value"]["wireguard"]["public_key"], kKey1);
  EXPECT_EQ(change["value"]["subnet"], "10.240.0.0/24");
  // The same again acknowledges without a change; a rotated key is one change.
  r = call("PUT", "/v1/servers/h1/wireguard", wg(kKey1, "192.0.2.1:51820"), kH1);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body["changes"], 0);
  EXPECT_EQ(r.body["index"], index + 1);
  EXPECT_EQ(topology().index, index + 1);
  r = call("PUT", "/v1/servers/h1/wireguard", wg(kKey2, "[fd00::1]:51820"), kH1);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(wireguardOf("h1")->public_key, kKey2);
  EXPECT_EQ(topology().index, index + 2);
  // Durable: a restart keeps it.
  ASSERT_FALSE(reopen(ipam("10.240.0.0/16", 24)));
  EXPECT_EQ(*wireguardOf("h1"), (model::WireGuardPeer{kKey2, "[fd00::1]:51820"}));
}

TEST_F(WireGuard, AnotherServersTokenIsForbiddenTheAdminIsNot) {
  uint64_t index = topology().index;
  auto r = call("PUT", "/v1/servers/h2/wireguard", wg(kKey1, "192.0.2.1:51820"), kH1);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.body["error"]["field"], "token");
  EXPECT_EQ(call("PUT", "/v1/servers/h9/wireguard", wg(kKey1, "192.0.2.1:51820"), kH1).status,
            403u);
  EXPECT_EQ(call("PUT", "/v1/servers/h2/wireguard", wg(kKey1, "192.0.2.1:51820"), kReader).status,
            401u);
  EXPECT_EQ(call("PUT", "/v1/servers/h2/wireguard", wg(kKey1, "192.0.2.1:51820"), "nope").status,
            401u);
  // A per-server token writes nothing else of its server, and does not remove the wireguard.
  EXPECT_EQ(call("PUT", "/v1/servers/h1", R"({"address":"192.0.2.1"})", kH1).status, 403u);
  EXPECT_EQ(call("DELETE", "/v1/servers/h1", {}, kH1).status, 403u);
  EXPECT_EQ(call("DELETE", "/v1/servers/h1/wireguard", {}, kH1).status, 403u);
  EXPECT_EQ(topology().index, index);
  EXPECT_FALSE(wireguardOf("h2"));
  r = call("PUT", "/v1/servers/h2/wireguard", wg(kKey1, "192.0.2.2:51820"), kAdmin);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(wireguardOf("h2")->endpoint, "192.0.2.2:51820");
}

TEST_F(WireGuard, UnknownServerIs404) {
  uint64_t index = topology().index;
  auto r = call("PUT", "/v1/servers/h3/wireguard", wg(kKey1, "192.0.2.3:51820"), kH3);
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.body["error"]["field"], "server");
  EXPECT_EQ(call("PUT", "/v1/servers/h3/wireguard", wg(kKey1, "192.0.2.3:51820")).status, 404u);
  EXPECT_EQ(call("DELETE", "/v1/servers/h3/wireguard").status, 404u);
  EXPECT_FALSE(topology().servers.count("h3"));
  EXPECT_EQ(topology().index, index);
}

TEST_F(WireGuard, BadInputIs400NamingTheFieldAndChangesNothing) {
  ASSERT_EQ(call("PUT", "/v1/servers/h1/wireguard", wg(kKey1, "192.0.2.1:51820"), kH1).status,
            200u);
  uint64_t index = topology().index;
  const std::pair<std::string, std::string> cases[] = {
      {wg("not-a-key", "192.0.2.1:51820"), "wireguard/public_key"},
      {wg(kKey2.substr(0, 43), "192.0.2.1:51820"), "wireguard/public_key"},
      {wg(kKey2, "192.0.2.1"), "wireguard/endpoint"},
      {wg(kKey2, "192.0.2.1:0"), "wireguard/endpoint"},
      {wg(kKey2, "h1.example:51820"), "wireguard/endpoint"},
      {R"({"public_key":")" + kKey2 + R"("})", "wireguard/endpoint"},
      {R"({"endpoint":"192.0.2.1:51820"})", "wireguard/public_key"},
      {R"({"public_key":")" + kKey2 + R"(","endpoint":"192.0.2.1:1","private_key":"x"})",
       "wireguard/private_key"},
      {"[]", "body"},
      {"{", "body"},
      {"", "body"},
  };
  for (const auto& [body, field] : cases) {
    auto r = call("PUT", "/v1/servers/h1/wireguard", body, kH1);
    EXPECT_EQ(r.status, 400u) << body;
    EXPECT_EQ(r.body["error"]["field"], field) << body << " -> " << r.body.dump();
  }
  EXPECT_EQ(call("PUT", "/v1/servers/Bad_Name/wireguard", wg(kKey2, "192.0.2.1:1")).status, 400u);
  EXPECT_EQ(call("DELETE", "/v1/servers/h1/wireguard", "{}").status, 400u);
  EXPECT_EQ(call("GET", "/v1/servers/h1/wireguard").status, 405u);
  EXPECT_EQ(call("PUT", "/v1/servers/h1/wireguard/x", wg(kKey2, "192.0.2.1:1")).status, 404u);
  EXPECT_EQ(call("PUT", "/v1/servers/h1/wireguard?x=1", wg(kKey2, "192.0.2.1:1")).status, 400u);
  EXPECT_EQ(topology().index, index);
  EXPECT_EQ(wireguardOf("h1")->public_key, kKey1);
}

TEST_F(WireGuard, ServerPutsKeepItUnlessTheyCarryOne) {
  ASSERT_EQ(call("PUT", "/v1/servers/h1/wireguard", wg(kKey1, "192.0.2.1:51820"), kH1).status,
            200u);
  auto r = putServer("h1", "192.0.2.11");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(wireguardOf("h1")->public_key, kKey1);
  EXPECT_EQ(topology().servers.at("h1").address, "192.0.2.11");
  // The admin sets it with the record.
  r = call("PUT", "/v1/servers/h1",
           json{{"address", "192.0.2.11"},
                {"wireguard", {{"public_key", kKey2}, {"endpoint", "192.0.2.11:51820"}}}}
               .dump());
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(wireguardOf("h1")->public_key, kKey2);
  r = call("PUT", "/v1/servers/h1",
           json{{"address", "192.0.2.11"},
                {"wireguard", {{"public_key", "x"}, {"endpoint", "192.0.2.11:51820"}}}}
               .dump());
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body["error"]["field"], "wireguard/public_key");
  EXPECT_EQ(wireguardOf("h1")->public_key, kKey2);
  // The admin removes it.
  uint64_t index = topology().index;
  r = call("DELETE", "/v1/servers/h1/wireguard");
  ASSERT_EQ(r.status, 200u);
  EXPECT_FALSE(wireguardOf("h1"));
  EXPECT_EQ(topology().index, index + 1);
  r = call("DELETE", "/v1/servers/h1/wireguard");
  EXPECT_EQ(r.body["changes"], 0);
  EXPECT_EQ(topology().index, index + 1);
}

TEST_F(WireGuard, WorksWithContainerNetOff) {
  ASSERT_FALSE(reopen(std::nullopt));
  ASSERT_EQ(putServer("h3", "192.0.2.3").status, 200u);
  EXPECT_EQ(call("PUT", "/v1/servers/h3/wireguard", wg(kKey1, "192.0.2.3:51820"), kH3).status,
            200u);
  EXPECT_EQ(wireguardOf("h3")->public_key, kKey1);
  EXPECT_EQ(topology().servers.at("h3").subnet, "");
}

TEST(CheckServerScope, OwnWireGuardOnly) {
  model::Topology t;
  auto item = [](const std::string& key, bool with_value) {
    model::Server s;
    s.name = key;
    if (with_value) s.wireguard = model::WireGuardPeer{kKey1, "192.0.2.1:1"};
    return WriteItem{protocol::ChangeOp::kPut, protocol::RecordKind::kServer, key, s, true};
  };
  EXPECT_FALSE(checkServerScope(item("h1", true), t, "h1"));
  EXPECT_TRUE(checkServerScope(item("h2", true), t, "h1"));
  EXPECT_TRUE(checkServerScope(item("h1", false), t, "h1"));  // removal: admin only
  auto whole = item("h1", true);
  whole.wireguard_only = false;
  EXPECT_TRUE(checkServerScope(whole, t, "h1"));
}

}  // namespace
}  // namespace elasticdns::central
