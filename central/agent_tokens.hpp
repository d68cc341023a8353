#pragma once
// Per-server agent tokens (--agent-tokens-file, central/README.md): each host's agent gets a
// token of its own that reads everything and writes only the containers of its own server
// (what Docker discovery registers) and its own server's ContainerNet wireguard. The shared
// agent token reads; the admin token writes everything.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "central/state.hpp"
#include "elasticdns/model.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::central {

constexpr size_t kMinAgentTokenLength = 16;  // bytes; the package generates 64 hex digits
constexpr size_t kMaxAgentTokens = 100'000;  // one per host

class AgentTokens {
 public:
  /// The file's text: one `TOKEN SERVER` per line; blank lines and `#` comments are ignored.
  /// Errors name the line: short tokens, bad server names, duplicate tokens.
  static Result<AgentTokens> parse(std::string_view text);

  /// The server a token writes for, or nullptr. Compares every entry in constant time.
  const std::string* serverOf(std::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;  // token, server
};

/// Whether a write by a token scoped to `server` is allowed: containers whose new record and
/// whose current record (in `current`) both name that server, and the put of that server's
/// own wireguard (WriteItem::wireguard_only with a value). nullopt = allowed.
std::optional<Error> checkServerScope(const WriteItem& item, const model::Topology& current,
                                      const std::string& server);

}  // namespace elasticdns::central
