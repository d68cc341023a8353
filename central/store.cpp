#include "central/store.hpp"

#include <sqlite3.h>

#include <filesystem>

#include "elasticdns/validate.hpp"

namespace elasticdns::central {
namespace {

using nlohmann::json;

constexpr int kBusyTimeoutMs = 5000;

// Finalizes a statement when it leaves scope.
struct StatementGuard {
  sqlite3_stmt* s = nullptr;
  ~StatementGuard() { sqlite3_finalize(s); }
};

// Resets and clears a reusable prepared statement when it leaves scope.
struct ResetGuard {
  sqlite3_stmt* s;
  ~ResetGuard() {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
};

std::string columnText(sqlite3_stmt* s, int col) {
  const unsigned char* t = sqlite3_column_text(s, col);
  int n = sqlite3_column_bytes(s, col);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(n)) : std::string();
}

void bindText(sqlite3_stmt* s, int pos, std::string_view v) {
  sqlite3_bind_text(s, pos, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

}  // namespace

std::optional<Error> putStoredRecord(model::Topology& t, const std::string& kind_name,
                                     const std::string& key, std::string_view text) {
  json value = json::parse(text, nullptr, false);
  std::string where = "records/" + kind_name + "/" + key;
  if (value.is_discarded()) return Error{where, "not JSON"};
  auto kind = protocol::kindNamed(kind_name);
  if (!kind) return Error{where, "unknown kind"};
  if (*kind == protocol::RecordKind::kVersion) {
    if (!value.is_object() || !value.contains("generation") ||
        !value["generation"].is_number_unsigned() || value["generation"].get<uint64_t>() == 0)
      return Error{where, "bad generation"};
    t.versions[key] = value["generation"].get<uint64_t>();
    return std::nullopt;
  }
  if (*kind == protocol::RecordKind::kDatasource && key.find('/') == std::string::npos)
    return Error{where, "bad key"};
  auto record = protocol::parseRecord(*kind, value, key);
  if (!record) return Error{where, record.error().message()};
  protocol::put(t, std::move(record).value());
  return std::nullopt;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& dir,
                                                       Durability durability,
                                                       uint64_t change_retention) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error{"data_dir", "cannot create " + dir + ": " + ec.message()};
  std::string path = (std::filesystem::path(dir) / "central.db").string();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Error{"data_dir", "cannot open " + path + ": " + msg};
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, change_retention));
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // WAL: a commit appends to the log, readers never block the writer.
  if (auto e = store->exec("PRAGMA journal_mode=WAL")) return *e;
  if (auto e = store->exec(durability == Durability::kFull ? "PRAGMA synchronous=FULL"
                                                           : "PRAGMA synchronous=NORMAL"))
    return *e;
  if (auto e = store->exec(
          "CREATE TABLE IF NOT EXISTS records(kind TEXT NOT NULL, key TEXT NOT NULL,"
          " value TEXT NOT NULL, PRIMARY KEY(kind, key)) WITHOUT ROWID;"
          "CREATE TABLE IF NOT EXISTS changes(idx INTEGER PRIMARY KEY, change TEXT NOT NULL);"
          "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
          "INSERT OR IGNORE INTO meta(key, value) VALUES('index', 0);"))
    return *e;
  if (auto e = store->prepareStatements()) return *e;
  return store;
}

SqliteStore::~SqliteStore() {
  for (sqlite3_stmt* s : {put_record_, delete_record_, put_change_, trim_changes_, set_index_})
    sqlite3_finalize(s);
  sqlite3_close(db_);
}

Error SqliteStore::sqlError(const char* what) const {
  return Error{"store", std::string(what) + ": " + sqlite3_errmsg(db_)};
}

std::optional<Error> SqliteStore::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    Error e{"store", std::string(sql).substr(0, 40) + ": " + (msg ? msg : "error")};
    sqlite3_free(msg);
    return e;
  }
  return std::nullopt;
}

