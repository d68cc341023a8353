// service.yml intake, config parsing, durations, the watch registry.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "central/apply.hpp"
#include "central/config.hpp"
#include "central/watch.hpp"
#include "elasticdns/text.hpp"
#include "support/readme_util.hpp"

using namespace elasticdns;
using namespace elasticdns::central;

TEST(ServiceYml, AppliesTheFourDirectives) {
  auto r = parseServiceYml(
      "services:\n  api:\n    dns_behaviour: non-versioned\n    load_balancing: sticky\n"
      "    ports: [\"3000:80:443\", {container: 5000, udp: 5000}]\n"
      "    traffic_matches: [api.example.com]\n  worker:\n");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 2u);
  const auto& api = r.value()[0];
  EXPECT_EQ(api.name, "api");
  EXPECT_EQ(api.dns_behaviour, model::DnsBehaviour::kNonVersioned);
  EXPECT_EQ(api.load_balancing, model::LoadBalancing::kSticky);
  ASSERT_EQ(api.ports.size(), 2u);
  EXPECT_EQ(api.ports[0], (model::PortMapping{3000, 80, 443, 0, 0}));
  EXPECT_EQ(api.ports[1], (model::PortMapping{5000, 0, 0, 0, 5000}));
  EXPECT_EQ(api.traffic_matches, std::vector<std::string>{"api.example.com"});
  EXPECT_EQ(r.value()[1].load_balancing, model::LoadBalancing::kRoundRobin);
}

TEST(ServiceYml, ListsEveryUnknownDirective) {
  auto r = parseServiceYml(
      "services:\n  api:\n    image: x\n    ports: [\"80\"]\n  web:\n    git_url: y\n"
      "    build_command: z\n");
  ASSERT_FALSE(r);
  for (const char* name : {"api/image", "web/git_url", "web/build_command"})
    EXPECT_NE(r.error().reason.find(name), std::string::npos) << name;
  EXPECT_EQ(r.error().field, "services/api");
}

TEST(ServiceYml, RejectsBadDocuments) {
  for (const char* doc : {"", "[1, 2]", "services: 3", "services: {}", "services: [a]",
                          "services:\n  API:\n    ports: []\n", "services: {api: [1]}",
                          "services:\n  api:\n    ports: [\"0\"]\n", "{{{{", "- - - - -",
                          "services:\n  api: {}\n  api: {}\n"}) {
    EXPECT_FALSE(parseServiceYml(doc)) << doc;
  }
  // Alias expansion is bounded.
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'g'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + char(c - 1);
    bomb += "]\n";
  }
  auto r = parseServiceYml(bomb);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().reason.find("too large"), std::string::npos) << r.error().reason;
  EXPECT_FALSE(parseServiceYml(std::string(100000, '[')));
}

TEST(Config, DurationsAndListen) {
  using text::parseDuration;
  using text::parseHostPort;
  EXPECT_EQ(parseDuration("500ms").value(), std::chrono::milliseconds(500));
  EXPECT_EQ(parseDuration("30s").value(), std::chrono::milliseconds(30000));
  EXPECT_EQ(parseDuration("5m").value(), std::chrono::milliseconds(300000));
  // One grammar with the agent's config: a bare number is seconds.
  EXPECT_EQ(parseDuration("30").value(), std::chrono::milliseconds(30000));
  for (const char* bad : {"", "s", "-1s", "1.5s", "30x", "9999999999s"})
    EXPECT_FALSE(parseDuration(bad)) << bad;
  EXPECT_EQ(parseHostPort("127.0.0.1:0").value(), (text::HostPort{"127.0.0.1", 0}));
  EXPECT_EQ(parseHostPort("[::1]:8080").value(), (text::HostPort{"::1", 8080}));
  for (const char* bad : {"127.0.0.1", "localhost:80", "127.0.0.1:65536", "[::1]80", ":80"})
    EXPECT_FALSE(parseHostPort(bad)) << bad;
  EXPECT_EQ(parseConfig("idle_timeout: 100ms\n").value().idle_timeout,
            std::chrono::milliseconds(100));
}

TEST(Config, RejectsUnknownKeysAndBadValues) {
  EXPECT_EQ(parseConfig("listen: 127.0.0.1:1\nfoo: 1\n").error().field, "foo");
  EXPECT_EQ(parseConfig("durability: maybe\n").error().field, "durability");
  EXPECT_EQ(parseConfig("max_watchers: -1\n").error().field, "max_watchers");
  EXPECT_EQ(parseConfig("idle_timeout: 99ms\n").error().field, "idle_timeout");
  EXPECT_EQ(parseConfig("idle_timeout: 1x\n").error().field, "idle_timeout");
  EXPECT_EQ(parseConfig("listen: [1]\n").error().field, "listen");
}

