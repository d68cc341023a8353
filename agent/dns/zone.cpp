#include "agent/dns/zone.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

// spdlog (fmt) first: ldns defines `true` and `false` as macros, which break fmt's templates.
#include <spdlog/spdlog.h>

#include <ldns/ldns.h>
#include <boost/endian/conversion.hpp>

#include "agent/util/socket_address.hpp"

namespace elasticdns::agent {
namespace {

using boost::endian::store_big_u16;
using boost::endian::store_big_u32;

constexpr uint32_t kNoServer = 0xFFFFFFFF;
constexpr size_t kTtlOffsetInRecord = 6;  // after owner pointer, type, class
constexpr uint32_t kSoaRefresh = 3600, kSoaRetry = 600, kSoaExpire = 86400;

/// Hash of a name for the name table: 8 bytes at a time, multiply-xorshift mixing.
uint64_t nameHash(std::string_view s) noexcept {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  uint64_t w = 0;
  if (i < s.size()) std::memcpy(&w, s.data() + i, s.size() - i);  // data() may be null if empty
  h = (h ^ w) * 0x94D049BB133111EBull;
  return h ^ (h >> 29);
}

uint64_t hashOf(std::string_view s) {
  // FNV-1a 64: stable across runs, so pins mean the same container after a snapshot swap.
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

/// The rdata of an address, parsed by ldns. Empty when ldns rejects it.
std::vector<uint8_t> addressRdata(const std::string& text, bool v6) {
  ldns_rdf* rdf = nullptr;
  ldns_status st = v6 ? ldns_str2rdf_aaaa(&rdf, text.c_str()) : ldns_str2rdf_a(&rdf, text.c_str());
  if (st != LDNS_STATUS_OK || rdf == nullptr) return {};
  std::vector<uint8_t> out(ldns_rdf_data(rdf), ldns_rdf_data(rdf) + ldns_rdf_size(rdf));
  ldns_rdf_deep_free(rdf);
  return out;
}

/// A domain name in wire form (uncompressed), through ldns. Empty when ldns rejects it.
std::vector<uint8_t> nameWire(const std::string& name) {
  ldns_rdf* rdf = nullptr;
  std::string fqdn = name + ".";
  if (ldns_str2rdf_dname(&rdf, fqdn.c_str()) != LDNS_STATUS_OK || rdf == nullptr) return {};
  std::vector<uint8_t> out(ldns_rdf_data(rdf), ldns_rdf_data(rdf) + ldns_rdf_size(rdf));
  ldns_rdf_deep_free(rdf);
  return out;
}

void appendRecord(Zone::RecordList& list, std::span<const uint8_t> owner, uint16_t type,
                  uint32_t ttl, std::span<const uint8_t> rdata) {
  const size_t size = owner.size() + 10 + rdata.size();
  if (list.n == 0) list.fixed_size = static_cast<uint32_t>(size);
  if (list.fixed_size != size && list.fixed_size != 0) {  // sizes vary from now on
    for (uint32_t i = 0; i < list.n; ++i) list.offsets.push_back(i * list.fixed_size);
    list.fixed_size = 0;
  }
  if (list.fixed_size == 0) list.offsets.push_back(static_cast<uint32_t>(list.bytes.size()));
  ++list.n;
  auto& b = list.bytes;
  b.insert(b.end(), owner.begin(), owner.end());
  size_t at = b.size();
  b.resize(at + 10);
  store_big_u16(&b[at], type);
  store_big_u16(&b[at + 2], wire::kClassIn);
  store_big_u32(&b[at + 4], ttl);
  store_big_u16(&b[at + 8], static_cast<uint16_t>(rdata.size()));
  b.insert(b.end(), rdata.begin(), rdata.end());
}

struct AddrMember {
  uint64_t key;
  std::vector<uint8_t> v4, v6;  // rdata
};

Zone::AddrSet makeAddrSet(const std::vector<AddrMember>& members, uint32_t ttl) {
  Zone::AddrSet s;
  for (const auto& m : members) {
    s.members.push_back(m.key);
    if (!m.v4.empty()) {
      s.a_of.push_back(static_cast<int32_t>(s.a.count()));
      appendRecord(s.a, wire::kPointerToQuestion, wire::kTypeA, ttl, m.v4);
    } else {
      s.a_of.push_back(-1);
    }
    if (!m.v6.empty()) {
      s.aaaa_of.push_back(static_cast<int32_t>(s.aaaa.count()));
      appendRecord(s.aaaa, wire::kPointerToQuestion, wire::kTypeAaaa, ttl, m.v6);
    } else {
      s.aaaa_of.push_back(-1);
    }
  }
  return s;
}

}  // namespace

Zone::AddrKey Zone::addrKeyOf(const sockaddr_storage& s) noexcept {
  AddrKey k;
  uint8_t b[16] = {};
  if (s.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &s, sizeof sin);
    b[10] = b[11] = 0xFF;  // v4-mapped, so a v4 caller on a v6 socket is the same key
    std::memcpy(b + 12, &sin.sin_addr, 4);
  } else if (s.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &s, sizeof sin6);
    std::memcpy(b, &sin6.sin6_addr, 16);
  }
  std::memcpy(&k.hi, b, 8);
  std::memcpy(&k.lo, b + 8, 8);
  return k;
}

