#pragma once
// DNS messages for the tests and benchmarks, built and read with ldns (an independent codec, so
// the tests do not check the agent's wire code against itself).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

// After the C++ headers: ldns's headers can redefine `bool` for C.
#include <ldns/ldns.h>

namespace elasticdns::testing {

struct PktDeleter {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktDeleter>;

inline std::vector<uint8_t> toWire(const ldns_pkt* p) {
  uint8_t* buf = nullptr;
  size_t n = 0;
  if (ldns_pkt2wire(&buf, p, &n) != LDNS_STATUS_OK) throw std::runtime_error("ldns_pkt2wire");
  std::vector<uint8_t> out(buf, buf + n);
  free(buf);
  return out;
}

inline Pkt fromWire(std::span<const uint8_t> wire) {
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, wire.data(), wire.size()) != LDNS_STATUS_OK) return nullptr;
  return Pkt(p);
}

struct QueryOptions {
  uint16_t id = 4242;
  bool edns = false;
  bool dnssec_ok = false;
  uint16_t udp_size = 1232;
};

/// A query for `name` (presentation form, trailing dot optional), with RD set.
inline Pkt makeQueryPkt(const std::string& name, ldns_rr_type type, const QueryOptions& o = {}) {
  ldns_pkt* p = nullptr;
  if (ldns_pkt_query_new_frm_str(&p, name.c_str(), type, LDNS_RR_CLASS_IN, LDNS_RD) !=
      LDNS_STATUS_OK)
    throw std::runtime_error("bad query name " + name);
  ldns_pkt_set_id(p, o.id);
  if (o.edns) {
    ldns_pkt_set_edns_udp_size(p, o.udp_size);
    if (o.dnssec_ok) ldns_pkt_set_edns_do(p, true);
  }
  return Pkt(p);
}

inline std::vector<uint8_t> makeQuery(const std::string& name, ldns_rr_type type,
                                      const QueryOptions& o = {}) {
  return toWire(makeQueryPkt(name, type, o).get());
}

/// The rdata of the answer section's records, as text ("10.0.0.1", "0 0 3000 api.x.").
inline std::vector<std::string> answers(const ldns_pkt* p) {
  std::vector<std::string> out;
  ldns_rr_list* l = ldns_pkt_answer(p);
  for (size_t i = 0; i < ldns_rr_list_rr_count(l); ++i) {
    ldns_rr* rr = ldns_rr_list_rr(l, i);
    std::string s;
    for (size_t k = 0; k < ldns_rr_rd_count(rr); ++k) {
      char* t = ldns_rdf2str(ldns_rr_rdf(rr, k));
      if (!s.empty()) s += " ";
      s += t;
      free(t);
    }
    out.push_back(s);
  }
  return out;
}

/// An IPv4 socket address.
inline sockaddr_storage v4(const char* addr, uint16_t port = 5353) {
  sockaddr_storage ss{};
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  inet_pton(AF_INET, addr, &sin.sin_addr);
  std::memcpy(&ss, &sin, sizeof sin);
  return ss;
}

inline ldns_rr* rr(const std::string& text) {
  ldns_rr* r = nullptr;
  if (ldns_rr_new_frm_str(&r, text.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK)
    throw std::runtime_error("bad rr " + text);
  return r;
}

/// A reply to `query` (its ID, question and EDNS) with the given rcode and records.
inline std::vector<uint8_t> makeReply(std::span<const uint8_t> query, ldns_pkt_rcode rcode,
                                      std::initializer_list<std::string> answers,
                                      std::initializer_list<std::string> authority = {},
                                      bool truncated = false) {
  Pkt p = fromWire(query);
  if (!p) throw std::runtime_error("makeReply: bad query");
  ldns_pkt_set_qr(p.get(), true);
  ldns_pkt_set_ra(p.get(), true);
  ldns_pkt_set_tc(p.get(), truncated);
  ldns_pkt_set_rcode(p.get(), rcode);
  for (const auto& a : answers) ldns_pkt_push_rr(p.get(), LDNS_SECTION_ANSWER, rr(a));
  for (const auto& a : authority) ldns_pkt_push_rr(p.get(), LDNS_SECTION_AUTHORITY, rr(a));
  return toWire(p.get());
}

/// TTLs of a section's records, in order.
inline std::vector<uint32_t> ttls(std::span<const uint8_t> wire, ldns_pkt_section section) {
  Pkt p = fromWire(wire);
  std::vector<uint32_t> out;
  if (!p) return out;
  ldns_rr_list* list = ldns_pkt_get_section_clone(p.get(), section);
  for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i)
    out.push_back(ldns_rr_ttl(ldns_rr_list_rr(list, i)));
  ldns_rr_list_deep_free(list);
  return out;
}

inline uint16_t idOf(std::span<const uint8_t> wire) {
  return static_cast<uint16_t>(wire[0] << 8 | wire[1]);
}

}  // namespace elasticdns::testing
