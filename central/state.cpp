#include "central/state.hpp"

#include <algorithm>

#include "elasticdns/validate.hpp"

namespace elasticdns::central {
namespace {

using nlohmann::json;
using protocol::ChangeOp;
using protocol::RecordKind;

json recordJson(const WriteItem& item) {
  return std::visit(
      [](const auto& r) -> json {
        if constexpr (std::is_same_v<std::decay_t<decltype(r)>, std::monostate>)
          return json();
        else
          return protocol::toJson(r);
      },
      item.record);
}

template <typename Map>
void appendList(std::string& out, const Map& m) {
  out += '[';
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += ',';
    first = false;
    out += protocol::toJson(v).dump();
  }
  out += ']';
}

}  // namespace

Result<std::unique_ptr<TopologyState>> TopologyState::load(std::unique_ptr<TopologyStore> store,
                                                           uint64_t retention) {
  std::unique_ptr<TopologyState> s(new TopologyState(std::move(store), retention));
  if (auto e = s->reload()) return *e;
  return s;
}

std::optional<Error> TopologyState::reload() {
  auto loaded = store_->load();
  if (!loaded) return loaded.error();
  topology_ = std::move(loaded->topology);
  running_.clear();
  for (const auto& [id, c] : topology_.containers) countRunning(c, +1);
  next_generation_ = 1;
  for (const auto& [name, g] : topology_.versions)
    next_generation_ = std::max(next_generation_, g + 1);
  log_.clear();
  log_first_ = topology_.index + 1;
  // Keep only a consecutive run ending at the index: that is what deltas can be built from.
  auto& changes = loaded->changes;
  size_t start = changes.size();
  uint64_t expect = topology_.index;
  while (start > 0 && changes[start - 1].first == expect) {
    --start;
    --expect;
  }
  for (size_t i = start; i < changes.size(); ++i) log_.push_back(std::move(changes[i].second));
  if (!log_.empty()) log_first_ = changes[start].first;
  full_cache_.reset();
  full_cache_index_ = UINT64_MAX;
  return std::nullopt;
}

uint64_t TopologyState::oldestChange() const {
  return log_first_;
}