/// Builds one Zone from a topology, a step per part of the zone: the SOA, the callers, the
/// services with their SRV names, the datasources, then the name table.
class ZoneBuilder {
 public:
  ZoneBuilder(const model::Topology& t, const ZoneConfig& cfg)
      : t_(t),
        cfg_(cfg),
        ttl_(static_cast<uint32_t>(cfg.ttl.count())),
        negative_ttl_(static_cast<uint32_t>(cfg.negative_ttl.count())),
        z_(std::make_shared<Zone>()) {}

  Result<std::shared_ptr<const Zone>> build() {
    z_->index_ = t_.index;
    z_->domain_ = cfg_.domain;
    z_->config_ = cfg_;
    if (auto e = addApex()) return *e;
    // Servers get small ids; containers may name a server with no record of its own.
    for (const auto& [name, s] : t_.servers) serverId(name);
    z_->own_server_ = cfg_.server_name.empty() ? kNoServer : serverId(cfg_.server_name);
    if (auto e = addCallers()) return *e;
    Zone::NameEntry apex;
    apex.kind = Zone::Kind::kApex;
    names_.emplace("", std::move(apex));
    if (auto e = addServices()) return *e;
    if (auto e = addDatasources()) return *e;
    addNsHost();
    fillNameTable();
    return std::shared_ptr<const Zone>(std::move(z_));
  }

