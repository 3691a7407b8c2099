// Opens the HL7 v2 store named in the `hl7v2: store:` section: a SQLite file, or PostgreSQL when several
// gateway instances share one queue.
#include <filesystem>

#include "medicus/gateway/store/postgres_message_store.h"
#include "medicus/gateway/store/sqlite_message_store.h"
#include "mllp/intake_config.h"

namespace medicus::gateway::mllp {

tl::expected<std::unique_ptr<store::MessageStore>, store::StoreError> openIntakeStore(const IntakeConfig& config,
                                                                                     bool recover_in_flight) {
  if (!config.store_postgres_dsn.empty()) {
    auto opened = store::PostgresMessageStore::open({.dsn = config.store_postgres_dsn});
    if (!opened) return tl::unexpected(opened.error());
    return std::unique_ptr<store::MessageStore>(std::move(*opened));
  }
  std::filesystem::path file(config.store_file);
  std::error_code ignored;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ignored);
  auto opened = store::SqliteMessageStore::open({.file = file, .recover_in_flight = recover_in_flight});
  if (!opened) return tl::unexpected(opened.error());
  return std::unique_ptr<store::MessageStore>(std::move(*opened));
}

}  // namespace medicus::gateway::mllp
