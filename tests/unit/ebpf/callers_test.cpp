// Unit tests of the caller registry's pure parts (no root): container id from cgroup paths,
// the seqlock'd identity slot reader, keys of v4/v6/v4-mapped peers, the cgroup2 mount lookup,
// and the registry over a fake slot array and a temporary directory tree standing for cgroups.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "agent/config.hpp"
#include "agent/ebpf/callers.hpp"
#include "agent/ebpf/loader.hpp"
#include "support/readme_util.hpp"

using namespace elasticdns::agent;
namespace fs = std::filesystem;

namespace {

const std::string kHex(64, 'a');
const std::string kHex2 = std::string(63, '0') + "f";

std::vector<std::regex> defaults() {
  return compileContainerIdPatterns("").value();
}

TEST(ContainerIdFromCgroupPath, DockerSystemdDriver) {
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "system.slice/docker-" + kHex + ".scope"), kHex);
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "docker-" + kHex + ".scope/init.scope"), kHex)
      << "a nested cgroup inside the container";
}

TEST(ContainerIdFromCgroupPath, DockerCgroupfsContainerdPodmanCrio) {
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "docker/" + kHex), kHex);
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "/docker/" + kHex2 + "/"), kHex2);
  EXPECT_EQ(containerIdFromCgroupPath(
                defaults(), "kubepods.slice/kubepods-pod1.slice/cri-containerd-" + kHex + ".scope"),
            kHex);
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "machine.slice/libpod-" + kHex2 + ".scope"),
            kHex2);
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "crio-" + kHex + ".scope"), kHex);
}

TEST(ContainerIdFromCgroupPath, FallsBackToFirstComponentBelowParent) {
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "web-1"), "web-1");
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "web-1/sub"), "web-1");
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "libpod-conmon-" + kHex + ".scope"),
            "libpod-conmon-" + kHex + ".scope")
      << "podman's conmon is not the container";
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), ""), "");
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "/"), "");
  EXPECT_EQ(containerIdFromCgroupPath(defaults(), "docker-abc.scope"), "docker-abc.scope")
      << "not 64 hex digits";
}

TEST(ContainerIdPatterns, CustomAndInvalid) {
  auto custom = compileContainerIdPatterns(R"(ctr-(\w+)$)");
  ASSERT_TRUE(custom.ok());
  EXPECT_EQ(containerIdFromCgroupPath(custom.value(), "pods/ctr-abc"), "abc");
  auto bad = compileContainerIdPatterns("ctr-(");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "bpf.container_id_pattern");
  auto no_group = compileContainerIdPatterns("ctr-.*");
  ASSERT_FALSE(no_group.ok());
  EXPECT_NE(no_group.error().reason.find("capture group"), std::string::npos);
  // Two groups: which one is the id would be a guess (the config parser refuses it too).
  auto two_groups = compileContainerIdPatterns(R"((docker|podman)-(\w+))");
  ASSERT_FALSE(two_groups.ok());
  EXPECT_NE(two_groups.error().reason.find("exactly one"), std::string::npos);
  EXPECT_FALSE(parseConfig("bpf: {cgroup: x, container_id_pattern: \"(a)(b)\"}").ok());
}

Peer peer4(const char* ip, uint16_t port, Transport t = Transport::kUdp) {
  Peer p;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &sin.sin_addr);
  sin.sin_port = htons(port);
  std::memcpy(&p.addr, &sin, sizeof sin);
  p.transport = t;
  return p;
}

Peer peer6(const char* ip, uint16_t port, Transport t = Transport::kUdp) {
  Peer p;
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, ip, &sin6.sin6_addr);
  sin6.sin6_port = htons(port);
  std::memcpy(&p.addr, &sin6, sizeof sin6);
  p.transport = t;
  return p;
}

TEST(SockKey, Ipv4IsV4MappedAndProtocolAndPortCount) {
  auto a = sockKeyOf(peer4("10.0.0.2", 1234));
  auto b = sockKeyOf(peer6("::ffff:10.0.0.2", 1234));
  EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0);
  auto c = sockKeyOf(peer4("10.0.0.2", 1234, Transport::kTcp));
  EXPECT_NE(std::memcmp(&a, &c, sizeof a), 0);
  EXPECT_EQ(a.sport, htons(1234));
  EXPECT_EQ(c.proto, 6);
}

struct FakeSlots {
  std::vector<edns_id_slot> slots = std::vector<edns_id_slot>(EDNS_ID_SLOTS);
  edns_id_slot& put(const Peer& peer, uint64_t cgroup_id) {
    auto key = sockKeyOf(peer);
    auto& s = slots[edns_slot_of(&key)];
    s.seq += 2;
    s.key = key;
    s.cgroup_id = cgroup_id;
    return s;
  }
};