TEST(Config, EtcdSection) {
  auto c = parseConfig(
      "store: etcd\netcd:\n  endpoints: [http://10.0.0.1:2379, 'http://[::1]:2379']\n"
      "  prefix: /edns/\n  timeout: 500ms\n  max_txn_ops: 1000\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->store, StoreKind::kEtcd);
  EXPECT_EQ(c->etcd.endpoints,
            (std::vector<std::string>{"http://10.0.0.1:2379", "http://[::1]:2379"}));
  EXPECT_EQ(c->etcd.prefix, "/edns/");
  EXPECT_EQ(c->etcd.timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(c->etcd.max_txn_ops, 1000u);
  // A flag's comma-separated list, over the file's section (its other keys kept).
  auto f = parseConfig("etcd: {endpoints: \"http://a:1,http://b:2\"}", c.value());
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->etcd.endpoints.size(), 2u);
  EXPECT_EQ(f->etcd.prefix, "/edns/");
  EXPECT_EQ(parseConfig("").value().store, StoreKind::kSqlite);
  for (const auto& [yaml, field] : std::vector<std::pair<std::string, std::string>>{
           {"store: mysql", "store"},
           {"etcd: {endpoints: [ftp://a:1]}", "etcd/endpoints"},
           {"etcd: {endpoints: [http://a:1/x]}", "etcd/endpoints"},
           {"etcd: {endpoints: []}", "etcd/endpoints"},
           {"etcd: {prefix: elasticdns}", "etcd/prefix"},
           {"etcd: {prefix: /elasticdns}", "etcd/prefix"},
           {"etcd: {timeout: 50ms}", "etcd/timeout"},
           {"etcd: {max_txn_ops: 1}", "etcd/max_txn_ops"},
           {"etcd: {username: u}", "etcd/password_file"},
           {"etcd: {tls: {ca: x}}", "etcd/tls/ca"},
           {"etcd: [a]", "etcd"}}) {
    auto bad = parseConfig(yaml);
    ASSERT_FALSE(bad) << yaml;
    EXPECT_EQ(bad.error().field, field) << yaml;
  }
}

TEST(Config, EtcdTls) {
  auto c = parseConfig(
      "etcd:\n  endpoints: [https://10.0.0.1:2379, https://etcd2.example:2379]\n"
      "  tls: {ca_file: /etc/etcd/ca.pem, cert_file: /etc/c.pem, key_file: /etc/c.key}\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->etcd.endpoints,
            (std::vector<std::string>{"https://10.0.0.1:2379", "https://etcd2.example:2379"}));
  EXPECT_EQ(c->etcd.tls, (TlsFiles{"/etc/etcd/ca.pem", "/etc/c.pem", "/etc/c.key"}));
  // https without tls: the system's CAs, no client certificate.
  auto s = parseConfig("etcd: {endpoints: [https://etcd.example:2379]}");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_TRUE(s->etcd.tls.empty());
  // The flag's endpoints over a file's tls section.
  auto f = parseConfig("etcd: {endpoints: \"https://a:1,https://b:2\"}", c.value());
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->etcd.tls.ca_file, "/etc/etcd/ca.pem");
  EXPECT_EQ(parseConfig("etcd: {endpoints: \"http://a:1\"}", c.value()).error().field, "etcd/tls");
  for (const auto& [yaml, field] : std::vector<std::pair<std::string, std::string>>{
           {"etcd: {endpoints: [https://a:1, http://b:2]}", "etcd/endpoints"},
           {"etcd: {endpoints: [http://a:1], tls: {ca_file: /ca.pem}}", "etcd/tls"},
           {"etcd: {endpoints: [https://a:1], tls: {cert_file: /c.pem}}", "etcd/tls/key_file"},
           {"etcd: {endpoints: [https://a:1], tls: {key_file: /c.key}}", "etcd/tls/cert_file"},
           {"etcd: {endpoints: [https://a:1], tls: {ca_file: ''}}", "etcd/tls/ca_file"},
           {"etcd: {endpoints: [https://a:1], tls: {ca_file: [a]}}", "etcd/tls/ca_file"},
           {"etcd: {endpoints: [https://a:1], tls: /ca.pem}", "etcd/tls"},
           {"etcd: {endpoints: [https://a:1/x]}", "etcd/endpoints"}}) {
    auto bad = parseConfig(yaml);
    ASSERT_FALSE(bad) << yaml;
    EXPECT_EQ(bad.error().field, field) << yaml << ": " << bad.error().message();
  }
}

// central.example.yml (the config the package installs) shows the etcd section commented out:
// uncommented, it parses (https endpoints with the tls files).
TEST(Config, TheInstalledExampleEtcdSectionParsesUncommented) {
  std::ifstream in(std::string(ELASTICDNS_SOURCE_DIR) + "/central/central.example.yml");
  ASSERT_TRUE(in);
  std::string line, section;
  bool inside = false;
  while (std::getline(in, line)) {
    inside = inside || line == "#etcd:";
    if (inside && line.rfind("#", 0) == 0) section += line.substr(1) + "\n";
    if (inside && line.rfind("#", 0) != 0) break;
  }
  ASSERT_FALSE(section.empty()) << "no #etcd: section";
  auto c = parseConfig(section);
  ASSERT_TRUE(c) << c.error().message() << "\n" << section;
  EXPECT_EQ(c->etcd.endpoints.size(), 3u);
  EXPECT_EQ(c->etcd.tls.cert_file, "/etc/elasticdns/etcd-client.pem");
}

