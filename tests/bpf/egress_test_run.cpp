// BPF_PROG_TEST_RUN of edns_egress with crafted IPv4/IPv6 UDP/TCP packets: a packet to the
// agent's DNS port is recorded in the LRU map and the mmap'ed identity slot under
// {v4-mapped saddr, sport, proto} with the sender's cgroup; anything else is not; every packet
// is allowed; counters count by reason. Needs root (exit 77 otherwise).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <vector>

#include "agent/ebpf/callers.hpp"
#include "agent/ebpf/loader.hpp"
#include "elasticdns.skel.h"

using namespace elasticdns::agent;

namespace {

constexpr uint16_t kAgentPort = 5353;
constexpr uint8_t kUdp = 17, kTcp = 6;

uint64_t ownCgroup() {
  auto mount = findCgroup2Mount();
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return cgroupIdOf(mount.value() + line.substr(3)).value();
  return 0;
}

struct Packet {
  std::vector<uint8_t> bytes;
};

// Ethernet + IPv4 (with `options` 32-bit words of IP options) + 8 bytes of L4 header.
Packet ipv4(uint32_t saddr, uint16_t sport, uint16_t dport, uint8_t proto, int options = 0,
            uint16_t frag_off = 0, bool truncate_l4 = false) {
  Packet p;
  p.bytes.resize(ETH_HLEN + 20 + options * 4 + (truncate_l4 ? 0 : 20));
  uint8_t* b = p.bytes.data();
  b[12] = 0x08;  // ETH_P_IP
  uint8_t* ip = b + ETH_HLEN;
  ip[0] = 0x40 | (5 + options);
  uint16_t total = htons(static_cast<uint16_t>(p.bytes.size() - ETH_HLEN));
  std::memcpy(ip + 2, &total, 2);
  uint16_t frag = htons(frag_off);
  std::memcpy(ip + 6, &frag, 2);
  ip[8] = 64;
  ip[9] = proto;
  std::memcpy(ip + 12, &saddr, 4);
  uint32_t daddr = htonl(0x7f000001);
  std::memcpy(ip + 16, &daddr, 4);
  if (!truncate_l4) {
    uint8_t* l4 = ip + 20 + options * 4;
    uint16_t s = htons(sport), d = htons(dport);
    std::memcpy(l4, &s, 2);
    std::memcpy(l4 + 2, &d, 2);
  }
  return p;
}

Packet ipv6(const in6_addr& saddr, uint16_t sport, uint16_t dport, uint8_t next) {
  Packet p;
  p.bytes.resize(ETH_HLEN + 40 + 20);
  uint8_t* b = p.bytes.data();
  b[12] = 0x86;  // ETH_P_IPV6
  b[13] = 0xdd;
  uint8_t* ip = b + ETH_HLEN;
  ip[0] = 0x60;
  ip[5] = 20;
  ip[6] = next;
  ip[7] = 64;
  std::memcpy(ip + 8, &saddr, 16);
  ip[39] = 1;  // ::1
  uint16_t s = htons(sport), d = htons(dport);
  std::memcpy(ip + 40, &s, 2);
  std::memcpy(ip + 42, &d, 2);
  return p;
}

class EgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    skel_ = edns_bpf__open();
    ASSERT_NE(skel_, nullptr);
    skel_->rodata->cfg_agent_port = htons(kAgentPort);
    // Only the egress program is under test here.
    bpf_program* progs[] = {skel_->progs.edns_connect4, skel_->progs.edns_sendmsg4,
                            skel_->progs.edns_recvmsg4, skel_->progs.edns_getpeername4,
                            skel_->progs.edns_connect6, skel_->progs.edns_sendmsg6,
                            skel_->progs.edns_recvmsg6, skel_->progs.edns_getpeername6};
    for (auto* p : progs) bpf_program__set_autoload(p, false);
    ASSERT_EQ(edns_bpf__load(skel_), 0);
    slots_ = ::mmap(nullptr, sizeof(edns_id_slot) * EDNS_ID_SLOTS, PROT_READ, MAP_SHARED,
                    bpf_map__fd(skel_->maps.edns_id_slots), 0);
    ASSERT_NE(slots_, MAP_FAILED);
  }
  void TearDown() override {
    if (slots_ != MAP_FAILED) ::munmap(slots_, sizeof(edns_id_slot) * EDNS_ID_SLOTS);
    edns_bpf__destroy(skel_);
  }

  int run(const Packet& p) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p.bytes.data(),
                .data_size_in = static_cast<uint32_t>(p.bytes.size()), .repeat = 1);
    EXPECT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.edns_egress), &opts), 0);
    return static_cast<int>(opts.retval);
  }

  static edns_sock_key key4(uint32_t saddr, uint16_t sport, uint8_t proto) {
    Peer peer;
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = saddr;
    sin.sin_port = htons(sport);
    std::memcpy(&peer.addr, &sin, sizeof sin);
    peer.transport = static_cast<Transport>(proto);
    return sockKeyOf(peer);
  }

  // The cgroup recorded in the LRU map for `key`, 0 when absent.
  uint64_t recorded(const edns_sock_key& key) {
    edns_sock_val val{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.edns_sock_lru), &key, &val) != 0) return 0;
    EXPECT_GT(val.time_ns, 0u);
    return val.cgroup_id;
  }
  uint64_t slot(const edns_sock_key& key) {
    return readIdentitySlot(static_cast<const edns_id_slot*>(slots_), key).value_or(0);
  }
  uint64_t counter(unsigned reason) {
    int cpus = libbpf_num_possible_cpus();
    std::vector<uint64_t> v(cpus);
    uint32_t k = reason;
    EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.edns_counters), &k, v.data()), 0);
    uint64_t sum = 0;
    for (auto x : v) sum += x;
    return sum;
  }

  edns_bpf* skel_ = nullptr;
  void* slots_ = MAP_FAILED;
  const uint64_t cgroup_ = ownCgroup();
  const uint32_t src_ = htonl(0x0A000002);  // 10.0.0.2
};

