#pragma once
// Config-driven HL7 v2 -> FHIR R4 mapping. Mapping files (YAML, see mappers/maps/adt.yaml for the
// format) are compiled once at start-up: every FHIR path is checked against the R4 type model, every v2
// location and converter name is checked, and mistakes are reported with file and line. Mapping a
// message then builds a transaction Bundle with the fhir-model builders.
//
// Promises: the same message gives the same Bundle (fullUrls are name-based UUIDs derived from the
// resource's key identifier or, without one, from MSH-3/MSH-4/MSH-10). Resources with a key identifier
// are written as conditional update (PUT Type?identifier=system|value) or conditional create.

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "medicus/fhir/node.h"
#include "medicus/hl7v2/message.h"

namespace medicus::mappers {

// Thrown only while loading mapping files: "adt.yaml:42: unknown FHIR element 'Patient.nmae'".
class MapConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A data problem found while mapping (the Bundle is still produced without the offending value).
struct MapIssue {
  enum class Severity { kWarning, kError };
  Severity severity = Severity::kWarning;
  std::string v2_location;  // "PID-8"
  std::string fhir_path;    // "Patient.gender"
  std::string message;
};

struct MapResult {
  std::unique_ptr<fhir::Document> bundle;  // root is the Bundle; owns all nodes
  std::vector<MapIssue> issues;
};

class CompiledMap;

// A set of compiled mapping files, chosen by MSH-9 (message type ^ trigger event). Immutable and
// thread-safe once built; share it as shared_ptr<const MapSet>.
class MapSet {
 public:
  // Loads every *.yaml / *.yml file of a folder. Throws MapConfigError (file:line: reason).
  static std::shared_ptr<const MapSet> loadDirectory(const std::filesystem::path& folder);
  // Compiles one mapping document; `source_name` is used in error messages. Throws MapConfigError.
  static std::shared_ptr<const MapSet> fromYaml(std::string_view yaml, std::string source_name);

  ~MapSet();
  MapSet(const MapSet&) = delete;
  MapSet& operator=(const MapSet&) = delete;

  // True when a map handles this MSH-9.1 ^ MSH-9.2.
  bool handles(std::string_view message_type, std::string_view trigger_event) const;

  // Maps one parsed message. Failure (for the ACK): 200 unsupported message type or 201 unsupported
  // event when no map handles MSH-9. Content problems are MapIssues in the result.
  tl::expected<MapResult, hl7v2::Error> map(const hl7v2::Message& message) const;

 private:
  MapSet();
  std::vector<std::unique_ptr<CompiledMap>> maps_;
};

// Data-type conversions used by the maps, public for reuse and tests.
// HL7 v2 TS/DTM ("YYYY[MM[DD[HHMM[SS[.S+]]]]][+/-ZZZZ]") -> FHIR dateTime keeping the precision.
// A time without a zone gets `default_offset` ("+01:00"); when that is empty the value is cut to its
// date. nullopt when the text is not a v2 date/time.
std::optional<std::string> v2DateTimeToFhir(std::string_view v2, std::string_view default_offset);
// Same, cut to a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD).
std::optional<std::string> v2DateToFhir(std::string_view v2);

}  // namespace medicus::mappers
