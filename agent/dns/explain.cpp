// The TXT answer to `_explain.<service>.<domain>`: who the caller is, the service's policy and
// the choice it leads to, in a few character-strings (agent/README.md, "Answers"). For
// operators; it reads the zone's explanation tables, which the answer path never touches.
#include <cstdio>
#include <cstring>
#include <string>

#include <boost/endian/conversion.hpp>

#include "agent/dns/zone.hpp"
#include "agent/util/socket_address.hpp"

namespace elasticdns::agent {

using boost::endian::store_big_u16;
using boost::endian::store_big_u32;

AnswerOutcome Zone::explain(const AnswerInput& in, std::string_view service,
                            std::span<uint8_t> out) const noexcept {
  AnswerOutcome r;
  const NameEntry* e = findName(service);
  if (e == nullptr || e->kind != Kind::kService) return r;  // answered as an ordinary name
  const wire::Query& q = *in.query;
  const ServiceAnswers& sa = e->service;
  bool known = false;
  CallerInfo c = resolveCaller(in, known);
  AddressTextBuffer source_text;
  const char* src = addressText(*in.source, source_text);
  auto versionName = [&](uint64_t g) -> const char* {
    auto it = version_names_.find(g);
    return it == version_names_.end() ? "-" : it->second.c_str();
  };
  const char* server = c.server < server_names_.size() ? server_names_[c.server].c_str() : "-";
  // Up to 5 character-strings of at most 255 bytes each (RFC 1035 3.3.14).
  char lines[5][256];
  int n = 0;
  if (known)
    std::snprintf(lines[n++], 256, "caller=%s version=%s server=%s source=%s",
                  caller_names_[c.index].first.c_str(), caller_names_[c.index].second.c_str(),
                  server, src);
  else
    std::snprintf(lines[n++], 256, "caller=unknown source=%s server=%s (this host)", src, server);
  std::snprintf(lines[n++], 256, "policy=%s load_balancing=%s",
                sa.versioned ? "versioned" : "non-versioned",
                std::string(model::toString(sa.lb)).c_str());
  if (sa.versions.empty()) {
    std::snprintf(lines[n++], 256, "answer=none (no running container)");
  } else {
    auto gens = sa.generationSpan();
    size_t v = policy::chooseVersion(gens, c.generation, sa.versioned);
    const char* why = !sa.versioned             ? "latest (non-versioned)"
                      : c.generation == 0       ? "latest (unknown caller)"
                      : gens[v] == c.generation ? "own version"
                      : gens[v] < c.generation  ? "newest older version"
                                                : "latest (every version is newer)";
    const VersionSet& vs = sa.versions[v];
    std::snprintf(lines[n++], 256, "version=%s (%s) containers=%zu", versionName(gens[v]), why,
                  vs.all.members.size());
    if (sa.lb == model::LoadBalancing::kClosest) {
      auto i = policy::chooseClosest(vs.servers, c.server);
      std::snprintf(lines[n++], 256, "closest=%s",
                    i ? "containers on the caller's server" : "all (none on the caller's server)");
    } else if (sa.lb == model::LoadBalancing::kSticky && in.sticky != nullptr) {
      auto pin = in.sticky->find(c.key * 0x9E3779B97F4A7C15ull ^ sa.hash);
      long left =
          pin ? static_cast<long>(
                    std::chrono::duration_cast<std::chrono::seconds>(pin->expires - in.now).count())
              : 0;
      std::snprintf(lines[n++], 256, "pin=%s", pin && left > 0 ? "held" : "none");
      if (pin && left > 0) std::snprintf(lines[n - 1], 256, "pin=held for %lds more", left);
    }
  }
  size_t rdlen = 0;
  for (int i = 0; i < n; ++i) rdlen += 1 + std::strlen(lines[i]);
  const size_t rr = 2 + 10 + rdlen;
  const bool opt = q.has_edns;
  size_t total = wire::kHeaderSize + (q.question_end - wire::kHeaderSize) + rr +
                 (opt ? wire::optSize(false) : 0);
  bool tc = total > in.limit || total > out.size();
  r.in_zone = true;
  uint16_t flags = wire::responseFlags(q, true, wire::kNoError);
  if (tc) flags |= wire::kFlagTc;
  size_t len = wire::writeHeaderAndQuestion(q, in.packet, flags, tc ? 0 : 1, 0, opt ? 1 : 0, out);
  if (len == 0) return r;
  uint8_t* o = out.data() + len;
  if (!tc) {
    std::memcpy(o, wire::kPointerToQuestion, 2);
    store_big_u16(o + 2, wire::kTypeTxt);
    store_big_u16(o + 4, wire::kClassIn);
    store_big_u32(o + 6, 0);  // never cache an explanation
    store_big_u16(o + 10, static_cast<uint16_t>(rdlen));
    o += 12;
    for (int i = 0; i < n; ++i) {
      size_t l = std::strlen(lines[i]);
      *o++ = static_cast<uint8_t>(l);
      std::memcpy(o, lines[i], l);
      o += l;
    }
  }
  if (opt) {
    wire::writeOpt(o, static_cast<uint16_t>(wire::kMaxUdpPayload), 0, q.edns_do, false, 0);
    o += wire::optSize(false);
  }
  r.truncated = tc;
  r.length = static_cast<size_t>(o - out.data());
  return r;
}

}  // namespace elasticdns::agent
