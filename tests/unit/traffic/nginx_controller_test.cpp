// The controller's validate-then-swap and reload rules, with a stand-in for nginx (a shell
// script that rejects candidates naming "bad.example") and SIGHUP sent to this process (its PID
// in the pid file). The real nginx: tests/integration/dc/traffic_test.py.
#include "agent/traffic/nginx_controller.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "support/metrics_util.hpp"
#include "support/temp_dir.hpp"
#include "support/topology_util.hpp"

namespace elasticdns::agent {
namespace {

namespace fs = std::filesystem;

std::atomic<int> g_hangups{0};
void onHangup(int) {
  g_hangups.fetch_add(1);
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class NginxControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct sigaction sa {};
    sa.sa_handler = onHangup;
    sigaction(SIGHUP, &sa, &old_);
    g_hangups = 0;
    fs::path fake = dir_.path() / "fake-nginx";
    std::ofstream(fake)
        << "#!/bin/sh\n"
           "# fake-nginx -t -q -e stderr -c FILE\n"
           "d=$(dirname \"$6\")\n"
           "if [ -e \"$6.reject\" ]; then echo 'nginx: [emerg] clash' >&2; exit 1; fi\n"
           "if grep -q bad.example \"$d/candidate-http.conf\"; then\n"
           "  echo 'nginx: [emerg] bad.example is bad' >&2; exit 1\n"
           "fi\n";
    chmod(fake.c_str(), 0755);
    std::ofstream(dir_.path() / "nginx.pid") << getpid() << "\n";
    settings_.config.enabled = true;
    settings_.config.nginx = fake.string();
    settings_.config.http_file = (dir_.path() / "live-http.conf").string();
    settings_.config.stream_file = (dir_.path() / "live-stream.conf").string();
    settings_.config.reload = NginxReload::kSignal;
    settings_.config.pid_file = (dir_.path() / "nginx.pid").string();
    settings_.config.cert_dir = (dir_.path() / "certs").string();
    settings_.config.main_conf = (dir_.path() / "nginx.conf").string();
    settings_.domain = "cloud66.local";
    settings_.resolver = "127.0.0.1:53";
    settings_.work_dir = dir_.path() / "work";
  }
  void TearDown() override { sigaction(SIGHUP, &old_, nullptr); }

  static model::Topology topology(const std::string& match) {
    model::Topology t;
    t.index = 1;
    model::Service s;
    s.name = "web";
    s.ports.push_back({3000, 80, 0, 0, 0});
    s.traffic_matches = {match};
    t.services["web"] = s;
    return t;
  }