TEST(IdentitySlot, HitMissAndWriterInProgress) {
  FakeSlots f;
  auto& s = f.put(peer4("10.0.0.2", 1234), 42);
  EXPECT_EQ(readIdentitySlot(f.slots.data(), sockKeyOf(peer4("10.0.0.2", 1234))), 42u);
  EXPECT_FALSE(readIdentitySlot(f.slots.data(), sockKeyOf(peer4("10.0.0.3", 1234))));
  EXPECT_FALSE(
      readIdentitySlot(f.slots.data(), sockKeyOf(peer4("10.0.0.2", 1234, Transport::kTcp))));
  s.seq += 1;  // a writer holds the slot
  EXPECT_FALSE(readIdentitySlot(f.slots.data(), sockKeyOf(peer4("10.0.0.2", 1234))));
  EXPECT_FALSE(readIdentitySlot(nullptr, sockKeyOf(peer4("10.0.0.2", 1234))));
}

// A writer that keeps switching one slot between two flows with the programs' protocol (seq odd
// while writing): the reader must never pair one flow's key with the other's cgroup.
TEST(IdentitySlot, NoTornReadUnderConcurrentWriter) {
  FakeSlots f;
  Peer a = peer4("10.0.0.2", 1234);
  auto ka = sockKeyOf(a);
  edns_sock_key kb = ka;
  kb.addr[3] ^= htonl(1);  // another flow
  kb.sport ^= 0x0100;
  edns_id_slot& slot = f.slots[edns_slot_of(&ka)];
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      bool use_a = i % 2 == 0;
      __atomic_fetch_add(&slot.seq, 1, __ATOMIC_ACQ_REL);
      // Byte-wise, so that a reader without the seqlock check would see a half-written key.
      const auto& k = use_a ? ka : kb;
      auto* dst = reinterpret_cast<volatile uint8_t*>(&slot.key);
      const auto* src = reinterpret_cast<const uint8_t*>(&k);
      for (size_t j = 0; j < sizeof k; ++j) dst[j] = src[j];
      // A slow writer: the new key is complete while the cgroup is still the old flow's.
      for (int spin = 0; spin < 200; ++spin) (void)__atomic_load_n(&slot.seq, __ATOMIC_RELAXED);
      __atomic_store_n(&slot.cgroup_id, use_a ? 100 : 200, __ATOMIC_RELAXED);
      __atomic_fetch_add(&slot.seq, 1, __ATOMIC_ACQ_REL);
      // Stable windows between writes, as between real packets.
      for (int spin = 0; spin < 200; ++spin) (void)__atomic_load_n(&slot.seq, __ATOMIC_RELAXED);
    }
  });
  uint64_t hits_a = 0, hits_b = 0, torn = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (int i = 0;
       i < 2000000 || (hits_a + hits_b < 100 && std::chrono::steady_clock::now() < deadline); ++i) {
    if (auto id = readIdentitySlot(f.slots.data(), ka)) {
      torn += *id != 100u;
      ++hits_a;
    }
    if (auto id = readIdentitySlot(f.slots.data(), kb)) {
      torn += *id != 200u;
      ++hits_b;
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(torn, 0u) << "a key paired with another flow's cgroup";
  EXPECT_GT(hits_a + hits_b, 0u) << "the reader never saw a stable slot";
}

TEST(Cgroup2Mount, HybridAndPureHosts) {
  char path[] = "/tmp/edns-mounts-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream(path) << "sysfs /sys sysfs rw 0 0\n"
                        << "tmpfs /sys/fs/cgroup tmpfs ro 0 0\n"
                        << "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
                        << "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
  }
  EXPECT_EQ(findCgroup2Mount(path).value(), "/sys/fs/cgroup/unified");
  { std::ofstream(path) << "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"; }
  EXPECT_EQ(findCgroup2Mount(path).value(), "/sys/fs/cgroup");
  { std::ofstream(path) << "cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"; }
  EXPECT_FALSE(findCgroup2Mount(path).ok());
  unlink(path);
}

TEST(ResolveCgroupPath, RelativeAndAbsolute) {
  EXPECT_EQ(resolveCgroupPath("/sys/fs/cgroup", "containers"), "/sys/fs/cgroup/containers");
  EXPECT_EQ(resolveCgroupPath("/sys/fs/cgroup", "/system.slice/"), "/sys/fs/cgroup/system.slice");
  EXPECT_EQ(resolveCgroupPath("/sys/fs/cgroup", "/sys/fs/cgroup/a"), "/sys/fs/cgroup/a");
  EXPECT_EQ(resolveCgroupPath("/sys/fs/cgroup", "/"), "/sys/fs/cgroup");
}

