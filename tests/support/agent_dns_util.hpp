#pragma once
// Helpers for the agent's unit tests: queries built and responses parsed by ldns (the
// project's wire library), so the codec under test is checked against an independent one.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <ldns/ldns.h>

namespace elasticdns::agent::testing {

struct PktDeleter {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktDeleter>;

/// A query for `name` (presentation form), with EDNS when `edns_size` != 0.
inline std::vector<uint8_t> makeQuery(const std::string& name, ldns_rr_type type,
                                      uint16_t edns_size = 0, uint16_t id = 4242) {
  ldns_rdf* dname = ldns_dname_new_frm_str(name.c_str());
  ldns_pkt* p = ldns_pkt_query_new(dname, type, LDNS_RR_CLASS_IN, LDNS_RD);
  ldns_pkt_set_id(p, id);
  if (edns_size) {
    ldns_pkt_set_edns_udp_size(p, edns_size);
    ldns_pkt_set_edns_data(p, nullptr);
    // ldns adds OPT when any EDNS field is set; force it with the udp size.
  }
  uint8_t* wire = nullptr;
  size_t len = 0;
  ldns_pkt2wire(&wire, p, &len);
  std::vector<uint8_t> out(wire, wire + len);
  free(wire);
  ldns_pkt_free(p);
  return out;
}

inline Pkt parse(const uint8_t* data, size_t len) {
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, data, len) != LDNS_STATUS_OK) return nullptr;
  return Pkt(p);
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

inline sockaddr_storage v4(const char* addr, uint16_t port = 5353) {
  sockaddr_storage ss{};
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  inet_pton(AF_INET, addr, &sin.sin_addr);
  std::memcpy(&ss, &sin, sizeof sin);
  return ss;
}

}  // namespace elasticdns::agent::testing