 private:
  // The apex: the SOA (MNAME = the NS name, serial = the snapshot index mod 2^32, minimum =
  // the negative TTL), the NS record naming the agent, and the answers to NS and ANY with the NS
  // name's addresses as additional data (when it is in the zone: glue the resolver needs).
  std::optional<Error> addApex() {
    std::vector<uint8_t> apex = nameWire(cfg_.domain);
    std::vector<uint8_t> hostmaster = nameWire("hostmaster." + cfg_.domain);
    if (apex.empty() || hostmaster.empty()) return Error{"domain", "not a valid DNS name"};
    const std::string ns_name = cfg_.ns_name.empty() ? "ns." + cfg_.domain : cfg_.ns_name;
    std::vector<uint8_t> ns = nameWire(ns_name);
    if (ns.empty()) return Error{"nameserver/name", "not a valid DNS name: " + ns_name};
    std::vector<uint8_t> soa = ns;
    soa.insert(soa.end(), hostmaster.begin(), hostmaster.end());
    size_t at = soa.size();
    soa.resize(at + 20);
    store_big_u32(&soa[at], static_cast<uint32_t>(t_.index));
    store_big_u32(&soa[at + 4], kSoaRefresh);
    store_big_u32(&soa[at + 8], kSoaRetry);
    store_big_u32(&soa[at + 12], kSoaExpire);
    store_big_u32(&soa[at + 16], negative_ttl_);
    Zone::RecordList soa_answer, soa_negative;
    appendRecord(soa_answer, wire::kPointerToQuestion, wire::kTypeSoa, ttl_, soa);
    appendRecord(soa_negative, apex, wire::kTypeSoa, negative_ttl_, soa);
    z_->soa_answer_ = std::move(soa_answer.bytes);
    z_->soa_negative_ = std::move(soa_negative.bytes);

    const std::string suffix = "." + cfg_.domain;
    std::vector<uint8_t> ns_rdata = ns;
    std::vector<AddrMember> glue;
    if (ns_name.size() > suffix.size() && ns_name.ends_with(suffix)) {
      // Below the apex: its own labels, then a pointer to the question, which is the apex
      // (RFC 1035 4.1.4; NS rdata may be compressed).
      ns_rdata.resize(ns.size() - apex.size());
      ns_rdata.insert(ns_rdata.end(), std::begin(wire::kPointerToQuestion),
                      std::end(wire::kPointerToQuestion));
      for (const auto& a : cfg_.ns_addresses) {
        bool v6 = a.find(':') != std::string::npos;
        auto rd = addressRdata(a, v6);
        if (rd.empty()) return Error{"nameserver/addresses", "not an address: " + a};
        AddrMember m{hashOf(a), {}, {}};
        (v6 ? m.v6 : m.v4) = std::move(rd);
        glue.push_back(std::move(m));
      }
      ns_host_ = ns_name.substr(0, ns_name.size() - suffix.size());
      ns_host_set_ = makeAddrSet(glue, ttl_);
    }
    const size_t question_end = wire::kHeaderSize + apex.size() + 4;
    z_->apex_ns_ = apexAnswer({}, 0, question_end, ns_rdata, glue);
    z_->apex_any_ = apexAnswer(z_->soa_answer_, 1, question_end, ns_rdata, glue);
    return std::nullopt;
  }

  /// `before` (`count` records), then the NS record, in the answer section of a reply whose
  /// question ends at `question_end`; `glue`'s addresses as additional data, their owner a
  /// pointer to the name in the NS record's rdata.
  Zone::ApexAnswer apexAnswer(std::span<const uint8_t> before, uint16_t count, size_t question_end,
                              std::span<const uint8_t> ns_rdata,
                              const std::vector<AddrMember>& glue) const {
    Zone::ApexAnswer a;
    a.answer.assign(before.begin(), before.end());
    a.ancount = static_cast<uint16_t>(count + 1);
    Zone::RecordList ns, additional;
    appendRecord(ns, wire::kPointerToQuestion, wire::kTypeNs, ttl_, ns_rdata);
    const size_t target = question_end + a.answer.size() + sizeof wire::kPointerToQuestion + 10;
    a.answer.insert(a.answer.end(), ns.bytes.begin(), ns.bytes.end());
    const uint8_t owner[2] = {static_cast<uint8_t>(0xC0 | (target >> 8)),
                              static_cast<uint8_t>(target & 0xFF)};
    for (const auto& m : glue)
      if (!m.v4.empty()) appendRecord(additional, owner, wire::kTypeA, ttl_, m.v4);
    for (const auto& m : glue)
      if (!m.v6.empty()) appendRecord(additional, owner, wire::kTypeAaaa, ttl_, m.v6);
    a.additional = std::move(additional.bytes);
    a.arcount = static_cast<uint16_t>(additional.count());
    return a;
  }

  // The NS name's A/AAAA, when it is in the zone. It shadows a name of the topology.
  void addNsHost() {
    if (ns_host_.empty()) return;
    if (auto it = names_.find(ns_host_);
        it != names_.end() && it->second.kind != Zone::Kind::kEmpty)
      spdlog::warn(
          "zone: '{}.{}' is the agent's NS name; its A/AAAA are the agent's addresses, "
          "not the topology's",
          ns_host_, cfg_.domain);
    Zone::NameEntry e;
    e.kind = Zone::Kind::kFixed;
    e.fixed = ns_host_set_;
    addName(ns_host_, Zone::NameEntry{});
    names_.insert_or_assign(ns_host_, std::move(e));
  }

