#pragma once
// A real central over a real SQLite file in a temp dir, with ContainerNet leases and per-server
// tokens for h1 and h2, called through its Router without sockets. reopen() is a restart: the
// store is closed and opened again (with the same or other containernet settings).
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "central/router.hpp"
#include "support/temp_dir.hpp"

namespace elasticdns::central::testing {

inline const std::string kAdmin = "admin-token-0123456789abcdef";
inline const std::string kReader = "agent-token-0123456789abcdef";
inline const std::string kH1 = "h1-token-0123456789abcdef";
inline const std::string kH2 = "h2-token-0123456789abcdef";
inline const std::string kH3 = "h3-token-0123456789abcdef";

struct Reply {
  unsigned status = 0;
  nlohmann::json body;
};

class ContainerNetCentral : public ::testing::Test {
 protected:
  /// Opens (or reopens) the store; nullopt ipam: ContainerNet off. Returns the load error.
  std::optional<Error> reopen(std::optional<Ipam> ipam) {
    router_.reset();
    state_.reset();
    auto store = SqliteStore::open(dir_.path().string(), Durability::kNormal, 1000);
    if (!store) return store.error();
    auto state = TopologyState::load(std::move(store.value()), 1000, std::move(ipam));
    if (!state) return state.error();
    state_ = std::move(state.value());
    Tokens tokens;
    tokens.admin = kAdmin;
    tokens.agent = kReader;
    tokens.servers = AgentTokens::parse(kH1 + " h1\n" + kH2 + " h2\n" + kH3 + " h3\n").value();
    registry_ = std::make_unique<metrics::Registry>();
    router_ = std::make_unique<Router>(*state_, watchers_, tokens, *registry_,
                                       [](std::function<void()> fn) { fn(); });
    return std::nullopt;
  }
  static Ipam ipam(const char* cidr, int prefix) { return Ipam::create(cidr, prefix).value(); }

  Reply call(const std::string& method, const std::string& target, const std::string& body = {},
             const std::string& token = kAdmin) {
    Reply out;
    router_->handle({method, target, "Bearer " + token, body, {}}, [&](Response r) {
      out.status = r.status;
      if (r.body) out.body = nlohmann::json::parse(*r.body, nullptr, false);
    });
    return out;
  }
  Reply putServer(const std::string& name, const std::string& address = "192.0.2.1") {
    return call("PUT", "/v1/servers/" + name, nlohmann::json{{"address", address}}.dump());
  }
  std::string subnetOf(const std::string& name) const {
    auto it = state_->topology().servers.find(name);
    return it == state_->topology().servers.end() ? "(absent)" : it->second.subnet;
  }
  const model::Topology& topology() const { return state_->topology(); }

  elasticdns::testing::TempDir dir_;
  std::unique_ptr<TopologyState> state_;
  WatchRegistry watchers_{16};
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<Router> router_;
};

}  // namespace elasticdns::central::testing
