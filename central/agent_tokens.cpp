#include "central/agent_tokens.hpp"

#include <set>

#include "elasticdns/validate.hpp"

namespace elasticdns::central {

namespace {

bool sameToken(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

}  // namespace

Result<AgentTokens> AgentTokens::parse(std::string_view text) {
  AgentTokens out;
  std::set<std::string> seen;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string_view> words;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && isSpace(line[i])) ++i;
      size_t start = i;
      while (i < line.size() && !isSpace(line[i])) ++i;
      if (i > start) words.push_back(line.substr(start, i - start));
    }
    if (words.empty()) continue;
    std::string where = "agent_tokens/line " + std::to_string(line_no);
    if (words.size() != 2) return Error{where, "expected `TOKEN SERVER`"};
    if (words[0].size() < kMinAgentTokenLength)
      return Error{where, "token shorter than " + std::to_string(kMinAgentTokenLength)};
    if (!validate::isDnsName(words[1])) return Error{where, "server is not a lowercase DNS name"};
    if (!seen.insert(std::string(words[0])).second) return Error{where, "duplicate token"};
    if (out.entries_.size() == kMaxAgentTokens) return Error{where, "too many tokens"};
    out.entries_.emplace_back(std::string(words[0]), std::string(words[1]));
  }
  return out;
}

const std::string* AgentTokens::serverOf(std::string_view token) const {
  const std::string* found = nullptr;
  for (const auto& [t, server] : entries_)
    if (sameToken(token, t) && !found) found = &server;
  return found;
}

std::optional<Error> checkServerScope(const WriteItem& item, const model::Topology& current,
                                      const std::string& server) {
  if (item.kind == protocol::RecordKind::kServer && item.wireguard_only) {
    const auto* s = item.record ? std::get_if<model::Server>(&*item.record) : nullptr;
    if (item.key != server)
      return Error{"token", "an agent token of server " + server +
                                " writes only its own server's wireguard, not " + item.key + "'s"};
    if (!s || !s->wireguard)
      return Error{"token", "only the admin token removes a server's wireguard"};
    return std::nullopt;
  }
  if (item.kind != protocol::RecordKind::kContainer)
    return Error{"token", "an agent token of server " + server +
                              " writes only containers and its own wireguard"};
  const auto* c = item.record ? std::get_if<model::Container>(&*item.record) : nullptr;
  if (c && c->server != server)
    return Error{"server",
                 "an agent token of server " + server + " writes only its own containers"};
  if (auto it = current.containers.find(item.key);
      it != current.containers.end() && it->second.server != server)
    return Error{"id", "container " + item.key + " belongs to server " + it->second.server};
  return std::nullopt;
}

}  // namespace elasticdns::central