  testing::TempDir dir_;
  TrafficSettings settings_;
  metrics::Registry registry_;
  struct sigaction old_ {};
};

TEST_F(NginxControllerTest, InstallsReloadsOnlyOnChangeAndKeepsTheLastGoodOnRejection) {
  NginxController c(settings_, registry_);
  auto t = topology("a.example");
  EXPECT_EQ(c.apply(t), TrafficOutcome::kInstalled);
  EXPECT_EQ(g_hangups.load(), 1);
  std::string good = readFile(settings_.config.http_file);
  EXPECT_NE(good.find("\"a.example\""), std::string::npos);

  // Container churn: same text, no reload.
  t.versions["v1"] = 1;
  for (int i = 1; i <= 20; ++i) t.containers["c" + std::to_string(i)] = testing::sampleContainer(i);
  t.index = 2;
  EXPECT_EQ(c.apply(t), TrafficOutcome::kUnchanged);
  EXPECT_EQ(g_hangups.load(), 1);

  // A candidate nginx rejects: live file unchanged, candidate kept, counted and logged once.
  auto bad = topology("bad.example");
  EXPECT_EQ(c.apply(bad), TrafficOutcome::kRejected);
  EXPECT_EQ(c.apply(bad), TrafficOutcome::kRejected);
  EXPECT_EQ(readFile(settings_.config.http_file), good);
  EXPECT_NE(readFile(settings_.work_dir / "failed-http.conf").find("bad.example"),
            std::string::npos);
  EXPECT_EQ(g_hangups.load(), 1);
  EXPECT_EQ(
      testing::metric(registry_, "elasticdns_traffic_reload_failures_total{reason=\"invalid\"}"),
      1);
  EXPECT_EQ(testing::metric(registry_, "elasticdns_traffic_config_current"), 0);

  // A good change again.
  EXPECT_EQ(c.apply(topology("b.example")), TrafficOutcome::kInstalled);
  EXPECT_EQ(g_hangups.load(), 2);
  EXPECT_EQ(testing::metric(registry_, "elasticdns_traffic_reloads_total"), 2);
  EXPECT_EQ(testing::metric(registry_, "elasticdns_traffic_last_good_generation"), 2);
  EXPECT_EQ(testing::metric(registry_, "elasticdns_traffic_renders_total"), 5);
  EXPECT_EQ(testing::metric(registry_, "elasticdns_traffic_config_current"), 1);
}

TEST_F(NginxControllerTest, AMainConfigThatFailsWithTheNewFilesGetsTheLastGoodOnesBack) {
  NginxController c(settings_, registry_);
  EXPECT_EQ(c.apply(topology("a.example")), TrafficOutcome::kInstalled);
  std::string good = readFile(settings_.config.http_file);
  std::ofstream(settings_.config.main_conf + ".reject") << "";
  EXPECT_EQ(c.apply(topology("b.example")), TrafficOutcome::kRejected);
  EXPECT_EQ(readFile(settings_.config.http_file), good);
  EXPECT_NE(readFile(settings_.work_dir / "failed-http.conf").find("b.example"), std::string::npos);
  EXPECT_EQ(g_hangups.load(), 1);
  fs::remove(settings_.config.main_conf + ".reject");
  EXPECT_EQ(c.apply(topology("c.example")), TrafficOutcome::kInstalled);
  EXPECT_EQ(g_hangups.load(), 2);
}

TEST_F(NginxControllerTest, ARestartedAgentWithTheSameRenderingDoesNotReload) {
  {
    NginxController c(settings_, registry_);
    EXPECT_EQ(c.apply(topology("a.example")), TrafficOutcome::kInstalled);
  }
  metrics::Registry fresh;
  NginxController c(settings_, fresh);
  EXPECT_EQ(c.apply(topology("a.example")), TrafficOutcome::kUnchanged);
  EXPECT_EQ(g_hangups.load(), 1);
}

TEST_F(NginxControllerTest, AFailedReloadIsRetriedOnTheNextUpdate) {
  fs::remove(settings_.config.pid_file);
  NginxController c(settings_, registry_);
  EXPECT_EQ(c.apply(topology("a.example")), TrafficOutcome::kReloadFailed);
  EXPECT_EQ(
      testing::metric(registry_, "elasticdns_traffic_reload_failures_total{reason=\"reload\"}"), 1);
  std::ofstream(settings_.config.pid_file) << getpid() << "\n";
  EXPECT_EQ(c.apply(topology("a.example")), TrafficOutcome::kInstalled);
  EXPECT_EQ(g_hangups.load(), 1);
}

TEST_F(NginxControllerTest, TheThreadAppliesTheLatestUpdate) {
  NginxController c(settings_, registry_);
  c.start();
  c.update(std::make_shared<model::Topology>(topology("a.example")));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (g_hangups.load() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  c.stop();
  EXPECT_EQ(g_hangups.load(), 1);
}

TEST_F(NginxControllerTest, RecheckTriesARejectedCandidateAgain) {
  NginxController c(settings_, registry_);
  c.start();
  const std::string invalid = "elasticdns_traffic_reload_failures_total{reason=\"invalid\"}";
  auto waitFor = [&](double n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (testing::metric(registry_, invalid) < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return testing::metric(registry_, invalid);
  };
  c.update(std::make_shared<model::Topology>(topology("bad.example")));
  EXPECT_EQ(waitFor(1), 1);
  c.recheck();
  EXPECT_EQ(waitFor(2), 2);
  c.stop();
  EXPECT_EQ(g_hangups.load(), 0);
}

}  // namespace
}  // namespace elasticdns::agent