// The TLS files are read at start (EtcdStore::open): each error names the file and why.
TEST(Config, EtcdTlsFilesAreCheckedAtOpen) {
  auto tmp = std::filesystem::temp_directory_path() / ("edns-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  auto write = [&](const char* name, const char* text) {
    std::ofstream(tmp / name) << text;
    return (tmp / name).string();
  };
  std::string garbage = write("garbage.pem", "not a certificate\n");
  std::string missing = (tmp / "missing.pem").string();
  auto open = [](TlsFiles tls) {
    EtcdConfig c;
    c.endpoints = {"https://127.0.0.1:1"};
    c.tls = std::move(tls);
    auto store = EtcdStore::open(c);
    return store ? Error{} : store.error();
  };
  Error e = open({missing, "", ""});
  EXPECT_EQ(e.field, "etcd.tls.ca_file");
  EXPECT_NE(e.reason.find(missing + ": No such file"), std::string::npos) << e.reason;
  e = open({garbage, "", ""});
  EXPECT_EQ(e.field, "etcd.tls.ca_file");
  EXPECT_NE(e.reason.find("no PEM certificate"), std::string::npos) << e.reason;
  e = open({"", missing, missing});
  EXPECT_EQ(e.field, "etcd.tls.cert_file");
  e = open({"", garbage, garbage});
  EXPECT_EQ(e.field, "etcd.tls.cert_file");
  EXPECT_NE(e.reason.find("no PEM certificate"), std::string::npos) << e.reason;
  // The files are fine: the error is the unreachable endpoint, not TLS settings.
  e = open({});
  EXPECT_EQ(e.field, "etcd") << e.message();
  EXPECT_NE(e.reason.find("no endpoint answered"), std::string::npos) << e.reason;
  std::filesystem::remove_all(tmp);
}

// The examples in central/README.md are parsed here, so the docs cannot rot.
TEST(Config, ReadmeExampleParses) {
  auto examples = elasticdns::testing::readmeYamlBlocks("central/README.md", "<!-- central -->");
  ASSERT_EQ(examples.size(), 3u)
      << "central/README.md: the config, the etcd store's and the service.yml examples";
  auto c = parseConfig(examples[0]);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->listen, "0.0.0.0:8080");
  EXPECT_EQ(c->durability, Durability::kFull);
  EXPECT_EQ(c->max_watchers, 10000u);
  ASSERT_TRUE(c->containernet);
  EXPECT_EQ(c->containernet->cluster_cidr, "10.240.0.0/16");
  EXPECT_EQ(c->containernet->subnet_prefix, 24);
  // The replicas' example: store etcd with three members.
  auto e = parseConfig(examples[1]);
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->store, StoreKind::kEtcd);
  EXPECT_EQ(e->etcd.endpoints.size(), 3u);
  EXPECT_EQ(e->etcd.username, "central");
  EXPECT_TRUE(e->etcd.endpoints[0].starts_with("https://"));
  EXPECT_EQ(e->etcd.tls.ca_file, "/etc/elasticdns/etcd-ca.pem");
  EXPECT_EQ(e->etcd.tls.key_file, "/etc/elasticdns/etcd-client.key");
  // The service.yml example that follows it is a valid /v1/apply document.
  auto s = parseServiceYml(examples[2]);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_FALSE(s->empty());
}

TEST(WatchRegistry, NotifiesOnlyWatchersBehindAndBuildsOneBodyPerIndex) {
  WatchRegistry reg(3);
  auto now = WatchRegistry::Clock::now();
  int calls = 0, built = 0;
  auto body = [&](uint64_t since) {
    ++built;
    return std::make_shared<const std::string>(std::to_string(since));
  };
  ASSERT_TRUE(reg.add(5, now + std::chrono::seconds(10), [&](auto b) { calls += *b == "5"; }));
  ASSERT_TRUE(reg.add(5, now + std::chrono::seconds(10), [&](auto b) { calls += *b == "5"; }));
  ASSERT_TRUE(
      reg.add(7, now + std::chrono::seconds(1), [&](auto b) { calls += 10 * (*b == "7"); }));
  EXPECT_FALSE(reg.add(1, now, [](auto) {}));  // full
  EXPECT_EQ(reg.notify(6, body), 2u);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(built, 1);
  EXPECT_EQ(reg.size(), 1u);
  EXPECT_EQ(reg.expire(now, body), 0u);
  EXPECT_EQ(reg.expire(now + std::chrono::seconds(1), body), 1u);
  EXPECT_EQ(calls, 12);
  EXPECT_EQ(reg.size(), 0u);
  EXPECT_FALSE(reg.nextDeadline());
}