TEST_F(EgressTest, RecordsIpv4UdpToAgentPort) {
  EXPECT_EQ(run(ipv4(src_, 40000, kAgentPort, kUdp)), 1);
  ASSERT_NE(cgroup_, 0u);
  EXPECT_EQ(recorded(key4(src_, 40000, kUdp)), cgroup_);
  EXPECT_EQ(slot(key4(src_, 40000, kUdp)), cgroup_);
  EXPECT_EQ(recorded(key4(src_, 40000, kTcp)), 0u) << "the protocol is part of the key";
  EXPECT_EQ(slot(key4(src_, 40001, kUdp)), 0u) << "the port is part of the key";
  EXPECT_EQ(counter(EDNS_CNT_IDENTIFIED), 1u);
}

TEST_F(EgressTest, RecordsIpv4TcpAndHonoursIpOptions) {
  EXPECT_EQ(run(ipv4(src_, 40002, kAgentPort, kTcp)), 1);
  EXPECT_EQ(recorded(key4(src_, 40002, kTcp)), cgroup_);
  EXPECT_EQ(run(ipv4(src_, 40003, kAgentPort, kUdp, /*options=*/2)), 1);
  EXPECT_EQ(recorded(key4(src_, 40003, kUdp)), cgroup_);
  EXPECT_EQ(slot(key4(src_, 40003, kUdp)), cgroup_);
}

TEST_F(EgressTest, IgnoresOtherPortsFragmentsAndProtocols) {
  EXPECT_EQ(run(ipv4(src_, 40004, 53, kUdp)), 1);
  EXPECT_EQ(recorded(key4(src_, 40004, kUdp)), 0u);
  EXPECT_EQ(run(ipv4(src_, 40005, kAgentPort, kUdp, 0, /*frag_off=*/100)), 1);
  EXPECT_EQ(recorded(key4(src_, 40005, kUdp)), 0u);
  EXPECT_EQ(run(ipv4(src_, 40006, kAgentPort, /*ICMP*/ 1)), 1);
  EXPECT_EQ(counter(EDNS_CNT_IDENTIFIED), 0u);
  EXPECT_EQ(counter(EDNS_CNT_NOT_PARSED), 0u);
}

TEST_F(EgressTest, CountsTruncatedPacketsAndAllowsThem) {
  EXPECT_EQ(run(ipv4(src_, 0, 0, kUdp, 0, 0, /*truncate_l4=*/true)), 1);
  EXPECT_EQ(counter(EDNS_CNT_NOT_PARSED), 1u);
  EXPECT_EQ(counter(EDNS_CNT_IDENTIFIED), 0u);
}

TEST_F(EgressTest, RecordsIpv6UdpAndTcp) {
  in6_addr src{};
  inet_pton(AF_INET6, "fd00::2", &src);
  EXPECT_EQ(run(ipv6(src, 40010, kAgentPort, kUdp)), 1);
  EXPECT_EQ(run(ipv6(src, 40011, kAgentPort, kTcp)), 1);
  EXPECT_EQ(run(ipv6(src, 40012, 53, kUdp)), 1);
  auto key6 = [&](uint16_t port, uint8_t proto) {
    Peer peer;
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = src;
    sin6.sin6_port = htons(port);
    std::memcpy(&peer.addr, &sin6, sizeof sin6);
    peer.transport = static_cast<Transport>(proto);
    return sockKeyOf(peer);
  };
  EXPECT_EQ(recorded(key6(40010, kUdp)), cgroup_);
  EXPECT_EQ(slot(key6(40010, kUdp)), cgroup_);
  EXPECT_EQ(recorded(key6(40011, kTcp)), cgroup_);
  EXPECT_EQ(recorded(key6(40012, kUdp)), 0u);
  EXPECT_EQ(counter(EDNS_CNT_IDENTIFIED), 2u);
}

TEST_F(EgressTest, V4MappedPeerFindsIpv4Record) {
  EXPECT_EQ(run(ipv4(src_, 40020, kAgentPort, kUdp)), 1);
  Peer peer;
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:10.0.0.2", &sin6.sin6_addr);
  sin6.sin6_port = htons(40020);
  std::memcpy(&peer.addr, &sin6, sizeof sin6);
  EXPECT_EQ(slot(sockKeyOf(peer)), cgroup_) << "a dual-stack agent socket sees v4-mapped peers";
}

}  // namespace

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "SKIP: BPF_PROG_TEST_RUN needs root\n");
    return 77;
  }
  if (!findCgroup2Mount()) {
    std::fprintf(stderr, "SKIP: no cgroup2 mount\n");
    return 77;
  }
  {
    edns_bpf* probe = edns_bpf__open_and_load();
    if (!probe) {
      std::fprintf(stderr, "SKIP: the kernel refused the BPF programs: %s\n", strerror(errno));
      return 77;
    }
    edns_bpf__destroy(probe);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
