// The machine-readable output of execution-sentinel: one JSON object per line (NDJSON).
// Every line is an object with a "type" field: the reports as the library produces them (PROGRESS,
// ANOMALY_OOMKILL, ...), then exactly one last line of type "SUMMARY". Pure: no I/O. Documented in docs/cli.md.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_NDJSON_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_NDJSON_HPP

#include "exit_codes.hpp"

#include <execution_sentinel/report.hpp>
#include <execution_sentinel/summary.hpp>

#include <boost/json.hpp>

#include <string>
#include <string_view>

namespace execution_sentinel::cli {

/// One NDJSON line: the compact serialisation of `value` followed by '\n'. Boost.JSON escapes control
/// characters inside strings, so the line never contains a raw newline or escape byte.
inline std::string ndjson_line(const boost::json::value& value) {
  std::string line = boost::json::serialize(value);
  line.push_back('\n');
  return line;
}

/// The line of one report: exactly the library's JSON form of the Report (to_json in report.hpp).
inline std::string report_line(const Report& report) { return ndjson_line(to_json(report)); }

/// The last line of a run:
/// `{"type":"SUMMARY","outcome":"succeeded","exit_status":0,"summary":{...WatchSummary...}}`
/// plus `"error":"..."` when the run ended on an error (for example the cluster became unreachable).
inline boost::json::object summary_record(const WatchSummary& summary, ExitCode code, std::string_view error = {}) {
  boost::json::object record;
  record["type"] = "SUMMARY";
  record["outcome"] = outcome_name(code);
  record["exit_status"] = to_int(code);
  record["summary"] = to_json(summary);
  if (!error.empty()) record["error"] = error;
  return record;
}

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_NDJSON_HPP
