// Per-server agent tokens: the file's parser, and their enforcement by central's real Router
// over a real TopologyState (SQLite in a temp dir): an agent token of server h1 writes h1's
// containers and nothing else; the admin token writes everything; the shared agent token reads.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "central/agent_tokens.hpp"
#include "central/router.hpp"

namespace elasticdns::central {
namespace {

const std::string kH1 = "h1-token-0123456789abcdef";
const std::string kH2 = "h2-token-0123456789abcdef";
const std::string kAdmin = "admin-token-0123456789abcdef";
const std::string kReader = "agent-token-0123456789abcdef";

TEST(AgentTokensFile, ParsesLinesAndComments) {
  auto t =
      AgentTokens::parse("# token server\n\n" + kH1 + " h1\n  " + kH2 + "\th2.example.com # x\n");
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->size(), 2u);
  ASSERT_NE(t->serverOf(kH1), nullptr);
  EXPECT_EQ(*t->serverOf(kH1), "h1");
  EXPECT_EQ(*t->serverOf(kH2), "h2.example.com");
  EXPECT_EQ(t->serverOf("h1-token-0123456789abcdeX"), nullptr);
  EXPECT_EQ(t->serverOf(""), nullptr);
  EXPECT_TRUE(AgentTokens::parse(""));
}

TEST(AgentTokensFile, RejectsBadLinesNamingThem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {kH1 + "\n", "line 2"},
      {"short h1\n", "line 2"},
      {kH1 + " Not_A_Name\n", "line 2"},
      {kH1 + " h1 extra\n", "line 2"},
      {kH1 + " h1\n" + kH1 + " h2\n", "line 3"}};
  for (const auto& [bad, line] : cases) {
    auto t = AgentTokens::parse("# ok\n" + bad);
    ASSERT_FALSE(t) << bad;
    EXPECT_NE(t.error().field.find(line), std::string::npos) << t.error().message();
  }
}

class ScopedWrites : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("edns-agent-tokens-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto store = SqliteStore::open(dir_.string(), Durability::kNormal, 100);
    ASSERT_TRUE(store) << store.error().message();
    auto state = TopologyState::load(std::move(store.value()), 100);
    ASSERT_TRUE(state) << state.error().message();
    state_ = std::move(state.value());
    Tokens tokens;
    tokens.admin = kAdmin;
    tokens.agent = kReader;
    tokens.servers = AgentTokens::parse(kH1 + " h1\n" + kH2 + " h2\n").value();
    router_ = std::make_unique<Router>(*state_, watchers_, tokens, registry_,
                                       [](std::function<void()> fn) { fn(); });
    ASSERT_EQ(call(kAdmin, "PUT", "/v1/containers/c2", container("h2", "10.0.0.2")), 200u);
  }
  void TearDown() override {
    router_.reset();
    state_.reset();
    std::filesystem::remove_all(dir_);
  }
  static std::string container(const std::string& server, const std::string& address) {
    return nlohmann::json{
        {"service", "api"}, {"version", "v1"}, {"server", server}, {"address", address}}
        .dump();
  }
  unsigned call(const std::string& token, const std::string& method, const std::string& target,
                const std::string& body = {}) {
    Request req{method, target, "Bearer " + token, body, {}};
    unsigned status = 0;
    router_->handle(req, [&](Response r) { status = r.status; });
    return status;
  }
  const model::Topology& topology() const { return state_->topology(); }

  std::filesystem::path dir_;
  std::unique_ptr<TopologyState> state_;
  WatchRegistry watchers_{10};
  metrics::Registry registry_;
  std::unique_ptr<Router> router_;
};

TEST_F(ScopedWrites, AgentTokenWritesItsOwnServersContainers) {
  EXPECT_EQ(call(kH1, "PUT", "/v1/containers/c1", container("h1", "10.0.0.1")), 200u);
  ASSERT_TRUE(topology().containers.count("c1"));
  EXPECT_EQ(call(kH1, "PUT", "/v1/containers/c1", container("h1", "10.0.0.11")), 200u);
  EXPECT_EQ(topology().containers.at("c1").address, "10.0.0.11");
  EXPECT_EQ(call(kH1, "DELETE", "/v1/containers/c1"), 200u);
  EXPECT_FALSE(topology().containers.count("c1"));
  EXPECT_EQ(call(kH1, "GET", "/v1/topology"), 200u);
}

TEST_F(ScopedWrites, AgentTokenCannotTouchAnotherServer) {
  uint64_t index = topology().index;
  EXPECT_EQ(call(kH1, "PUT", "/v1/containers/c3", container("h2", "10.0.0.3")), 403u);
  EXPECT_EQ(call(kH1, "PUT", "/v1/containers/c2", container("h1", "10.0.0.2")), 403u);  // steal
  EXPECT_EQ(call(kH1, "DELETE", "/v1/containers/c2"), 403u);
  EXPECT_EQ(call(kH1, "PUT", "/v1/services/api", R"({"name":"api"})"), 403u);
  EXPECT_EQ(call(kH1, "PUT", "/v1/servers/h1", R"({"address":"192.0.2.1"})"), 403u);
  EXPECT_EQ(call(kH1, "POST", "/v1/apply", "services:\n  api: {}\n"), 403u);
  EXPECT_EQ(topology().index, index);
  EXPECT_EQ(topology().containers.at("c2").server, "h2");
  EXPECT_EQ(call(kH2, "DELETE", "/v1/containers/c2"), 200u);
}

TEST_F(ScopedWrites, SharedAgentTokenReadsAdminWritesAll) {
  EXPECT_EQ(call(kReader, "GET", "/v1/topology"), 200u);
  EXPECT_EQ(call(kReader, "PUT", "/v1/containers/c1", container("h1", "10.0.0.1")), 401u);
  EXPECT_EQ(call("h1-token-0123456789abcdeX", "GET", "/v1/topology"), 401u);
  EXPECT_EQ(call(kAdmin, "PUT", "/v1/containers/c2", container("h1", "10.0.0.2")), 200u);
  EXPECT_EQ(call(kAdmin, "PUT", "/v1/servers/h1", R"({"address":"192.0.2.1"})"), 200u);
}

}  // namespace
}  // namespace elasticdns::central
