#include "agent/ebpf/callers.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <system_error>

namespace elasticdns::agent {

namespace {

// Retired tables are freed after this long: a reader holds the table pointer only for one
// hash lookup, so seconds are orders of magnitude of margin.
constexpr auto kRetireAfter = std::chrono::seconds(10);

std::string_view stripSlashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

}  // namespace

std::string containerIdFromCgroupPath(const std::vector<std::regex>& patterns,
                                      std::string_view relative_path) {
  relative_path = stripSlashes(relative_path);
  if (relative_path.empty()) return {};
  std::string path(relative_path);
  for (const auto& re : patterns) {
    std::smatch m;
    if (std::regex_search(path, m, re) && m.size() > 1 && m[1].matched) return m[1].str();
  }
  return std::string(relative_path.substr(0, relative_path.find('/')));
}

Result<std::vector<std::regex>> compileContainerIdPatterns(const std::string& pattern) {
  std::vector<std::regex> out;
  try {
    if (pattern.empty()) {
      for (const char* p : kDefaultContainerIdPatterns) out.emplace_back(p);
      return out;
    }
    std::regex re(pattern);
    // Exactly one group, as the config parser demands: with more, which one is the id would be
    // a guess.
    if (re.mark_count() != 1)
      return Error{"bpf.container_id_pattern",
                   "needs exactly one capture group (the container id)"};
    out.push_back(std::move(re));
  } catch (const std::regex_error& e) {
    return Error{"bpf.container_id_pattern", std::string("invalid regex: ") + e.what()};
  }
  return out;
}

edns_sock_key sockKeyOf(const Peer& peer) noexcept {
  edns_sock_key key{};
  if (peer.addr.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &peer.addr, sizeof sin);
    key.addr[2] = htonl(0xffff);
    key.addr[3] = sin.sin_addr.s_addr;
    key.sport = sin.sin_port;
  } else if (peer.addr.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &peer.addr, sizeof sin6);
    std::memcpy(key.addr, &sin6.sin6_addr, sizeof key.addr);
    key.sport = sin6.sin6_port;
  }
  key.proto = static_cast<uint8_t>(peer.transport);
  return key;
}

std::optional<uint64_t> readIdentitySlot(const edns_id_slot* slots,
                                         const edns_sock_key& key) noexcept {
  if (!slots) return std::nullopt;
  const edns_id_slot* slot = &slots[edns_slot_of(&key)];
  // Seqlock read: the writer (edns_egress) makes seq odd, writes, makes it even again.
  uint32_t before = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
  if (before & 1) return std::nullopt;
  edns_sock_key seen;
  std::memcpy(&seen, const_cast<const edns_sock_key*>(&slot->key), sizeof seen);
  uint64_t cgroup_id = __atomic_load_n(&slot->cgroup_id, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  if (__atomic_load_n(&slot->seq, __ATOMIC_RELAXED) != before) return std::nullopt;
  if (std::memcmp(&seen, &key, sizeof key) != 0 || cgroup_id == 0) return std::nullopt;
  return cgroup_id;
}

CallerRegistry::CallerRegistry(Options options, const edns_id_slot* slots, int lru_fd,
                               metrics::Registry& metrics)
    : options_(std::move(options)), slots_(slots), lru_fd_(lru_fd) {
  const std::string name = "elasticdns_bpf_identity_lookups_total";
  const std::string help = "Caller identity lookups by where the sending socket was found";
  slot_hits_ = &metrics.counter(name, help, R"(result="slot")");
  lru_hits_ = &metrics.counter(name, help, R"(result="lru")");
  misses_ = &metrics.counter(name, help, R"(result="miss")");
  unknown_cgroups_ = &metrics.counter("elasticdns_bpf_unknown_cgroups_total",
                                      "Identified cgroups that map to no container id");
  rescans_ = &metrics.counter("elasticdns_bpf_cgroup_rescans_total",
                              "Scans of the containers' cgroup tree");
  rescan();
}

CallerRegistry::~CallerRegistry() = default;

std::optional<uint64_t> CallerRegistry::cgroupOf(const Peer& peer) noexcept {
  edns_sock_key key = sockKeyOf(peer);
  if (auto id = readIdentitySlot(slots_, key)) {
    slot_hits_->inc();
    return id;
  }
  if (lru_fd_ >= 0) {
    edns_sock_val val{};
    if (bpf_map_lookup_elem(lru_fd_, &key, &val) == 0 && val.cgroup_id != 0) {
      lru_hits_->inc();
      return val.cgroup_id;
    }
  }
  misses_->inc();
  return std::nullopt;
}

std::string_view CallerRegistry::containerIdOf(const Peer& peer) noexcept {
  auto cgroup_id = cgroupOf(peer);
  if (!cgroup_id) return {};
  return containerIdOfCgroup(*cgroup_id);
}

std::string_view CallerRegistry::containerIdOfCgroup(uint64_t cgroup_id) noexcept {
  if (const Table* table = table_.load(std::memory_order_acquire)) {
    if (auto it = table->find(cgroup_id); it != table->end()) return it->second;
  }
  return lookupSlow(cgroup_id);
}

std::string_view CallerRegistry::lookupSlow(uint64_t cgroup_id) noexcept {
  try {
    bool scan = false;
    {
      std::lock_guard lock(slow_mu_);
      scan = std::chrono::steady_clock::now() - last_scan_ >= options_.rescan_interval;
    }
    if (scan) rescan();
    if (const Table* table = table_.load(std::memory_order_acquire)) {
      if (auto it = table->find(cgroup_id); it != table->end()) return it->second;
    }
  } catch (...) {
    // Allocation failure during a scan: the caller is simply not identified.
  }
  unknown_cgroups_->inc();
  return {};
}

size_t CallerRegistry::rescan() {
  namespace fs = std::filesystem;
  auto table = std::make_unique<Table>();
  std::vector<std::pair<uint64_t, std::string>> found;
  std::error_code ec;
  const fs::path root(options_.cgroup_root);
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    struct stat st;
    if (::stat(it->path().c_str(), &st) != 0) continue;
    std::string id =
        containerIdFromCgroupPath(options_.patterns, it->path().lexically_relative(root).string());
    if (!id.empty()) found.emplace_back(st.st_ino, std::move(id));
  }
  std::lock_guard lock(slow_mu_);
  for (auto& [cgroup_id, id] : found) {
    auto [interned, inserted] = interned_.insert(std::move(id));
    table->emplace(cgroup_id, std::string_view(*interned));
  }
  size_t count = table->size();
  auto now = std::chrono::steady_clock::now();
  while (!retired_.empty() && now - retired_.front().first > kRetireAfter) retired_.pop_front();
  table_.store(table.get(), std::memory_order_release);
  if (current_) retired_.emplace_back(now, std::move(current_));
  current_ = std::move(table);
  last_scan_ = now;
  rescans_->inc();
  return count;
}

}  // namespace elasticdns::agent
