#include "central/status.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "elasticdns/policy.hpp"

namespace elasticdns::central::status {
namespace {

using nlohmann::json;

struct Counts {
  uint64_t running = 0, draining = 0;
};

// Containers per service, per version generation, per server.
using VersionServers = std::map<std::string, Counts>;
using ServiceVersions = std::map<uint64_t, VersionServers>;

std::map<std::string, ServiceVersions> countContainers(const model::Topology& t) {
  std::map<std::string, ServiceVersions> out;
  for (const auto& [id, c] : t.containers) {
    Counts& n = out[c.service][t.generationOf(c.version)][c.server];
    (c.state == model::ContainerState::kRunning ? n.running : n.draining)++;
  }
  return out;
}

std::map<uint64_t, std::string> versionNames(const model::Topology& t) {
  std::map<uint64_t, std::string> names;
  for (const auto& [name, gen] : t.versions) names[gen] = name;
  return names;
}

std::string isoTime(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

json agentJson(const AgentView& a, uint64_t index) {
  const auto& r = a.report;
  json j = {{"server", r.server},
            {"seen", a.seen},
            {"polling", a.polling},
            {"index", r.index},
            {"lag", r.index >= index ? 0 : index - r.index},
            {"last_seen_seconds", a.last_seen_seconds},
            {"last_seen", isoTime(a.last_seen_unix_ms)},
            {"version", r.version},
            {"sync_age_ms", r.sync_age_ms},
            {"ebpf_identity", r.ebpf_identity},
            {"ebpf_redirect", r.ebpf_redirect}};
  if (r.peers_up && r.peers_total) {
    j["peers_up"] = *r.peers_up;
    j["peers_total"] = *r.peers_total;
  }
  if (r.traffic_generation) j["traffic_generation"] = *r.traffic_generation;
  return j;
}

namespace {

json agentsJson(const model::Topology& t, const std::vector<AgentView>& agents) {
  json out = json::array();
  std::set<std::string> reported;
  for (const auto& a : agents) reported.insert(a.report.server);
  std::vector<const AgentView*> sorted;
  for (const auto& a : agents) sorted.push_back(&a);
  std::sort(sorted.begin(), sorted.end(),
            [](auto* x, auto* y) { return x->report.server < y->report.server; });
  // Servers of the topology that never reported, in name order among the others.
  std::set<std::string> silent;
  for (const auto& [name, s] : t.servers)
    if (!reported.count(name)) silent.insert(name);
  auto next = sorted.begin();
  auto nextSilent = silent.begin();
  while (next != sorted.end() || nextSilent != silent.end()) {
    if (nextSilent == silent.end() ||
        (next != sorted.end() && (*next)->report.server < *nextSilent)) {
      out.push_back(agentJson(**next++, t.index));
    } else {
      out.push_back({{"server", *nextSilent++},
                     {"seen", false},
                     {"polling", false},
                     {"index", nullptr},
                     {"lag", nullptr},
                     {"last_seen", nullptr}});
    }
  }
  return out;
}

std::string countsText(const std::string& version, const Counts& n) {
  std::string s = version + " " + std::to_string(n.running) + " running";
  if (n.draining) s += ", " + std::to_string(n.draining) + " draining";
  return s;
}

// "web v1 callers → api v1" for every caller (service, version) that the policy sends to a
// version of `service` other than the latest.
std::vector<std::string> callersNotOnLatest(const model::Topology& t, const std::string& service,
                                            const std::vector<uint64_t>& running_gens,
                                            bool versioned,
                                            const std::map<uint64_t, std::string>& names) {
  std::vector<std::string> out;
  if (running_gens.empty() || !versioned) return out;
  std::set<std::pair<std::string, uint64_t>> callers;  // (service, generation)
  for (const auto& [id, c] : t.containers)
    if (c.service != service) callers.emplace(c.service, t.generationOf(c.version));
  for (const auto& [caller, gen] : callers) {
    size_t v = policy::chooseVersion(running_gens, gen, versioned);
    if (v + 1 == running_gens.size()) continue;  // the latest
    out.push_back(caller + " " + names.at(gen) + " callers → " + service + " " +
                  names.at(running_gens[v]));
  }
  return out;
}

json serviceJson(const model::Topology& t, const std::string& name, const ServiceVersions& sv,
                 const std::map<uint64_t, std::string>& names, size_t agents_behind) {
  model::Service svc;
  if (auto it = t.services.find(name); it != t.services.end()) svc = it->second;
  auto latest_it = t.latest_versions.find(name);
  std::string latest = latest_it == t.latest_versions.end() ? "" : latest_it->second;
  json versions = json::array();
  std::vector<uint64_t> running_gens;
  std::vector<std::string> parts;
  bool draining = false;
  for (const auto& [gen, servers] : sv) {
    Counts total;
    json per_server = json::array();
    for (const auto& [server, n] : servers) {
      total.running += n.running;
      total.draining += n.draining;
      per_server.push_back({{"server", server}, {"running", n.running}, {"draining", n.draining}});
    }
    if (total.running) running_gens.push_back(gen);
    draining = draining || total.draining;
    const std::string& vname = names.at(gen);
    parts.push_back(countsText(vname, total));
    versions.push_back({{"name", vname},
                        {"generation", gen},
                        {"latest", vname == latest},
                        {"running", total.running},
                        {"draining", total.draining},
                        {"servers", std::move(per_server)}});
  }
  bool versioned = svc.dns_behaviour == model::DnsBehaviour::kVersioned;
  bool rolling = sv.size() > 1 || draining;
  json rollout = {{"rolling", rolling}, {"complete", !rolling && agents_behind == 0}};
  if (rolling) {
    std::string verdict = name + ": ";
    for (size_t i = 0; i < parts.size(); ++i) verdict += (i ? " → " : "") + parts[i];
    for (const auto& c : callersNotOnLatest(t, name, running_gens, versioned, names))
      verdict += "; " + c;
    if (agents_behind)
      verdict += "; " + std::to_string(agents_behind) + " agent" + (agents_behind > 1 ? "s" : "") +
                 " behind";
    rollout["verdict"] = verdict;
  }
  return {{"name", name},
          {"dns_behaviour", model::toString(svc.dns_behaviour)},
          {"load_balancing", model::toString(svc.load_balancing)},
          {"latest", latest.empty() ? json(nullptr) : json(latest)},
          {"versions", std::move(versions)},
          {"rollout", std::move(rollout)}};
}

// `answers_type`: the group that `<type>.<domain>` answers with, as the agent's zone picks it:
// the primary group, else `default`.
json datasourcesJson(const model::Topology& t) {
  std::map<std::string, const model::Datasource*> answers;
  for (const auto& [key, d] : t.datasources) {
    auto& chosen = answers[d.type];
    if (d.primary && (chosen == nullptr || !chosen->primary)) chosen = &d;
    if (!d.primary && d.group == "default" && chosen == nullptr) chosen = &d;
  }
  json out = json::array();
  for (const auto& [key, d] : t.datasources)
    out.push_back({{"type", d.type},
                   {"group", d.group},
                   {"primary", d.primary},
                   {"answers_type", answers[d.type] == &d},
                   {"addresses", d.addresses}});
  return out;
}

// Aligned columns, three spaces apart, like kubectl get. A cell's colour does not count
// towards its width.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(plain(std::move(header))); }
  struct Cell {
    std::string text;
    const char* colour = nullptr;  // ANSI SGR code, e.g. "32"
  };
  void add(std::vector<Cell> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.size() == 1; }
  std::string render(bool colour) const {
    std::vector<size_t> width;
    for (const auto& row : rows_)
      for (size_t i = 0; i < row.size(); ++i) {
        if (width.size() <= i) width.push_back(0);
        width[i] = std::max(width[i], displayWidth(row[i].text));
      }
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        const Cell& c = row[i];
        bool last = i + 1 == row.size();
        if (colour && c.colour) line += std::string("\x1b[") + c.colour + "m";
        line += c.text;
        if (colour && c.colour) line += "\x1b[0m";
        if (!last) line += std::string(width[i] - displayWidth(c.text) + 3, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    return out;
  }

 private:
  static std::vector<Cell> plain(std::vector<std::string> texts) {
    std::vector<Cell> cells;
    for (auto& t : texts) cells.push_back({std::move(t)});
    return cells;
  }
  // UTF-8: count code points, not bytes (the arrow in verdicts).
  static size_t displayWidth(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  }
  std::vector<std::vector<Cell>> rows_;
};

constexpr const char* kGreen = "32";
constexpr const char* kYellow = "33";
constexpr const char* kRed = "31";

std::string lastSeenText(const json& a) {
  if (a["last_seen"].is_null()) return "never";
  if (a.value("polling", false)) return "now";
  auto secs = static_cast<uint64_t>(a.value("last_seen_seconds", 0.0));
  return secs < 120 ? std::to_string(secs) + "s ago" : std::to_string(secs / 60) + "m ago";
}

std::string ebpfText(const json& a) {
  if (!a.contains("ebpf_identity")) return "-";
  bool id = a.value("ebpf_identity", false), redirect = a.value("ebpf_redirect", false);
  if (id && redirect) return "identity+redirect";
  if (id) return "identity";
  return redirect ? "redirect" : "off";
}

std::string servicesTable(const json& status, bool colour) {
  Table t({"SERVICE", "VERSION", "LATEST", "SERVER", "RUNNING", "DRAINING"});
  for (const auto& s : status["services"]) {
    for (const auto& v : s["versions"]) {
      bool latest = v["latest"].get<bool>();
      for (const auto& per : v["servers"])
        t.add({{s["name"].get<std::string>()},
               {v["name"].get<std::string>(), latest ? kGreen : nullptr},
               {latest ? "*" : "", kGreen},
               {per["server"].get<std::string>()},
               {std::to_string(per["running"].get<uint64_t>())},
               {std::to_string(per["draining"].get<uint64_t>())}});
    }
    if (s["versions"].empty())
      t.add({{s["name"].get<std::string>()}, {"-"}, {""}, {"-"}, {"0"}, {"0"}});
  }
  return t.empty() ? "" : t.render(colour);
}

std::string datasourcesTable(const json& status, bool colour) {
  Table t({"DATASOURCE", "GROUP", "PRIMARY", "ANSWERS TYPE", "ADDRESSES"});
  for (const auto& d : status["datasources"]) {
    std::string addresses;
    for (const auto& a : d["addresses"])
      addresses += (addresses.empty() ? "" : ",") + a.get<std::string>();
    t.add({{d["type"].get<std::string>()},
           {d["group"].get<std::string>()},
           {d["primary"].get<bool>() ? "yes" : "no"},
           {d["answers_type"].get<bool>() ? "*" : "", kGreen},
           {addresses}});
  }
  return t.empty() ? "" : t.render(colour);
}

std::string agentsTable(const json& status, bool colour) {
  Table t({"AGENT", "INDEX", "LAG", "LAST SEEN", "VERSION", "EBPF", "PEERS", "TRAFFIC"});
  for (const auto& a : status["agents"]) {
    bool seen = a["seen"].get<bool>();
    bool never = a["index"].is_null();
    uint64_t lag = never ? 0 : a["lag"].get<uint64_t>();
    std::string peers = a.contains("peers_up")
                            ? std::to_string(a["peers_up"].get<uint64_t>()) + "/" +
                                  std::to_string(a["peers_total"].get<uint64_t>())
                            : "-";
    std::string traffic = a.contains("traffic_generation")
                              ? std::to_string(a["traffic_generation"].get<uint64_t>())
                              : "-";
    t.add({{a["server"].get<std::string>(), seen ? nullptr : kRed},
           {never ? "-" : std::to_string(a["index"].get<uint64_t>())},
           {never ? "-" : std::to_string(lag), lag > 0 ? kYellow : nullptr},
           {lastSeenText(a) + (seen || never ? "" : " (not seen)"), seen ? nullptr : kRed},
           {a.value("version", std::string("-"))},
           {ebpfText(a)},
           {peers},
           {traffic}});
  }
  return t.empty() ? "" : t.render(colour);
}

}  // namespace

std::string renderTables(const json& status, bool colour) {
  std::vector<std::string> sections = {
      servicesTable(status, colour), datasourcesTable(status, colour), agentsTable(status, colour)};
  Table deploys({"DEPLOY"});
  for (const auto& d : status["deploys"]) deploys.add({{d.get<std::string>(), kYellow}});
  if (!deploys.empty()) sections.push_back(deploys.render(colour));
  std::string out;
  for (const auto& s : sections) {
    if (s.empty()) continue;
    if (!out.empty()) out += "\n";
    out += s;
  }
  if (out.empty())
    out = "no services, datasources or agents yet (index " +
          std::to_string(status.value("index", uint64_t{0})) + ")\n";
  return out;
}

const char* lagBucket(const AgentView& a, uint64_t index) {
  if (!a.seen) return "not_seen";
  uint64_t lag = a.report.index >= index ? 0 : index - a.report.index;
  return lag == 0 ? "0" : lag < 10 ? "1-9" : lag < 100 ? "10-99" : "100+";
}

json compute(const model::Topology& t, const std::vector<AgentView>& agents) {
  size_t behind = 0;
  for (const auto& a : agents)
    if (a.seen && a.report.index < t.index) ++behind;
  auto names = versionNames(t);
  auto counts = countContainers(t);
  for (const auto& [name, s] : t.services) counts[name];  // services with no container
  json services = json::array();
  json deploys = json::array();
  for (const auto& [name, sv] : counts) {
    json s = serviceJson(t, name, sv, names, behind);
    if (s["rollout"].contains("verdict")) deploys.push_back(s["rollout"]["verdict"]);
    services.push_back(std::move(s));
  }
  return {{"index", t.index},
          {"services", std::move(services)},
          {"datasources", datasourcesJson(t)},
          {"agents", agentsJson(t, agents)},
          {"agents_behind", behind},
          {"deploys", std::move(deploys)}};
}

}  // namespace elasticdns::central::status
