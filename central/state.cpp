#include "central/state.hpp"

#include <algorithm>
#include <array>
#include <set>

#include "elasticdns/validate.hpp"

namespace elasticdns::central {
namespace {

using nlohmann::json;
using protocol::ChangeOp;
using protocol::RecordKind;

}  // namespace

Result<std::unique_ptr<TopologyState>> TopologyState::load(std::unique_ptr<Store> store,
                                                           uint64_t retention,
                                                           std::optional<Ipam> ipam) {
  std::unique_ptr<TopologyState> s(new TopologyState(std::move(store), retention));
  s->ipam_ = std::move(ipam);
  if (auto e = s->reload()) return *e;
  if (auto e = s->leaseUnleasedServers()) return *e;
  return s;
}

size_t TopologyState::leases() const {
  return static_cast<size_t>(
      std::count_if(topology_.servers.begin(), topology_.servers.end(),
                    [](const auto& kv) { return !kv.second.subnet.empty(); }));
}

// Rebuilds the lease set from the records; fails when a stored lease is not one of the
// Ipam's subnets or is held twice.
std::optional<Error> TopologyState::rebuildLeases() {
  leased_.clear();
  last_leased_.reset();
  if (!ipam_) return std::nullopt;
  std::map<uint32_t, std::string> holder;
  for (const auto& [name, server] : topology_.servers) {
    if (server.subnet.empty()) continue;
    auto i = ipam_->indexOf(server.subnet);
    if (!i)
      return Error{"containernet",
                   "server '" + name + "' holds subnet " + server.subnet + ", which is not a /" +
                       std::to_string(ipam_->subnetPrefix()) + " subnet of cluster_cidr " +
                       ipam_->clusterCidr() +
                       ": cluster_cidr or subnet_prefix changed while leases exist; start with "
                       "the previous containernet settings (and delete the servers first to "
                       "change them)"};
    if (auto [it, fresh] = holder.emplace(*i, name); !fresh)
      return Error{"containernet", "subnet " + server.subnet + " is leased to both '" + it->second +
                                       "' and '" + name + "'"};
    leased_.insert(*i);
  }
  if (!leased_.empty()) last_leased_ = *leased_.rbegin();
  return std::nullopt;
}

std::optional<Error> TopologyState::leaseUnleasedServers() {
  if (!ipam_) return std::nullopt;
  std::vector<WriteItem> items;
  for (const auto& [name, server] : topology_.servers)
    if (server.subnet.empty()) items.push_back({ChangeOp::kPut, RecordKind::kServer, name, server});
  if (items.empty()) return std::nullopt;
  auto outcome = apply({items});
  if (outcome.front().error)
    return Error{"containernet", "cannot lease a subnet to each of the " +
                                     std::to_string(items.size()) +
                                     " servers without one: " + outcome.front().error->message()};
  return std::nullopt;
}

std::optional<Error> TopologyState::reload() {
  auto loaded = store_->load();
  if (!loaded) return loaded.error();
  model::Topology previous = std::move(topology_);
  topology_ = std::move(loaded->topology);
  if (auto e = rebuildLeases()) {
    topology_ = std::move(previous);
    rebuildLeases();
    return e;
  }
  running_.clear();
  for (const auto& [id, c] : topology_.containers) countRunning(c, +1);
  next_generation_ = 1;
  for (const auto& [name, g] : topology_.versions)
    next_generation_ = std::max(next_generation_, g + 1);
  log_.clear();
  log_base_ = topology_.index;
  // Keep only a consecutive run ending at the index: that is what deltas can be built from.
  auto& changes = loaded->changes;
  size_t start = changes.size();
  uint64_t expect = topology_.index;
  while (start > 0 && changes[start - 1].first == expect) {
    --start;
    --expect;
  }
  log_base_ = expect;
  for (size_t i = start; i < changes.size(); ++i)
    log_.emplace_back(changes[i].first, std::move(changes[i].second));
  full_cache_.reset();
  full_cache_index_ = UINT64_MAX;
  return std::nullopt;
}

std::optional<Error> TopologyState::plan(const std::vector<WriteItem>& items, uint64_t& next_index,
                                         std::vector<PlannedChange>& out, int& status) {
  std::array<size_t, protocol::kRecordKindCount> added{};  // new records by kind
  std::vector<PlannedChange> planned;
  LeasePlan leases;
  leases.last = last_leased_;
  for (const WriteItem& item : items) {
    bool existing = protocol::contains(topology_, item.kind, item.key);
    if (item.op == ChangeOp::kDelete && !item.wireguard_only) {
      if (!existing) {
        status = 404;
        return Error{std::string(protocol::toString(item.kind)), "'" + item.key + "' not found"};
      }
      planned.push_back({ChangeOp::kDelete, item.kind, item.key, std::nullopt});
      continue;
    }
    if (item.kind == RecordKind::kVersion || !item.record) {
      status = 400;
      return Error{"kind", "versions are not written directly"};
    }
    std::optional<protocol::Record> record = item.record;
    if (auto* s = std::get_if<model::Server>(&*record))
      if (auto e = planServer(item, *s, leases, status)) return e;
    added[static_cast<size_t>(item.kind)] += !existing;
    if (const auto* c = std::get_if<model::Container>(&*record))
      if (auto e = planVersion(*c, planned, status)) return e;
    if (!protocol::holds(topology_, *record))
      planned.push_back({ChangeOp::kPut, item.kind, item.key, std::move(record)});
  }
  if (auto e = checkPortSharing(planned)) {
    status = 400;
    return e;
  }
  for (size_t k = 0; k < protocol::kRecordKindCount; ++k) {
    const auto& info = protocol::kindInfo(static_cast<RecordKind>(k));
    if (added[k] && protocol::countOf(topology_, info.kind) + added[k] > info.max_records) {
      status = 400;
      return Error{std::string(info.collection),
                   "too many (max " + std::to_string(info.max_records) + ")"};
    }
  }
  status = 200;
  for (auto& c : planned) {
    c.index = ++next_index;
    out.push_back(std::move(c));
  }
  return std::nullopt;
}

// The traffic port rule (validate::checkPortSharing) over the services as they would be after
// `planned`, for the services it puts.
std::optional<Error> TopologyState::checkPortSharing(
    const std::vector<PlannedChange>& planned) const {
  std::set<std::string> touched;
  for (const auto& c : planned)
    if (c.kind == RecordKind::kService && c.op == ChangeOp::kPut) touched.insert(c.key);
  if (touched.empty()) return std::nullopt;
  auto services = topology_.services;
  for (const auto& c : planned) {
    if (c.kind != RecordKind::kService) continue;
    if (c.op == ChangeOp::kDelete)
      services.erase(c.key);
    else
      services[c.key] = std::get<model::Service>(*c.record);
  }
  return validate::checkPortSharing(services, &touched);
}

std::optional<Error> TopologyState::planServer(const WriteItem& item, model::Server& s,
                                               LeasePlan& leases, int& status) const {
  auto found = topology_.servers.find(item.key);
  const model::Server* old = found == topology_.servers.end() ? nullptr : &found->second;
  if (item.wireguard_only) {
    if (!old) {
      status = 404;
      return Error{"server", "'" + item.key + "' not found"};
    }
    auto wireguard = std::move(s.wireguard);
    s = *old;
    s.wireguard = std::move(wireguard);
    return std::nullopt;
  }
  // The agent publishes its wireguard on its own (PUT .../wireguard): a put without one keeps it.
  if (!s.wireguard && old) s.wireguard = old->wireguard;
  std::string held = old ? old->subnet : std::string();
  if (!s.subnet.empty() && s.subnet != held) {
    status = 400;
    return Error{"subnet", "assigned by central (this server holds " +
                               (held.empty() ? std::string("none") : held) + ")"};
  }
  s.subnet = held;
  if (!held.empty() || !ipam_) return std::nullopt;
  // The first lease of a write searches the held ones; later ones (a start that leases every
  // server) also skip those planned before them, in one copy made once.
  if (leases.planned > 0) {
    if (!leases.used) leases.used = leased_;
    leases.used->insert(*leases.last);  // the lease planned before this one
  }
  auto i = ipam_->nextFree(leases.used ? *leases.used : leased_, leases.last);
  if (!i) {
    status = 409;
    return Error{"subnet", "no free subnet: cluster_cidr " + ipam_->clusterCidr() + " holds " +
                               std::to_string(ipam_->size()) + " subnets of /" +
                               std::to_string(ipam_->subnetPrefix()) + ", all leased"};
  }
  leases.last = *i;
  ++leases.planned;
  s.subnet = ipam_->subnetAt(*i);
  return std::nullopt;
}

std::optional<Error> TopologyState::planVersion(const model::Container& c,
                                                std::vector<PlannedChange>& planned,
                                                int& status) const {
  bool planned_version = std::any_of(planned.begin(), planned.end(), [&](const auto& p) {
    return p.kind == RecordKind::kVersion && p.key == c.version;
  });
  if (topology_.versions.count(c.version) || planned_version) return std::nullopt;
  if (topology_.versions.size() >= validate::kMaxVersions) {
    status = 400;
    return Error{"version", "too many versions"};
  }
  planned.push_back(
      {ChangeOp::kPut, RecordKind::kVersion, c.version, std::nullopt, next_generation_});
  return std::nullopt;
}

void TopologyState::applyToMemory(const PlannedChange& c) {
  if (c.kind == RecordKind::kServer) updateLease(c);
  if (c.kind == RecordKind::kContainer) {
    auto it = topology_.containers.find(c.key);
    if (it != topology_.containers.end()) countRunning(it->second, -1);
  }
  if (c.op == ChangeOp::kDelete) {
    protocol::erase(topology_, c.kind, c.key);
  } else if (c.kind == RecordKind::kVersion) {
    topology_.versions[c.key] = c.generation;
    next_generation_ = std::max(next_generation_, c.generation + 1);
  } else {
    protocol::put(topology_, *c.record);
    if (const auto* container = std::get_if<model::Container>(&*c.record))
      countRunning(*container, +1);
  }
}

void TopologyState::updateLease(const PlannedChange& c) {
  if (!ipam_) return;
  std::string old;
  if (auto it = topology_.servers.find(c.key); it != topology_.servers.end())
    old = it->second.subnet;
  const auto* s = c.record ? std::get_if<model::Server>(&*c.record) : nullptr;
  std::string now = c.op == ChangeOp::kPut && s ? s->subnet : std::string();
  if (old == now) return;
  if (auto i = ipam_->indexOf(old)) leased_.erase(*i);
  if (auto i = ipam_->indexOf(now)) {
    leased_.insert(*i);
    last_leased_ = *i;
  }
}

std::vector<StoredChange> TopologyState::serialize(const std::vector<PlannedChange>& changes) {
  std::vector<StoredChange> out;
  out.reserve(changes.size());
  for (const auto& c : changes) {
    std::string value;
    if (c.record)
      value = protocol::toJson(*c.record).dump();
    else if (c.op == ChangeOp::kPut)
      value = json{{"generation", c.generation}, {"name", c.key}}.dump();
    std::string change = protocol::writeChange(c.index, c.op, c.kind, c.key, value);
    out.push_back({c.index, c.op, c.kind, c.key, std::move(value), std::move(change)});
  }
  return out;
}

void TopologyState::countRunning(const model::Container& c, int delta) {
  if (c.state != model::ContainerState::kRunning) return;
  auto& tally = running_[c.service];
  uint64_t g = topology_.generationOf(c.version);
  auto& v = tally[g];
  v.name = c.version;
  if (delta > 0)
    ++v.running;
  else if (v.running > 0)
    --v.running;
  if (v.running == 0) tally.erase(g);
  if (tally.empty()) {
    running_.erase(c.service);
    topology_.latest_versions.erase(c.service);
  } else {
    topology_.latest_versions[c.service] = tally.rbegin()->second.name;
  }
}

TopologyState::PlannedChange TopologyState::inverseOf(const PlannedChange& c) const {
  PlannedChange inverse{ChangeOp::kDelete, c.kind, c.key, std::nullopt};
  if (c.kind == RecordKind::kVersion) {
    if (auto it = topology_.versions.find(c.key); it != topology_.versions.end()) {
      inverse.op = ChangeOp::kPut;
      inverse.generation = it->second;
    }
  } else if (auto r = protocol::recordAt(topology_, c.kind, c.key)) {
    inverse.op = ChangeOp::kPut;
    inverse.record = std::move(r);
  }
  return inverse;
}

void TopologyState::appendLog(uint64_t index, std::string change) {
  log_.emplace_back(index, std::move(change));
  // A delta from log_base_ needs every change after it: dropping the oldest moves the base to
  // its index (changes sharing that index are then older than any delta served).
  while (log_.size() > retention_) {
    log_base_ = log_.front().first;
    log_.pop_front();
  }
}

std::vector<WriteOutcome> TopologyState::apply(const std::vector<std::vector<WriteItem>>& writes) {
  std::vector<WriteOutcome> outcomes(writes.size());
  std::vector<PlannedChange> all;
  std::vector<PlannedChange> undo;  // puts memory back, applied last to first
  const uint64_t base = topology_.index;
  uint64_t next_index = base;
  const bool shared_index = store_->oneIndexPerCommit();
  // One index per commit (etcd): a version's generation is (base + 1) << 16 plus its place in
  // the commit. A commit succeeds only on the base it was planned on, so generations follow
  // the commits' order on every replica.
  if (shared_index) next_generation_ = std::max(next_generation_, (base + 1) << 16);
  for (size_t i = 0; i < writes.size(); ++i) {
    size_t before = all.size();
    int status = 200;
    if (auto e = plan(writes[i], next_index, all, status)) {
      outcomes[i].status = status;
      outcomes[i].error = *e;
      continue;
    }
    if (all.size() > store_->maxChangesPerCommit()) {
      all.resize(before);
      if (before == 0) {
        outcomes[i].status = 400;
        outcomes[i].error =
            Error{"store",
                  "this write makes more changes than the store takes in "
                  "one commit (" +
                      std::to_string(store_->maxChangesPerCommit()) + ", etcd.max_txn_ops - 1)"};
        continue;
      }
      // The commit is full: the rest wait for the next one.
      for (size_t k = i; k < writes.size(); ++k) {
        outcomes[k].status = 503;
        outcomes[k].retry = true;
        outcomes[k].error = Error{"store", "not planned: the commit was full"};
      }
      break;
    }
    // Later writes of the batch are planned against this one's result.
    for (size_t k = before; k < all.size(); ++k) {
      undo.push_back(inverseOf(all[k]));
      applyToMemory(all[k]);
    }
    outcomes[i].changes = all.size() - before;
    outcomes[i].index = next_index;
  }
  if (all.empty()) {
    for (auto& o : outcomes)
      if (!o.error) o.index = topology_.index;
    return outcomes;
  }
  std::vector<StoredChange> stored = serialize(all);
  auto committed = store_->commit(stored, base);
  if (!committed) {
    // Memory ran ahead of the store: put it back to what is committed.
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) applyToMemory(*it);
    bool conflict = committed.error().field == kCommitConflict;
    for (auto& o : outcomes) {
      if (o.error) continue;
      o.status = 503;
      o.retry = conflict;
      o.error = conflict ? Error{kCommitConflict, "another replica committed first"}
                         : Error{"store", "write not committed: " + committed.error().reason};
    }
    return outcomes;
  }
  topology_.index = committed.value();
  for (auto& c : stored) {
    if (shared_index)
      appendLog(topology_.index,
                protocol::writeChange(topology_.index, c.op, c.kind, c.key, c.value));
    else
      appendLog(c.index, std::move(c.change));
  }
  for (auto& o : outcomes)
    if (!o.error && (o.changes == 0 || shared_index)) o.index = topology_.index;
  return outcomes;
}