std::optional<Error> TopologyState::plan(const std::vector<WriteItem>& items, uint64_t& next_index,
                                         std::vector<protocol::Change>& out, int& status) {
  size_t new_servers = 0, new_services = 0, new_containers = 0, new_datasources = 0;
  std::vector<protocol::Change> planned;
  auto add = [&](ChangeOp op, RecordKind kind, const std::string& key, json value) {
    planned.push_back({0, op, kind, key, std::move(value)});
  };
  for (const WriteItem& item : items) {
    bool put = item.op == ChangeOp::kPut;
    auto existing = [&]() -> bool {
      switch (item.kind) {
        case RecordKind::kServer:
          return topology_.servers.count(item.key) > 0;
        case RecordKind::kService:
          return topology_.services.count(item.key) > 0;
        case RecordKind::kContainer:
          return topology_.containers.count(item.key) > 0;
        case RecordKind::kDatasource:
          return topology_.datasources.count(item.key) > 0;
        case RecordKind::kVersion:
          return topology_.versions.count(item.key) > 0;
      }
      return false;
    }();
    if (!put) {
      if (!existing) {
        status = 404;
        return Error{std::string(protocol::toString(item.kind)), "'" + item.key + "' not found"};
      }
      add(ChangeOp::kDelete, item.kind, item.key, json());
      continue;
    }
    bool same = false;
    switch (item.kind) {
      case RecordKind::kServer: {
        auto it = topology_.servers.find(item.key);
        same = it != topology_.servers.end() && it->second == std::get<model::Server>(item.record);
        new_servers += !existing;
        break;
      }
      case RecordKind::kService: {
        auto it = topology_.services.find(item.key);
        same =
            it != topology_.services.end() && it->second == std::get<model::Service>(item.record);
        new_services += !existing;
        break;
      }
      case RecordKind::kContainer: {
        const auto& c = std::get<model::Container>(item.record);
        auto it = topology_.containers.find(item.key);
        same = it != topology_.containers.end() && it->second == c;
        new_containers += !existing;
        bool planned_version = std::any_of(planned.begin(), planned.end(), [&](const auto& p) {
          return p.kind == RecordKind::kVersion && p.key == c.version;
        });
        if (!topology_.versions.count(c.version) && !planned_version) {
          if (topology_.versions.size() >= validate::kMaxVersions) {
            status = 400;
            return Error{"version", "too many versions"};
          }
          // A version's first appearance precedes the container that introduces it.
          add(ChangeOp::kPut, RecordKind::kVersion, c.version,
              json{{"generation", next_generation_}, {"name", c.version}});
        }
        break;
      }
      case RecordKind::kDatasource: {
        auto it = topology_.datasources.find(item.key);
        same = it != topology_.datasources.end() &&
               it->second == std::get<model::Datasource>(item.record);
        new_datasources += !existing;
        break;
      }
      case RecordKind::kVersion:
        status = 400;
        return Error{"kind", "versions are not written directly"};
    }
    if (!same) add(ChangeOp::kPut, item.kind, item.key, recordJson(item));
  }
  auto over = [&](size_t now, size_t added, size_t max) { return added && now + added > max; };
  status = 400;
  if (over(topology_.servers.size(), new_servers, validate::kMaxServers))
    return Error{"servers", "too many (max 10000)"};
  if (over(topology_.services.size(), new_services, validate::kMaxServices))
    return Error{"services", "too many (max 10000)"};
  if (over(topology_.containers.size(), new_containers, validate::kMaxContainers))
    return Error{"containers", "too many (max 1000000)"};
  if (over(topology_.datasources.size(), new_datasources, validate::kMaxDatasources))
    return Error{"datasources", "too many (max 10000)"};
  status = 200;
  for (auto& c : planned) {
    c.index = ++next_index;
    out.push_back(std::move(c));
  }
  return std::nullopt;
}

