#pragma once
// Central's durable store: SQLite in WAL mode. Three tables:
//   records(kind, key, value)      the current topology, one row per record (JSON text)
//   changes(idx, change)           the change log (protocol::writeChange text), bounded
//   meta(key, value)               'index': the topology index, committed with every write
// A commit writes records, change rows and the index in one transaction, so after a crash
// (kill -9) the database holds exactly the acknowledged writes.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "elasticdns/model.hpp"
#include "elasticdns/protocol.hpp"
#include "elasticdns/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace elasticdns::central {

/// `full`: the WAL is fsynced on every commit (survives power loss as well as process death).
/// `normal`: the WAL is written on every commit but fsynced only at checkpoints; a committed
/// transaction is in the kernel's page cache, so kill -9 loses nothing, power loss may lose
/// the last commits.
enum class Durability : uint8_t { kFull, kNormal };

/// What the store holds at start-up.
struct StoredState {
  model::Topology topology;  // records and index; latest_versions recomputed
  /// The retained change log, oldest first, each entry the serialized protocol::Change.
  std::vector<std::pair<uint64_t, std::string>> changes;
};

/// One change as it is stored: the record's JSON text and the change's JSON text, each
/// serialized once by the caller.
struct StoredChange {
  uint64_t index = 0;
  protocol::ChangeOp op = protocol::ChangeOp::kPut;
  protocol::RecordKind kind = protocol::RecordKind::kServer;
  std::string key;
  std::string value;   // the record (put only)
  std::string change;  // the change log row
};

class TopologyStore {
 public:
  /// Opens (creating if needed) `dir`/central.db.
  static Result<std::unique_ptr<TopologyStore>> open(const std::string& dir, Durability durability,
                                                     uint64_t change_retention);
  ~TopologyStore();
  TopologyStore(const TopologyStore&) = delete;
  TopologyStore& operator=(const TopologyStore&) = delete;

  /// Reads every record, the index and the retained change log. Records that fail validation
  /// make the load fail (the database is ours; a bad row means corruption).
  Result<StoredState> load();

  /// One transaction: for each change, upsert or delete its record and append its log row;
  /// set the index to `new_index`; drop log rows older than the retention. Returns only once
  /// committed (per the durability mode).
  std::optional<Error> commit(const std::vector<StoredChange>& changes, uint64_t new_index);

 private:
  TopologyStore(sqlite3* db, uint64_t retention) : db_(db), retention_(retention) {}
  std::optional<Error> exec(const char* sql);
  std::optional<Error> prepareStatements();
  Error sqlError(const char* what) const;
  std::optional<Error> loadRecords(model::Topology& t);

  sqlite3* db_;
  uint64_t retention_;
  sqlite3_stmt* put_record_ = nullptr;
  sqlite3_stmt* delete_record_ = nullptr;
  sqlite3_stmt* put_change_ = nullptr;
  sqlite3_stmt* trim_changes_ = nullptr;
  sqlite3_stmt* set_index_ = nullptr;
};

}  // namespace elasticdns::central
