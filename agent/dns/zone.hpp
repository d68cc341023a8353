#pragma once
// The zone of one topology snapshot, precomputed in wire form when the snapshot arrives, and
// the query-path function that answers from it. Built with ldns (names and rdata), answered
// by copying bytes: no allocation, no lock (except the sticky table's tiny shard lock), no
// exception on the query path.
//
// Names (relative to `domain`, see agent/README.md "Answers"):
//   <domain>                      SOA and NS (the zone apex; the NS names the agent)
//   ns (ZoneConfig::ns_name)      A/AAAA of the agent itself (when the NS name is in the zone)
//   _explain.<service>            TXT: why this caller gets what it gets (for operators)
//   <service>                     A/AAAA of the service's containers, by the answer policy
//   <type>                        A/AAAA of the datasource type's primary group (else `default`)
//   <group>.<type>                A/AAAA of that datasource group
//   _<port>._tcp|_udp.<service>   SRV per `ports` entry: target <service>.<domain>, port = the
//   _http._tcp.<service>          container port; `_http`/`_https` when the entry publishes
//   _https._tcp.<service>         http/https
// A service and a datasource type of the same name: the service wins.
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/dns/sticky_table.hpp"
#include "agent/dns/wire.hpp"
#include "elasticdns/model.hpp"
#include "elasticdns/policy.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

struct ZoneConfig {
  std::string domain = "cloud66.local";  // lowercase, no trailing dot
  std::string server_name;               // this host's server in the topology (for `closest`)
  std::chrono::seconds ttl{5};
  std::chrono::seconds negative_ttl{5};
  std::chrono::seconds sticky_window{60};
  /// The apex NS record's target, the agent itself, also the SOA's MNAME: a lowercase absolute
  /// name without the trailing dot; empty = "ns.<domain>". When it is below `domain`, the zone
  /// answers its A/AAAA with `ns_addresses` (IPv4 and IPv6 text) and a name of the topology
  /// with the same name is shadowed.
  std::string ns_name;
  std::vector<std::string> ns_addresses;
};

/// One query to answer from the zone.
struct AnswerInput {
  const wire::Query* query = nullptr;
  std::span<const uint8_t> packet;  // the query's bytes (the question is copied from them)
  std::string_view container_id;    // from CallerIdentity; empty = not known
  const sockaddr_storage* source = nullptr;
  policy::TimePoint now;
  bool stale = false;                   // add Extended DNS Error 3 (when the client sent EDNS)
  size_t limit = wire::kMinUdpPayload;  // bytes; kMaxMessageSize over TCP
  uint32_t rotation = 0;                // any counter that changes from answer to answer
  StickyTable* sticky = nullptr;
};

struct AnswerOutcome {
  bool in_zone = false;  // false: not ours, forward it; nothing was written
  size_t length = 0;     // bytes written to `out`
  uint16_t rcode = 0;
  bool caller_checked = false;  // the answer depended on who asks
  bool caller_known = false;
  bool truncated = false;
};

class Zone {
 public:
  /// Build the zone of `topology`. Errors (an address ldns rejects, a name too long) name the
  /// record; the topology was validated before, so they are not expected.
  static Result<std::shared_ptr<const Zone>> build(const model::Topology& topology,
                                                   const ZoneConfig& config);

  /// Answer `in` into `out` (at least kMaxMessageSize bytes for TCP, kMaxUdpPayload for UDP).
  AnswerOutcome answer(const AnswerInput& in, std::span<uint8_t> out) const noexcept;
  /// Whether `name` (lowercase presentation form) is the zone apex or below it.
  bool contains(std::string_view name) const noexcept;
  uint64_t index() const { return index_; }
  size_t containerCount() const { return callers_.size(); }