void TopologyState::applyToMemory(const protocol::Change& c) {
  bool put = c.op == ChangeOp::kPut;
  switch (c.kind) {
    case RecordKind::kServer:
      if (put)
        topology_.servers[c.key] = validate::parseServer(c.value, c.key).value();
      else
        topology_.servers.erase(c.key);
      break;
    case RecordKind::kService:
      if (put)
        topology_.services[c.key] = validate::parseService(c.value, c.key).value();
      else
        topology_.services.erase(c.key);
      break;
    case RecordKind::kContainer: {
      auto it = topology_.containers.find(c.key);
      if (it != topology_.containers.end()) {
        countRunning(it->second, -1);
        topology_.containers.erase(it);
      }
      if (put) {
        auto rec = validate::parseContainer(c.value, c.key).value();
        countRunning(rec, +1);
        topology_.containers.emplace(c.key, std::move(rec));
      }
      break;
    }
    case RecordKind::kDatasource:
      if (put) {
        auto slash = c.key.find('/');
        topology_.datasources[c.key] =
            validate::parseDatasource(c.value, c.key.substr(0, slash), c.key.substr(slash + 1))
                .value();
      } else {
        topology_.datasources.erase(c.key);
      }
      break;
    case RecordKind::kVersion:
      if (put) {
        uint64_t g = c.value.at("generation").get<uint64_t>();
        topology_.versions[c.key] = g;
        next_generation_ = std::max(next_generation_, g + 1);
      } else {
        topology_.versions.erase(c.key);
      }
      break;
  }
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

std::vector<WriteOutcome> TopologyState::apply(const std::vector<std::vector<WriteItem>>& writes) {
  std::vector<WriteOutcome> outcomes(writes.size());
  std::vector<protocol::Change> all;
  uint64_t next_index = topology_.index;
  for (size_t i = 0; i < writes.size(); ++i) {
    size_t before = all.size();
    int status = 200;
    if (auto e = plan(writes[i], next_index, all, status)) {
      outcomes[i].status = status;
      outcomes[i].error = *e;
      continue;
    }
    // Later writes of the batch are planned against this one's result.
    for (size_t k = before; k < all.size(); ++k) applyToMemory(all[k]);
    outcomes[i].changes = all.size() - before;
    outcomes[i].index = next_index;
  }
  if (all.empty()) {
    for (auto& o : outcomes)
      if (!o.error) o.index = topology_.index;
    return outcomes;
  }
  std::vector<std::string> serialized;
  serialized.reserve(all.size());
  for (const auto& c : all) serialized.push_back(protocol::toJson(c).dump());
  if (auto e = store_->commit(all, serialized, next_index)) {
    // Memory ran ahead of the store: put it back to what is committed.
    auto reloaded = reload();
    for (auto& o : outcomes) {
      if (o.error) continue;
      o.status = 503;
      o.error = Error{"store", "write not committed: " + e->reason};
    }
    if (reloaded) std::abort();  // the store can neither commit nor be read: nothing is safe
    return outcomes;
  }
  topology_.index = next_index;
  for (auto& s : serialized) log_.push_back(std::move(s));
  if (log_.size() == all.size() && log_first_ > all.front().index) log_first_ = all.front().index;
  while (log_.size() > retention_) {
    log_.pop_front();
    ++log_first_;
  }
  for (auto& o : outcomes)
    if (!o.error && o.changes == 0) o.index = topology_.index;
  return outcomes;
}

std::shared_ptr<const std::string> TopologyState::fullBody() {
  if (!full_cache_ || full_cache_index_ != topology_.index) {
    full_cache_.reset();  // free the old text before rendering the new one
    full_cache_ = std::make_shared<const std::string>(renderFull(topology_));
    full_cache_index_ = topology_.index;
  }
  return full_cache_;
}

std::shared_ptr<const std::string> TopologyState::deltaBody(uint64_t since) const {
  uint64_t index = topology_.index;
  if (since > index) return nullptr;
  if (since < index && (log_.empty() || since + 1 < log_first_)) return nullptr;
  std::string out = "{\"changes\":[";
  if (since < index) {
    size_t start = static_cast<size_t>(since + 1 - log_first_);
    for (size_t i = start; i < log_.size(); ++i) {
      if (i > start) out += ',';
      out += log_[i];
    }
  }
  out += "],\"index\":" + std::to_string(index) +
         ",\"kind\":\"delta\",\"since\":" + std::to_string(since) + "}";
  return std::make_shared<const std::string>(std::move(out));
}

std::string TopologyState::renderFull(const model::Topology& t) {
  // Key order is nlohmann's (sorted), so the text equals fullResponse(t).dump().
  std::string out;
  out.reserve(256 + t.containers.size() * 200);
  std::string index = std::to_string(t.index);
  out += "{\"index\":" + index + ",\"kind\":\"full\",\"topology\":{\"containers\":";
  appendList(out, t.containers);
  out += ",\"datasources\":";
  appendList(out, t.datasources);
  out += ",\"index\":" + index + ",\"latest_versions\":" + json(t.latest_versions).dump();
  out += ",\"servers\":";
  appendList(out, t.servers);
  out += ",\"services\":";
  appendList(out, t.services);
  out += ",\"versions\":[";
  std::vector<std::pair<uint64_t, const std::string*>> by_generation;
  by_generation.reserve(t.versions.size());
  for (const auto& [name, g] : t.versions) by_generation.emplace_back(g, &name);
  std::sort(by_generation.begin(), by_generation.end());
  for (size_t i = 0; i < by_generation.size(); ++i) {
    if (i) out += ',';
    out += json{{"name", *by_generation[i].second}, {"generation", by_generation[i].first}}.dump();
  }
  out += "]}}";
  return out;
}

}  // namespace elasticdns::central