std::optional<Error> SqliteStore::prepareStatements() {
  struct {
    sqlite3_stmt** slot;
    const char* sql;
  } statements[] = {
      {&put_record_, "INSERT OR REPLACE INTO records(kind, key, value) VALUES(?1, ?2, ?3)"},
      {&delete_record_, "DELETE FROM records WHERE kind = ?1 AND key = ?2"},
      {&put_change_, "INSERT OR REPLACE INTO changes(idx, change) VALUES(?1, ?2)"},
      {&trim_changes_, "DELETE FROM changes WHERE idx <= ?1"},
      {&set_index_, "UPDATE meta SET value = ?1 WHERE key = 'index'"},
  };
  for (auto& s : statements)
    if (sqlite3_prepare_v3(db_, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.slot, nullptr) != SQLITE_OK)
      return sqlError("prepare");
  return std::nullopt;
}

std::optional<Error> SqliteStore::loadRecords(model::Topology& t) {
  StatementGuard q;
  if (sqlite3_prepare_v2(db_, "SELECT kind, key, value FROM records", -1, &q.s, nullptr) !=
      SQLITE_OK)
    return sqlError("load records");
  int rc;
  while ((rc = sqlite3_step(q.s)) == SQLITE_ROW)
    if (auto e = putStoredRecord(t, columnText(q.s, 0), columnText(q.s, 1), columnText(q.s, 2)))
      return e;
  if (rc != SQLITE_DONE) return sqlError("load records");
  return std::nullopt;
}

Result<StoredState> SqliteStore::load() {
  StoredState out;
  model::Topology& t = out.topology;
  {
    StatementGuard q;
    if (sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE key = 'index'", -1, &q.s, nullptr) !=
        SQLITE_OK)
      return sqlError("load index");
    if (sqlite3_step(q.s) == SQLITE_ROW)
      t.index = static_cast<uint64_t>(sqlite3_column_int64(q.s, 0));
  }
  if (auto e = loadRecords(t)) return *e;
  if (auto e = validate::checkTopology(t)) return *e;
  t.recomputeDerived();
  {
    StatementGuard q;
    if (sqlite3_prepare_v2(db_, "SELECT idx, change FROM changes ORDER BY idx", -1, &q.s,
                           nullptr) != SQLITE_OK)
      return sqlError("load changes");
    int rc;
    while ((rc = sqlite3_step(q.s)) == SQLITE_ROW)
      out.changes.emplace_back(static_cast<uint64_t>(sqlite3_column_int64(q.s, 0)),
                               columnText(q.s, 1));
    if (rc != SQLITE_DONE) return sqlError("load changes");
  }
  return out;
}

Result<uint64_t> SqliteStore::commit(const std::vector<StoredChange>& changes, uint64_t base) {
  uint64_t new_index = base + changes.size();
  if (auto e = exec("BEGIN IMMEDIATE")) return *e;
  auto fail = [&](const char* what) {
    Error e = sqlError(what);
    exec("ROLLBACK");
    return e;
  };
  for (const StoredChange& c : changes) {
    std::string_view kind = protocol::toString(c.kind);
    if (c.op == protocol::ChangeOp::kPut) {
      ResetGuard g{put_record_};
      bindText(put_record_, 1, kind);
      bindText(put_record_, 2, c.key);
      bindText(put_record_, 3, c.value);
      if (sqlite3_step(put_record_) != SQLITE_DONE) return fail("put record");
    } else {
      ResetGuard g{delete_record_};
      bindText(delete_record_, 1, kind);
      bindText(delete_record_, 2, c.key);
      if (sqlite3_step(delete_record_) != SQLITE_DONE) return fail("delete record");
    }
    ResetGuard g{put_change_};
    sqlite3_bind_int64(put_change_, 1, static_cast<sqlite3_int64>(c.index));
    bindText(put_change_, 2, c.change);
    if (sqlite3_step(put_change_) != SQLITE_DONE) return fail("append change");
  }
  if (new_index > retention_) {
    ResetGuard g{trim_changes_};
    sqlite3_bind_int64(trim_changes_, 1, static_cast<sqlite3_int64>(new_index - retention_));
    if (sqlite3_step(trim_changes_) != SQLITE_DONE) return fail("trim changes");
  }
  {
    ResetGuard g{set_index_};
    sqlite3_bind_int64(set_index_, 1, static_cast<sqlite3_int64>(new_index));
    if (sqlite3_step(set_index_) != SQLITE_DONE) return fail("set index");
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return fail("commit");
  return new_index;
}

}  // namespace elasticdns::central