  struct RecordList {  // RRs with owner = pointer to the question name, in one buffer
    std::vector<uint8_t> bytes;
    // Records of one size (A, AAAA: the owner is a pointer) need no offset table: one memory
    // access less per answer. `offsets` is filled only for records of varying size (SRV).
    uint32_t fixed_size = 0;  // 0: sizes vary, see offsets
    uint32_t n = 0;
    std::vector<uint32_t> offsets;
    size_t count() const { return n; }
    size_t offset(size_t i) const { return fixed_size ? i * fixed_size : offsets[i]; }
  };
  struct AddrSet {
    std::vector<uint64_t> members;  // hash of container id (or of the address, datasources)
    RecordList a, aaaa;
    std::vector<int32_t> a_of, aaaa_of;  // record index per member, -1 if none
  };
  struct VersionSet {
    AddrSet all;
    std::vector<uint32_t> servers;  // ids, parallel to by_server
    std::vector<AddrSet> by_server;
  };
  struct ServiceAnswers {
    bool versioned = true;
    model::LoadBalancing lb = model::LoadBalancing::kRoundRobin;
    uint64_t hash = 0;
    std::vector<uint64_t> generations;  // ascending, versions with a running container
    std::vector<VersionSet> versions;   // parallel
    // The first generations again, inline: a rolling deploy runs 1-3 versions, so the version
    // choice usually reads no memory beyond the entry itself.
    static constexpr size_t kInlineGenerations = 4;
    std::array<uint64_t, kInlineGenerations> inline_generations{};
    std::span<const uint64_t> generationSpan() const {
      if (generations.size() <= kInlineGenerations)
        return {inline_generations.data(), generations.size()};
      return generations;
    }
  };
  /// A whole answer to a query at the apex (NS, ANY): answer and additional sections, with
  /// compression pointers that hold because the question name always has the apex's length.
  struct ApexAnswer {
    std::vector<uint8_t> answer, additional;
    uint16_t ancount = 0, arcount = 0;
  };
  enum class Kind : uint8_t { kApex, kEmpty, kService, kFixed, kSrv };
  struct NameEntry {
    Kind kind = Kind::kEmpty;
    ServiceAnswers service;  // kService (inline: one memory access less per answer)
    AddrSet fixed;           // kFixed
    RecordList srv;          // kSrv
  };
  struct CallerInfo {
    uint64_t generation = 0;
    uint32_t server = 0;
    uint64_t key = 0;
    uint32_t index = 0xFFFFFFFF;  // into caller_names_ (known callers)
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct AddrKey {
    uint64_t hi = 0, lo = 0;
    bool operator==(const AddrKey&) const = default;
  };
  struct AddrKeyHash {
    size_t operator()(const AddrKey& k) const { return k.hi * 0x9E3779B97F4A7C15ull ^ k.lo; }
  };
  static AddrKey addrKeyOf(const sockaddr_storage& s) noexcept;

 private:
  friend class ZoneBuilder;  // zone.cpp: fills the tables of a new zone

  CallerInfo resolveCaller(const AnswerInput& in, bool& known) const noexcept;
  /// TXT answer to `_explain.<service>.<domain>`: who the caller is, the policy, the choice.
  AnswerOutcome explain(const AnswerInput& in, std::string_view service,
                        std::span<uint8_t> out) const noexcept;

  // For explanations only (never read on the answer path).
  std::vector<std::pair<std::string, std::string>> caller_names_;  // container id, version
  std::vector<std::string> server_names_;                          // by server id
  std::map<uint64_t, std::string> version_names_;                  // by generation

  uint64_t index_ = 0;
  std::string domain_;
  ZoneConfig config_;
  uint32_t own_server_ = 0;
  std::vector<uint8_t> soa_answer_;    // owner: pointer to the question
  std::vector<uint8_t> soa_negative_;  // owner: the apex, TTL negative_ttl
  ApexAnswer apex_ns_;                 // NS, the NS name's A/AAAA as additional data
  ApexAnswer apex_any_;                // SOA and NS, the same additional data
  // Names → entries: an open-addressing table (linear probing, power-of-two size, at most half
  // full) over a flat array, keyed by the relative name's hash. Replaced std::unordered_map,
  // whose lookup (two 64-bit divisions and a pointer chase per probe) was 14 % of the agent's
  // CPU in a perf profile of tests/bench/agent_peers.sh.
  struct Slot {
    uint64_t hash = 0;
    uint32_t entry = kNoEntry;
  };
  static constexpr uint32_t kNoEntry = 0xFFFFFFFF;
  const NameEntry* findName(std::string_view rel) const noexcept;
  std::vector<Slot> slots_;
  std::vector<std::pair<std::string, NameEntry>> entries_;
  std::vector<CallerInfo> callers_;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> callers_by_id_;
  std::unordered_map<AddrKey, uint32_t, AddrKeyHash> callers_by_addr_;  // ambiguous: absent
};

}  // namespace elasticdns::agent
