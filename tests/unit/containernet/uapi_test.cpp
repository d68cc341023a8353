// The UAPI text protocol and `wg` spellings of one plan, and the parsers of what a device
// reports.
#include "agent/containernet/uapi.hpp"

#include <gtest/gtest.h>

namespace elasticdns::agent {
namespace {

const std::string kKeyB = "YBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const std::string kKeyBHex = "6010000000000000000000000000000000000000000000000000000000000000";
const std::string kKeyC = "YCAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const std::string kKeyCHex = "6020000000000000000000000000000000000000000000000000000000000000";

PeerPlan plan() {
  PeerPlan p;
  p.remove = {kKeyC};
  p.set = {PeerConfig{kKeyB, "192.0.2.2:51820", {"10.240.2.0/24"}}};
  return p;
}

TEST(UapiSet, RendersRemovalsThenPeers) {
  DeviceSettings s;
  s.persistent_keepalive = 25;
  auto text = renderUapiSet(plan(), s);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text.value(),
            "set=1\n"
            "public_key=" +
                kKeyCHex +
                "\nremove=true\n"
                "public_key=" +
                kKeyBHex +
                "\n"
                "endpoint=192.0.2.2:51820\n"
                "persistent_keepalive_interval=25\n"
                "replace_allowed_ips=true\n"
                "allowed_ip=10.240.2.0/24\n"
                "\n");
}

TEST(UapiSet, DeviceSettingsComeFirst) {
  DeviceSettings s;
  auto key = keyFromHex(std::string(63, '0') + "8");
  ASSERT_TRUE(key.ok());
  s.private_key = key.value();
  s.listen_port = 51820;
  auto text = renderUapiSet({}, s);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text.value(),
            "set=1\nprivate_key=" + std::string(63, '0') + "8\nlisten_port=51820\n\n");
}

TEST(UapiSet, ABadKeyIsAnError) {
  PeerPlan p;
  p.remove = {"nope"};
  EXPECT_FALSE(renderUapiSet(p, {}).ok());
}

TEST(UapiGet, ParsesPeersAndCounters) {
  const std::string answer =
      "private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a\n"
      "listen_port=51820\n"
      "public_key=" +
      kKeyBHex +
      "\n"
      "endpoint=192.0.2.2:51820\n"
      "last_handshake_time_sec=1700000000\n"
      "last_handshake_time_nsec=5\n"
      "tx_bytes=300\n"
      "rx_bytes=200\n"
      "persistent_keepalive_interval=25\n"
      "allowed_ip=10.240.2.0/24\n"
      "allowed_ip=10.1.0.0/16\n"
      "protocol_version=1\n"
      "public_key=" +
      kKeyCHex +
      "\n"
      "allowed_ip=10.240.3.0/24\n"
      "errno=0\n"
      "\n";
  auto s = parseUapiGet(answer);
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_TRUE(s->has_private_key);
  EXPECT_EQ(s->public_key.size(), 44u);
  EXPECT_EQ(s->listen_port, 51820);
  ASSERT_EQ(s->peers.size(), 2u);
  EXPECT_EQ(s->peers[0].config,
            (PeerConfig{kKeyB, "192.0.2.2:51820", {"10.1.0.0/16", "10.240.2.0/24"}}));
  EXPECT_EQ(s->peers[0].last_handshake_sec, 1700000000);
  EXPECT_EQ(s->peers[0].rx_bytes, 200u);
  EXPECT_EQ(s->peers[0].tx_bytes, 300u);
  EXPECT_EQ(s->peers[0].persistent_keepalive, 25u);
  EXPECT_EQ(s->peers[1].config, (PeerConfig{kKeyC, "", {"10.240.3.0/24"}}));
  EXPECT_EQ(s->peers[1].last_handshake_sec, 0);
}

TEST(UapiGet, ErrorsAreReported) {
  EXPECT_FALSE(parseUapiGet("errno=19\n\n").ok());
  EXPECT_FALSE(parseUapiGet("listen_port=51820\n\n").ok());  // no errno
  EXPECT_FALSE(parseUapiGet("listen_port=x\nerrno=0\n\n").ok());
  EXPECT_FALSE(parseUapiGet("public_key=zz\nerrno=0\n\n").ok());
  EXPECT_FALSE(parseUapiGet("garbage\nerrno=0\n\n").ok());
  auto empty = parseUapiGet("errno=0\n\n");  // a fresh device
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_private_key);
  EXPECT_TRUE(empty->peers.empty());
  EXPECT_FALSE(parseUapiSetAnswer("errno=0\n\n").has_value());
  EXPECT_TRUE(parseUapiSetAnswer("errno=22\n\n").has_value());
  EXPECT_TRUE(parseUapiSetAnswer("").has_value());
}

TEST(WgSet, OneCommandWithEveryChange) {
  DeviceSettings s;
  s.persistent_keepalive = 25;
  s.private_key = WireGuardKey{};
  s.listen_port = 51820;
  EXPECT_EQ(wgSetArguments("/usr/bin/wg", "cn0", plan(), s, "/var/lib/elasticdns/cn.key"),
            (std::vector<std::string>{
                "/usr/bin/wg", "set", "cn0", "private-key", "/var/lib/elasticdns/cn.key",
                "listen-port", "51820", "peer", kKeyC, "remove", "peer", kKeyB, "endpoint",
                "192.0.2.2:51820", "persistent-keepalive", "25", "allowed-ips", "10.240.2.0/24"}));
}

TEST(WgDump, ParsesPeers) {
  const std::string dump =
      "cHJpdmF0ZQ==\t" + kKeyC + "\t51820\toff\n" +  // first line: the interface
      kKeyB + "\t(none)\t192.0.2.2:51820\t10.240.2.0/24,10.1.0.0/16\t1700000000\t200\t300\t25\n" +
      kKeyC + "\t(none)\t(none)\t(none)\t0\t0\t0\toff\n";
  auto s = parseWgDump(dump);
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->public_key, kKeyC);
  EXPECT_EQ(s->listen_port, 51820);
  ASSERT_EQ(s->peers.size(), 2u);
  EXPECT_EQ(s->peers[0].config,
            (PeerConfig{kKeyB, "192.0.2.2:51820", {"10.1.0.0/16", "10.240.2.0/24"}}));
  EXPECT_EQ(s->peers[0].rx_bytes, 200u);
  EXPECT_EQ(s->peers[0].persistent_keepalive, 25u);
  EXPECT_EQ(s->peers[1].config, (PeerConfig{kKeyC, "", {}}));
  EXPECT_FALSE(parseWgDump("").ok());
  EXPECT_FALSE(parseWgDump("a\tb\n").ok());
  EXPECT_FALSE(parseWgDump("a\tb\t1\toff\nshort\tline\n").ok());
}

}  // namespace
}  // namespace elasticdns::agent
