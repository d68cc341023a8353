#pragma once
// The agent's one DNS wire codec. For the query path: a bounds-checked parser of a query
// (header, one question, the OPT record) and writers of response headers and error responses.
// For the forward path: the question and the records of any message (an upstream's reply).
// Every offset is checked against the message size before it is read; no struct is ever cast
// over packet bytes; 16- and 32-bit fields are read and written with Boost.Endian.
//
// Why a hand parser and not ldns_wire2pkt: tests/bench/agent_parse_bench.cpp measures both on
// the same queries. On this machine kind ldns_wire2pkt + ldns_pkt_free costs ~1.0 µs a query
// (it allocates the packet, the rr list and every rdf), the hand parser ~0.1 µs, against a
// budget of ~4.4 µs a query in total at the per-core ceiling of the packet path: ldns alone would
// cost a fifth of the throughput. ldns stays the library that builds the answers
// (agent/dns/zone.cpp) and that the tests use to check them.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace elasticdns::agent::wire {

constexpr size_t kHeaderSize = 12;  // RFC 1035 4.1.1
/// A compression pointer to the question name, which always starts right after the header
/// (RFC 1035 4.1.4): the owner of every answer record about the question.
constexpr uint8_t kPointerToQuestion[2] = {0xC0, kHeaderSize};
constexpr size_t kMaxNameWireLength = 255;    // RFC 1035 2.3.4
constexpr size_t kMaxLabelLength = 63;        // RFC 1035 2.3.4
constexpr size_t kMinUdpPayload = 512;        // RFC 1035 2.3.4
constexpr size_t kMaxUdpPayload = 1232;       // DNS Flag Day 2020
constexpr size_t kMaxMessageSize = 65535;     // TCP length prefix, RFC 1035 4.2.2
constexpr size_t kMaxAdditionalRecords = 16;  // more in a query is hostile; FORMERR
constexpr size_t kFixedRrSize = 10;           // type, class, ttl, rdlength (RFC 1035 4.1.3)
// Compression pointers followed while reading one name. Pointers only go backwards, so there
// is no loop to fear; the bound caps the work. A name has at most 127 labels (255 bytes, each
// label at least 2), and a compressor writes a pointer only after at least one label, so a
// legitimate name never needs more pointers than it has labels.
constexpr size_t kMaxPointerHops = 127;
constexpr uint16_t kClassIn = 1;
constexpr uint16_t kClassAny = 255;
constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeNs = 2;
constexpr uint16_t kTypeSoa = 6;
constexpr uint16_t kTypeTxt = 16;
constexpr uint16_t kTypeAaaa = 28;
constexpr uint16_t kTypeSrv = 33;
constexpr uint16_t kTypeOpt = 41;
constexpr uint16_t kTypeIxfr = 251;
constexpr uint16_t kTypeAxfr = 252;
constexpr uint16_t kTypeAny = 255;
constexpr uint16_t kEdnsOptionEde = 15;  // RFC 8914
constexpr uint16_t kEdeStaleAnswer = 3;  // RFC 8914 4.4

enum Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
};
constexpr uint16_t kRcodeBadVers = 16;  // RFC 6891 9: extended rcode 1, header rcode 0

// Header flag bits (second 16-bit word).
constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kOpcodeMask = 0x7800;
constexpr uint16_t kFlagAa = 0x0400;
constexpr uint16_t kFlagTc = 0x0200;
constexpr uint16_t kFlagRd = 0x0100;
constexpr uint16_t kFlagRa = 0x0080;
constexpr uint16_t kFlagCd = 0x0010;

/// A parsed query. `name` is the question name in lowercase presentation form without the
/// trailing dot ("api.cloud66.local"; "" for the root). A byte of a label that is a '.' is
/// stored as '\x01' so that dots always separate labels. Nothing here points into the packet.
struct Query {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint8_t opcode = 0;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  size_t question_end = 0;  // offset of the first byte after the question
  char name[kMaxNameWireLength + 1] = {};
  size_t name_len = 0;
  bool has_edns = false;
  uint16_t edns_udp_size = 0;  // as sent by the client
  uint8_t edns_version = 0;
  bool edns_do = false;
  std::string_view nameView() const { return {name, name_len}; }
};