  uint32_t serverId(const std::string& name) {
    auto [it, fresh] = server_ids_.emplace(name, static_cast<uint32_t>(server_ids_.size()));
    return it->second;
  }

  /// A container's address as the key of a caller's source address.
  static Result<Zone::AddrKey> callerKey(const std::string& id, const std::string& address,
                                         bool v6) {
    auto rd = addressRdata(address, v6);
    sockaddr_storage ss{};
    if (!v6 && rd.size() == 4) {
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      std::memcpy(&sin.sin_addr, rd.data(), 4);
      std::memcpy(&ss, &sin, sizeof sin);
    } else if (v6 && rd.size() == 16) {
      sockaddr_in6 sin6{};
      sin6.sin6_family = AF_INET6;
      std::memcpy(&sin6.sin6_addr, rd.data(), 16);
      std::memcpy(&ss, &sin6, sizeof sin6);
    } else {
      return Error{"containers/" + id + (v6 ? "/address6" : "/address"),
                   v6 ? "not an IPv6 address" : "not an IPv4 address"};
    }
    return Zone::addrKeyOf(ss);
  }

  // Callers: every container (draining ones still ask), by id and by address.
  std::optional<Error> addCallers() {
    std::set<std::pair<uint64_t, uint64_t>> ambiguous;
    for (const auto& [id, c] : t_.containers) {
      uint32_t idx = static_cast<uint32_t>(z_->callers_.size());
      z_->caller_names_.emplace_back(id, c.version);
      z_->callers_.push_back({t_.generationOf(c.version), serverId(c.server), hashOf(id), idx});
      z_->callers_by_id_.emplace(id, idx);
      for (bool v6 : {false, true}) {
        const std::string& address = v6 ? c.address6 : c.address;
        if (address.empty()) continue;
        auto k = callerKey(id, address, v6);
        if (!k) return k.error();
        if (ambiguous.count({k->hi, k->lo})) continue;
        auto [it, fresh] = z_->callers_by_addr_.emplace(k.value(), idx);
        if (!fresh) {  // shared address (host network): the address cannot tell who asks
          z_->callers_by_addr_.erase(it);
          ambiguous.insert({k->hi, k->lo});
        }
      }
    }
    return std::nullopt;
  }

  Zone::NameEntry& addName(const std::string& rel, Zone::NameEntry e) {
    auto [it, fresh] = names_.emplace(rel, std::move(e));
    // Empty non-terminals between the name and the apex answer NODATA, not NXDOMAIN.
    for (size_t dot = rel.find('.'); dot != std::string::npos; dot = rel.find('.', dot + 1))
      names_.emplace(rel.substr(dot + 1), Zone::NameEntry{});
    return it->second;
  }

  static Result<AddrMember> memberOf(const model::Container& c) {
    AddrMember m{hashOf(c.id), {}, {}};
    if (!c.address.empty() && (m.v4 = addressRdata(c.address, false)).empty())
      return Error{"containers/" + c.id + "/address", "not an IPv4 address"};
    if (!c.address6.empty() && (m.v6 = addressRdata(c.address6, true)).empty())
      return Error{"containers/" + c.id + "/address6", "not an IPv6 address"};
    return m;
  }

  /// The answers of one version of a service: all its running containers, and per server.
  Result<Zone::VersionSet> versionSet(const std::vector<const model::Container*>& list) {
    std::vector<AddrMember> all;
    std::map<uint32_t, std::vector<AddrMember>> per_server;
    for (const auto* c : list) {
      auto m = memberOf(*c);
      if (!m) return m.error();
      all.push_back(m.value());
      per_server[serverId(c->server)].push_back(std::move(m.value()));
    }
    Zone::VersionSet vs;
    vs.all = makeAddrSet(all, ttl_);
    for (auto& [sid, members] : per_server) {
      vs.servers.push_back(sid);
      vs.by_server.push_back(makeAddrSet(members, ttl_));
    }
    return vs;
  }

