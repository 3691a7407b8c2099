#pragma once
// The `hl7v2:` section of the gateway config: the message store, MLLP listeners and delivery routes.
// The gateway's loadConfig() leaves this section to us; errors come back the same way (file:line:column).
//
//   hl7v2:
//     store: { file: medicus-data/messages.db }          # or { postgres: "host=db dbname=medicus user=gw" }
//     listeners:
//       - name: mllp-main
//         address: 0.0.0.0
//         port: 2575
//         route: to-fhir                                 # delivery route of what it stores
//         charset: { mode: trust-msh18, default: 8859/1 } # or mode: force
//         senders:                                       # per sender (MSH-3|MSH-4) charset policy
//           - { sender: "KIS|KLINIKUM", charset: { mode: force, default: 8859/1 } }
//         accepted_versions: ["2.3", "2.4", "2.5"]       # default: 2.1 .. 2.8.2
//         message_types: [ADT, ORU]                      # default: any
//         max_message_bytes: 4MiB
//         read_timeout: 30s                              # an unfinished frame
//         idle_timeout: 10m                              # no frame at all
//         write_timeout: 30s
//         tls: { certificate: a.crt, private_key: a.key, client_ca: ca.pem, require_client_certificate: true }
//     delivery:
//       - name: to-fhir
//         upstream: fhir                                 # one of upstreams:
//         maps: ../mappers/maps                          # v2 -> FHIR mapping files
//         max_attempts: 10
//         initial_backoff: 1s
//         max_backoff: 5m
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "medicus/gateway/config.h"
#include "medicus/gateway/store/message_store.h"
#include "mllp/mllp_server.h"

namespace medicus::gateway::mllp {

struct DeliveryRouteConfig {
  std::string name;
  std::string upstream;
  std::string maps_dir;  // empty: no mapping configured; messages stay pending (nothing is delivered)
  store::RetryPolicy retry;
  size_t batch_size = 64;
  Millis poll_interval{200};
};

struct IntakeConfig {
  std::string store_file;          // SQLite file (one gateway instance), or
  std::string store_postgres_dsn;  // PostgreSQL connection string (several instances share the queue)
  std::vector<MllpListenerConfig> listeners;
  std::vector<DeliveryRouteConfig> routes;
  unsigned threads = 2;
};

// The store the config names (SQLite file or PostgreSQL). `recover_in_flight`: SQLite only — reset
// in-flight rows of a previous run (the serving process; not `replay` beside a running gateway).
tl::expected<std::unique_ptr<store::MessageStore>, store::StoreError> openIntakeStore(const IntakeConfig& config,
                                                                                     bool recover_in_flight);

// nullopt when the file has no `hl7v2:` section. `gateway` (may be null) is used to check upstream names.
tl::expected<std::optional<IntakeConfig>, ConfigErrors> loadIntakeConfig(const std::string& path,
                                                                        const GatewayConfig* gateway);
tl::expected<std::optional<IntakeConfig>, ConfigErrors> loadIntakeConfigText(const std::string& yaml,
                                                                            const std::string& file_name,
                                                                            const std::string& base_dir,
                                                                            const GatewayConfig* gateway);

}  // namespace medicus::gateway::mllp