enum class ParseStatus : uint8_t {
  kOk,
  kDrop,     // not worth an answer: shorter than a header, or a response (QR set)
  kFormErr,  // header readable, the rest malformed: answer FORMERR
  kNotImp,   // opcode other than QUERY: answer NOTIMP
};

/// Parse a query. Never reads outside `packet`. On kFormErr/kNotImp, `q.id`, `q.flags` and
/// `q.opcode` are set, `q.question_end` is non-zero if the question itself was readable (one
/// question), and `q.has_edns` (with the EDNS fields) if a valid OPT record was found before
/// whatever was wrong, so that the error reply can echo both (RFC 6891 7). An OPT that is not
/// valid (not owned by the root, a second one, options overrunning its rdata) is FORMERR and
/// leaves `has_edns` false.
ParseStatus parseQuery(std::span<const uint8_t> packet, Query& q) noexcept;

/// The question of a message as the forward path compares and keys it.
struct Question {
  std::string name;  // uncompressed wire form, lowercased (ASCII), root label included
  uint16_t type = 0;
  uint16_t qclass = 0;
  size_t end = 0;  // offset just after the question
};

/// The question of a query that parseQuery() accepted, taken from the packet without parsing
/// it again (the query's question name is never compressed).
Question questionOf(const Query& q, std::span<const uint8_t> packet);

/// Parses the header and the first question (qdcount must be 1) of any message, a reply
/// included. nullopt when malformed.
std::optional<Question> parseQuestion(std::span<const uint8_t> msg);

/// One resource record as found in a message (offsets into it).
struct Record {
  int section = 0;  // 1 answer, 2 authority, 3 additional
  uint16_t type = 0;
  uint16_t rrclass = 0;
  uint32_t ttl = 0;
  size_t ttl_offset = 0;
  size_t rdata_offset = 0;
  uint16_t rdlength = 0;
};

/// Walks every record after the question, calling `fn` for each; stops early when `fn` returns
/// false. Returns false when the message is malformed (a record runs past the end).
bool forEachRecord(std::span<const uint8_t> msg, const Question& q,
                   const std::function<bool(const Record&)>& fn);

/// Response flags for a query: QR, the query's opcode, RD and CD echoed, RA, `aa`, rcode.
uint16_t responseFlags(const Query& q, bool aa, uint8_t rcode);

/// Write the header and, when `q.question_end` is set, the question copied from `query` (so the
/// client's case is echoed). Returns the bytes written, 0 if `out` is too small.
size_t writeHeaderAndQuestion(const Query& q, std::span<const uint8_t> query, uint16_t flags,
                              uint16_t ancount, uint16_t nscount, uint16_t arcount,
                              std::span<uint8_t> out) noexcept;

/// Size of the OPT record writeOpt() writes.
constexpr size_t optSize(bool ede) {
  return 11 + (ede ? 6 : 0);
}
/// Write an OPT record advertising `udp_size`, with extended rcode `ext_rcode` (upper 8 bits),
/// the DO bit as `dnssec_ok` (the query's, RFC 3225 3) and, if `ede`, an Extended DNS Error
/// option with `ede_code`. `out` must hold optSize(ede).
void writeOpt(uint8_t* out, uint16_t udp_size, uint8_t ext_rcode, bool dnssec_ok, bool ede,
              uint16_t ede_code);

/// A complete error response (FORMERR, NOTIMP, REFUSED, SERVFAIL, BADVERS): header, question
/// if readable, OPT (with the query's DO bit) if the client sent a valid one (RFC 6891 7).
/// Returns the length, 0 if `out` is too small.
size_t writeErrorResponse(const Query& q, std::span<const uint8_t> query, uint16_t rcode,
                          std::span<uint8_t> out) noexcept;

/// The UDP payload limit for an answer to `q`: 512 without EDNS, else the client's size
/// clamped to [512, kMaxUdpPayload].
size_t udpLimit(const Query& q);

}  // namespace elasticdns::agent::wire