  // Services: those with a record, and those only named by containers (defaults apply).
  std::optional<Error> addServices() {
    for (const auto& [name, s] : t_.services) services_[name] = s;
    for (const auto& [id, c] : t_.containers)
      if (!services_.count(c.service)) services_[c.service].name = c.service;
    // Running containers per service, grouped by version generation and ordered by id.
    std::map<std::string, std::map<uint64_t, std::vector<const model::Container*>>> running;
    for (const auto& [id, c] : t_.containers)
      if (c.state == model::ContainerState::kRunning)
        running[c.service][t_.generationOf(c.version)].push_back(&c);

    for (const auto& [name, s] : services_) {
      Zone::ServiceAnswers sa;
      sa.versioned = s.dns_behaviour == model::DnsBehaviour::kVersioned;
      sa.lb = s.load_balancing;
      sa.hash = hashOf(name);
      for (const auto& [gen, list] : running[name]) {
        auto vs = versionSet(list);
        if (!vs) return vs.error();
        if (sa.generations.size() < Zone::ServiceAnswers::kInlineGenerations)
          sa.inline_generations[sa.generations.size()] = gen;
        sa.generations.push_back(gen);
        sa.versions.push_back(std::move(vs.value()));
      }
      Zone::NameEntry e;
      e.kind = Zone::Kind::kService;
      e.service = std::move(sa);
      addName(name, std::move(e));
      if (auto failed = addSrv(name, s)) return failed;
    }
    return std::nullopt;
  }

  // SRV from ports: priority 0, weight 0, the container port, target the service's name.
  std::optional<Error> addSrv(const std::string& name, const model::Service& s) {
    std::vector<uint8_t> target = nameWire(name + "." + cfg_.domain);
    if (target.empty()) return Error{"services/" + name, "name too long for the domain"};
    std::map<std::string, Zone::RecordList> srv;
    auto add = [&](const std::string& rel, const std::vector<uint8_t>& rdata) {
      appendRecord(srv[rel], wire::kPointerToQuestion, wire::kTypeSrv, ttl_, rdata);
    };
    for (const auto& p : s.ports) {
      std::vector<uint8_t> rdata(6);
      store_big_u16(&rdata[0], 0);
      store_big_u16(&rdata[2], 0);
      store_big_u16(&rdata[4], p.container);
      rdata.insert(rdata.end(), target.begin(), target.end());
      std::string port = std::to_string(p.container);
      add("_" + port + "._tcp." + name, rdata);
      if (p.udp != 0) add("_" + port + "._udp." + name, rdata);
      if (p.http != 0) add("_http._tcp." + name, rdata);
      if (p.https != 0) add("_https._tcp." + name, rdata);
    }
    for (auto& [rel, list] : srv) {
      if (nameWire(rel + "." + cfg_.domain).empty())
        return Error{"services/" + name, "SRV name too long"};
      Zone::NameEntry se;
      se.kind = Zone::Kind::kSrv;
      se.srv = std::move(list);
      addName(rel, std::move(se));
    }
    return std::nullopt;
  }

