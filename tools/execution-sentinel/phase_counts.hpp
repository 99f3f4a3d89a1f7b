// Per-phase task counts of the sentinel's workflow state, in the JSON shape the live view reads
// (`apply_phase_counts` in view.hpp). The live view calls this on the sentinel's executor (the program's only
// thread), through `Sentinel::monitor().state()`, so that each DAG phase's progress bar moves between the
// phase's start and end reports. Pure: no I/O.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_PHASE_COUNTS_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_PHASE_COUNTS_HPP

#include <execution_sentinel/workflow_state.hpp>

#include <boost/json.hpp>

namespace execution_sentinel::cli {

/// `{"<task_type>": {"total", "completed", "running", "failed", "status": "waiting"|"running"|"done"}, ...}`
/// where completed counts succeeded tasks.
inline boost::json::object phase_counts_json(const WorkflowState& state) {
  boost::json::object out;
  for (auto const& [type, ph] : state.phases()) {
    boost::json::object counts;
    counts["total"] = ph.total;
    counts["completed"] = ph.succeeded;
    counts["running"] = ph.running;
    counts["failed"] = ph.failed;
    counts["status"] = ph.completed ? "done" : ph.started ? "running" : "waiting";
    out[type] = std::move(counts);
  }
  return out;
}

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_PHASE_COUNTS_HPP