std::optional<Error> TopologyState::applyRemote(uint64_t index,
                                                const std::vector<RemoteChange>& changes) {
  if (index <= topology_.index) return std::nullopt;
  std::optional<Error> first_error;
  for (const RemoteChange& rc : changes) {
    PlannedChange c{rc.op, rc.kind, rc.key, std::nullopt};
    if (rc.op == ChangeOp::kPut) {
      model::Topology scratch;
      std::string kind(protocol::toString(rc.kind));
      if (auto e = putStoredRecord(scratch, kind, rc.key, rc.value)) {
        if (!first_error) first_error = e;
        continue;
      }
      if (rc.kind == RecordKind::kVersion)
        c.generation = scratch.versions[rc.key];
      else
        c.record = protocol::recordAt(scratch, rc.kind, rc.key);
    }
    applyToMemory(c);
    appendLog(index, protocol::writeChange(index, rc.op, rc.kind, rc.key,
                                           rc.op == ChangeOp::kPut ? rc.value : ""));
  }
  topology_.index = index;
  return first_error;
}

std::shared_ptr<const std::string> TopologyState::fullBody() {
  if (!full_cache_ || full_cache_index_ != topology_.index) {
    full_cache_.reset();  // free the old text before rendering the new one
    full_cache_ = std::make_shared<const std::string>(protocol::writeFullResponse(topology_));
    full_cache_index_ = topology_.index;
  }
  return full_cache_;
}

std::shared_ptr<const std::string> TopologyState::deltaBody(uint64_t since) const {
  uint64_t index = topology_.index;
  if (since > index || since < log_base_) return nullptr;
  auto first = std::upper_bound(log_.begin(), log_.end(), since,
                                [](uint64_t s, const auto& entry) { return s < entry.first; });
  std::vector<std::string_view> changes;
  changes.reserve(static_cast<size_t>(log_.end() - first));
  for (auto it = first; it != log_.end(); ++it) changes.push_back(it->second);
  return std::make_shared<const std::string>(protocol::writeDeltaResponse(index, since, changes));
}

}  // namespace elasticdns::central