  // Datasources: <group>.<type>, and <type> for the primary group (else `default`).
  std::optional<Error> addDatasources() {
    std::map<std::string, const model::Datasource*> type_answer;
    for (const auto& [key, d] : t_.datasources) {
      std::vector<AddrMember> members;
      for (const auto& a : d.addresses) {
        bool v6 = a.find(':') != std::string::npos;
        auto rd = addressRdata(a, v6);
        if (rd.empty()) return Error{"datasources/" + key + "/addresses", "not an address: " + a};
        AddrMember m{hashOf(a), {}, {}};
        (v6 ? m.v6 : m.v4) = std::move(rd);
        members.push_back(std::move(m));
      }
      std::string rel = d.group + "." + d.type;
      if (nameWire(rel + "." + cfg_.domain).empty())
        return Error{"datasources/" + key, "name too long"};
      Zone::NameEntry e;
      e.kind = Zone::Kind::kFixed;
      e.fixed = makeAddrSet(members, ttl_);
      addName(rel, std::move(e));
      auto& chosen = type_answer[d.type];
      if (d.primary && (chosen == nullptr || !chosen->primary)) chosen = &d;
      if (!d.primary && d.group == "default" && chosen == nullptr) chosen = &d;
    }
    for (const auto& [type, d] : type_answer) {
      if (d == nullptr || services_.count(type)) continue;  // a service of that name wins
      Zone::NameEntry e;
      e.kind = Zone::Kind::kFixed;
      e.fixed = names_.at(d->group + "." + d->type).fixed;
      names_.insert_or_assign(type, std::move(e));
    }
    return std::nullopt;
  }

  // The open-addressing name table (zone.hpp) and the names explanations print.
  void fillNameTable() {
    size_t size = 16;
    while (size < names_.size() * 2) size *= 2;
    z_->slots_.resize(size);
    for (auto& [rel, e] : names_) {
      uint64_t h = nameHash(rel);
      size_t i = h & (size - 1);
      while (z_->slots_[i].entry != Zone::kNoEntry) i = (i + 1) & (size - 1);
      z_->slots_[i] = Zone::Slot{h, static_cast<uint32_t>(z_->entries_.size())};
      z_->entries_.emplace_back(rel, std::move(e));
    }
    z_->server_names_.resize(server_ids_.size());
    for (const auto& [name, id] : server_ids_) z_->server_names_[id] = name;
    for (const auto& [name, gen] : t_.versions) z_->version_names_[gen] = name;
  }

  const model::Topology& t_;
  const ZoneConfig& cfg_;
  const uint32_t ttl_;
  const uint32_t negative_ttl_;
  std::shared_ptr<Zone> z_;
  std::map<std::string, uint32_t> server_ids_;
  std::map<std::string, model::Service> services_;
  std::map<std::string, Zone::NameEntry> names_;
  std::string ns_host_;  // the NS name relative to the domain, when it is in the zone
  Zone::AddrSet ns_host_set_;
};

Result<std::shared_ptr<const Zone>> Zone::build(const model::Topology& t, const ZoneConfig& cfg) {
  return ZoneBuilder(t, cfg).build();
}

const Zone::NameEntry* Zone::findName(std::string_view rel) const noexcept {
  const uint64_t h = nameHash(rel);
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.entry == kNoEntry) return nullptr;
    if (s.hash == h && entries_[s.entry].first == rel) return &entries_[s.entry].second;
  }
}

bool Zone::contains(std::string_view name) const noexcept {
  if (name.size() == domain_.size()) return name == domain_;
  return name.size() > domain_.size() && name.ends_with(domain_) &&
         name[name.size() - domain_.size() - 1] == '.';
}

Zone::CallerInfo Zone::resolveCaller(const AnswerInput& in, bool& known) const noexcept {
  known = false;
  if (!in.container_id.empty()) {
    auto it = callers_by_id_.find(in.container_id);
    if (it != callers_by_id_.end()) {
      known = true;
      return callers_[it->second];
    }
  }
  AddrKey k = addrKeyOf(*in.source);
  auto it = callers_by_addr_.find(k);
  if (it != callers_by_addr_.end()) {
    known = true;
    return callers_[it->second];
  }
  return CallerInfo{0, own_server_, AddrKeyHash{}(k) ^ 0x5bd1e995ull};
}