TEST(CallerRegistry, SocketToContainerThroughTreeAndRescanOnUnknownId) {
  auto root = fs::temp_directory_path() / ("edns-callers-" + std::to_string(getpid()));
  fs::create_directories(root / ("docker-" + kHex + ".scope"));
  fs::create_directories(root / "plain-ctr" / "nested");
  auto ino = [](const fs::path& p) {
    struct stat st;
    EXPECT_EQ(stat(p.c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_ino);
  };
  FakeSlots f;
  f.put(peer4("10.0.0.2", 1000), ino(root / ("docker-" + kHex + ".scope")));
  f.put(peer4("10.0.0.2", 1001), ino(root / "plain-ctr" / "nested"));
  f.put(peer4("10.0.0.2", 1002), ino(root));  // the parent itself: no container

  elasticdns::metrics::Registry metrics;
  CallerRegistry::Options options{root.string(), defaults(), std::chrono::milliseconds(0)};
  CallerRegistry registry(std::move(options), f.slots.data(), -1, metrics);
  EXPECT_EQ(registry.containerIdOf(peer4("10.0.0.2", 1000)), kHex);
  EXPECT_EQ(registry.containerIdOf(peer6("::ffff:10.0.0.2", 1001)), "plain-ctr");
  EXPECT_EQ(registry.containerIdOf(peer4("10.0.0.2", 1002)), "");
  EXPECT_EQ(registry.containerIdOf(peer4("10.0.0.2", 1003)), "") << "not recorded";

  // A container started after the last scan: its id is unknown until the rescan it triggers.
  fs::create_directories(root / "late-ctr");
  f.put(peer4("10.0.0.9", 2000), ino(root / "late-ctr"));
  std::string_view late = registry.containerIdOf(peer4("10.0.0.9", 2000));
  EXPECT_EQ(late, "late-ctr");
  registry.rescan();
  EXPECT_EQ(late, "late-ctr") << "views stay valid across rescans";
  std::string text = metrics.render();
  EXPECT_NE(text.find("elasticdns_bpf_identity_lookups_total{result=\"slot\"} 4"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("elasticdns_bpf_identity_lookups_total{result=\"miss\"} 1"),
            std::string::npos)
      << text;
  fs::remove_all(root);
}

}  // namespace

namespace elasticdns::agent {
namespace {

// Every YAML example in agent/README.md's eBPF section parses as an agent config with a valid
// pattern.
TEST(ReadmeEbpfSection, ExamplesParse) {
  auto examples = elasticdns::testing::readmeYamlBlocks("agent/README.md", "<!-- ebpf -->",
                                                        "<!-- operations -->");
  int n = 0;
  for (const auto& example : examples) {
    ++n;
    auto c = parseConfig(example);
    ASSERT_TRUE(c.ok()) << c.error().message() << "\n" << example;
    EXPECT_TRUE(c->bpf.enabled);
    EXPECT_TRUE(compileContainerIdPatterns(c->bpf.container_id_pattern).ok());
    EXPECT_TRUE(redirectTargetOf(c->listen).v4.has_value());
  }
  EXPECT_GT(n, 0);
}

TEST(RedirectTarget, SpecificAddressesOnly) {
  using boost::asio::ip::make_address;
  using boost::asio::ip::udp;
  auto t = redirectTargetOf({udp::endpoint(make_address("0.0.0.0"), 53),
                             udp::endpoint(make_address("::ffff:10.0.0.1"), 53),
                             udp::endpoint(make_address("fd00::1"), 53)});
  ASSERT_TRUE(t.v4 && t.v6);
  EXPECT_EQ(t.v4->to_string(), "10.0.0.1");
  EXPECT_EQ(t.v6->to_string(), "fd00::1");
  EXPECT_EQ(t.port, 53);
  EXPECT_FALSE(redirectTargetOf({udp::endpoint(make_address("0.0.0.0"), 53)}).v4);
  auto other_port = redirectTargetOf({udp::endpoint(make_address("10.0.0.1"), 5300),
                                      udp::endpoint(make_address("fd00::1"), 5301)});
  EXPECT_EQ(other_port.port, 5300);
  EXPECT_FALSE(other_port.v6) << "bound to another port than the programs redirect to";
}

}  // namespace
}  // namespace elasticdns::agent