AnswerOutcome Zone::answer(const AnswerInput& in, std::span<uint8_t> out) const noexcept {
  const wire::Query& q = *in.query;
  AnswerOutcome r;
  std::string_view name = q.nameView();
  if (!contains(name)) return r;
  r.in_zone = true;
  if (q.qclass != wire::kClassIn && q.qclass != wire::kClassAny) {
    r.rcode = wire::kRefused;
    r.length = wire::writeErrorResponse(q, in.packet, r.rcode, out);
    return r;
  }
  if (q.qtype == wire::kTypeAxfr || q.qtype == wire::kTypeIxfr) {
    r.rcode = wire::kNotImp;
    r.length = wire::writeErrorResponse(q, in.packet, r.rcode, out);
    return r;
  }
  std::string_view rel = name.size() == domain_.size()
                             ? std::string_view{}
                             : name.substr(0, name.size() - domain_.size() - 1);

  // What to copy into the answer section: a record list rotated from `start`, or one record.
  const RecordList* list = nullptr;
  size_t start = 0;
  int single = -1;  // index of the only record to answer
  int64_t single_ttl = -1;
  const std::vector<uint8_t>* soa_answer = nullptr;
  const ApexAnswer* apex = nullptr;

  constexpr std::string_view kExplain = "_explain.";
  if ((q.qtype == wire::kTypeTxt || q.qtype == wire::kTypeAny) && rel.starts_with(kExplain)) {
    AnswerOutcome e = explain(in, rel.substr(kExplain.size()), out);
    if (e.length != 0) return e;
  }

  const NameEntry* found = findName(rel);
  if (found == nullptr) {
    r.rcode = wire::kNxDomain;
  } else {
    const NameEntry& e = *found;
    const bool want_a = q.qtype == wire::kTypeA || q.qtype == wire::kTypeAny;
    const bool want_aaaa = q.qtype == wire::kTypeAaaa;
    const AddrSet* set = nullptr;
    switch (e.kind) {
      case Kind::kApex:
        if (q.qtype == wire::kTypeSoa) soa_answer = &soa_answer_;
        if (q.qtype == wire::kTypeNs) apex = &apex_ns_;
        if (q.qtype == wire::kTypeAny) apex = &apex_any_;
        break;
      case Kind::kEmpty:
        break;
      case Kind::kSrv:
        if (q.qtype == wire::kTypeSrv || q.qtype == wire::kTypeAny) list = &e.srv;
        break;
      case Kind::kFixed:
        if (want_a || want_aaaa) set = &e.fixed;
        break;
      case Kind::kService: {
        if (!want_a && !want_aaaa) break;
        const ServiceAnswers& sa = e.service;
        bool known = false;
        CallerInfo caller = resolveCaller(in, known);
        r.caller_checked = true;
        r.caller_known = known;
        if (sa.versions.empty()) break;  // nothing running: NODATA
        size_t v = policy::chooseVersion(sa.generationSpan(), caller.generation, sa.versioned);
        const VersionSet& vs = sa.versions[v];
        set = &vs.all;
        if (sa.lb == model::LoadBalancing::kClosest) {
          if (auto i = policy::chooseClosest(vs.servers, caller.server)) set = &vs.by_server[*i];
        } else if (sa.lb == model::LoadBalancing::kSticky && in.sticky != nullptr) {
          uint64_t key = caller.key * 0x9E3779B97F4A7C15ull ^ sa.hash;
          auto pin = in.sticky->find(key);
          auto choice = policy::chooseSticky(pin, vs.all.members, in.rotation, in.now,
                                             config_.sticky_window, config_.ttl);
          if (!pin || pin->member != choice.pin.member || pin->expires != choice.pin.expires)
            in.sticky->store(key, choice.pin, in.now);
          const auto& of = want_aaaa ? vs.all.aaaa_of : vs.all.a_of;
          list = want_aaaa ? &vs.all.aaaa : &vs.all.a;
          single = of[choice.index];
          if (single < 0) list = nullptr;  // the pinned container has no such address: NODATA
          single_ttl = choice.ttl.count();
          set = nullptr;
        }
        break;
      }
    }
    if (set != nullptr) {
      list = want_aaaa ? &set->aaaa : &set->a;
      if (want_a && q.qtype == wire::kTypeAny && list->count() == 0) list = &set->aaaa;
    }
    if (list != nullptr && list->count() == 0) list = nullptr;
    if (list != nullptr && single < 0) start = in.rotation % list->count();
  }

  // Sizes, then TC if it does not fit.
  size_t ans_bytes = 0, add_bytes = 0;
  uint16_t ancount = 0, add_count = 0;
  if (apex != nullptr) {
    ans_bytes = apex->answer.size();
    ancount = apex->ancount;
    add_bytes = apex->additional.size();
    add_count = apex->arcount;
  } else if (soa_answer != nullptr) {
    ans_bytes = soa_answer->size();
    ancount = 1;
  } else if (list != nullptr && single >= 0) {
    size_t off = list->offset(static_cast<size_t>(single));
    size_t end = static_cast<size_t>(single) + 1 < list->count() ? list->offset(single + 1)
                                                                 : list->bytes.size();
    ans_bytes = end - off;
    ancount = 1;
  } else if (list != nullptr) {
    ans_bytes = list->bytes.size();  // every record, copied from a rotating start
    ancount = static_cast<uint16_t>(list->count());
  }
  const bool negative = ancount == 0;
  const size_t auth_bytes = negative ? soa_negative_.size() : 0;
  const bool opt = q.has_edns;
  const bool ede = opt && in.stale;
  const size_t opt_bytes = opt ? wire::optSize(ede) : 0;
  const size_t qlen = q.question_end - wire::kHeaderSize;
  size_t total = wire::kHeaderSize + qlen + ans_bytes + auth_bytes + add_bytes + opt_bytes;
  if (add_bytes != 0 && (total > in.limit || total > out.size())) {
    total -= add_bytes;  // additional data goes first, without TC (RFC 2181 9)
    add_bytes = 0;
    add_count = 0;
  }
  bool tc = total > in.limit || total > out.size();
  if (tc) {
    ans_bytes = 0;
    ancount = 0;
    total = wire::kHeaderSize + qlen + opt_bytes;
    if (total > out.size()) return r;
    r.truncated = true;
  }
  uint16_t flags = wire::responseFlags(q, true, r.rcode);
  if (tc) flags |= wire::kFlagTc;
  size_t n = wire::writeHeaderAndQuestion(
      q, in.packet, flags, ancount, (negative && !tc) ? 1 : 0,
      static_cast<uint16_t>((tc ? 0 : add_count) + (opt ? 1 : 0)), out);
  uint8_t* o = out.data() + n;
  if (!tc) {
    if (apex != nullptr) {
      std::memcpy(o, apex->answer.data(), apex->answer.size());
    } else if (soa_answer != nullptr) {
      std::memcpy(o, soa_answer->data(), soa_answer->size());
    } else if (list != nullptr && single >= 0) {
      std::memcpy(o, list->bytes.data() + list->offset(static_cast<size_t>(single)), ans_bytes);
      if (single_ttl >= 0) store_big_u32(o + kTtlOffsetInRecord, static_cast<uint32_t>(single_ttl));
    } else if (list != nullptr) {
      size_t split = list->offset(start);
      std::memcpy(o, list->bytes.data() + split, list->bytes.size() - split);
      std::memcpy(o + (list->bytes.size() - split), list->bytes.data(), split);
    }
    o += ans_bytes;
    if (negative) {
      std::memcpy(o, soa_negative_.data(), soa_negative_.size());
      o += soa_negative_.size();
    }
    if (add_bytes != 0) {
      std::memcpy(o, apex->additional.data(), add_bytes);
      o += add_bytes;
    }
  }
  if (opt) {
    wire::writeOpt(o, static_cast<uint16_t>(wire::kMaxUdpPayload), 0, q.edns_do, ede,
                   wire::kEdeStaleAnswer);
    o += opt_bytes;
  }
  r.length = static_cast<size_t>(o - out.data());
  return r;
}

}  // namespace elasticdns::agent
