// STRUCTURE: the tasks observed disagree with the inventory or the declared DAG structure.
#ifndef EXECUTION_SENTINEL_DETECTORS_STRUCTURE_HPP
#define EXECUTION_SENTINEL_DETECTORS_STRUCTURE_HPP

#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/detectors/completion.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel {

/// Rules (docs/detectors.md); every finding is a STRUCTURE warning, once (scope "structure/<type>" or
/// "structure", fingerprint the check and the types involved):
///  - at the end of a phase (TaskChange::phase_completed, every inventory task of the type succeeded):
///    - `order`: for each upstream type U of the type T in `dag_structure` that has inventory tasks, T started
///      before any task of U had succeeded: the declared dependency did not hold in this run (branches run
///      independently, so T starting while other U tasks still run is normal and not reported);
///    - `count`: more tasks of T were seen than the inventory lists (`details.expected`, `details.observed`);
///  - at completion (a probe with an exit code; once):
///    - `none_observed`: the inventory lists tasks but none was seen on the cluster (wrong namespace or label
///      selector, or the Jobs were removed before the watch started); then nothing else is checked;
///    - `unexpected_type`: a type was seen that neither the inventory nor dag_structure names;
///    - `order` for every phase that started, as above;
///    - `count` (more than listed), and with exit code 0 only (a failed run stops early, so its missing tasks are
///      a consequence, not a finding): `missing_type` (an inventory type of which no task was seen) and `count`
///      (fewer seen than listed). Fewer-than-listed is not judged when tasks are agglomerated
///      (agglomeration_factor > 1) or run in worker pools: there, Jobs do not map one-to-one to tasks.
class StructureDetector {
public:
    static constexpr std::string_view name = "structure";

    void on_task_changed(const WorkflowState& s, const TaskChange& c, Timestamp, ReportSink& sink) {
        if (!c.phase_completed) return;
        const auto& type = s.tasks()[c.index].task_type;
        check_order(s, type, "phase_end", sink);
        check_count(s, type, "phase_end", /*allow_fewer*/ false, sink);
    }

    void on_completion_probe(const WorkflowState& s, const CompletionProbe& p, Timestamp, ReportSink& sink) {
        if (checked_at_completion_ || !p.file_found) return;
        auto code = parse_exit_code(p.content);
        if (!code) return;
        checked_at_completion_ = true;
        const auto& ctx = s.context();
        if (ctx.task_inventory.empty()) return; // nothing was announced: nothing to compare with
        if (s.observed() == 0) {
            Finding f = base("structure", "none_observed", "completion");
            f.message = "None of the " + detail::es_plural(s.inventory_total(), "task", "tasks") +
                        " the workflow lists was seen running, so its progress could not be followed; check that "
                        "the sentinel watches the right namespace and labels.";
            f.details["expected"] = s.inventory_total();
            f.details["observed"] = 0;
            f.details["exit_code"] = *code;
            sink.emit(std::move(f));
            return;
        }
        std::set<std::string> declared;
        for (auto& t : ctx.task_inventory) declared.insert(t.task_type);
        for (auto& [t, ups] : ctx.dag_structure) {
            declared.insert(t);
            declared.insert(ups.begin(), ups.end());
        }
        std::map<std::string, int> seen;
        for (auto& t : s.tasks())
            if (t.observed) ++seen[t.task_type];
        for (auto& [type, n] : seen) {
            if (type.empty() || declared.count(type)) continue;
            Finding f = base("structure/" + type, "unexpected_type", "completion");
            f.task_type = type;
            f.message = detail::es_plural(n, "task", "tasks") + " of type " + type +
                        ", which the workflow's task list does not mention, " + (n == 1 ? "was" : "were") +
                        " seen; the list may be out of date.";
            f.details["observed"] = n;
            f.details["exit_code"] = *code;
            sink.emit(std::move(f));
        }
        bool judge_missing = *code == 0;
        bool one_to_one = ctx.agglomeration_factor <= 1 && ctx.execution_model != "WORKER_POOL";
        for (auto& [type, ph] : s.phases()) {
            if (type.empty()) continue;
            if (ph.started) check_order(s, type, "completion", sink);
            if (ph.inventory_total <= 0) continue;
            int observed = seen.count(type) ? seen[type] : 0;
            if (observed == 0) {
                if (!judge_missing || !one_to_one) continue;
                Finding f = base("structure/" + type, "missing_type", "completion");
                f.task_type = type;
                f.message = "No " + type + " task was seen although the workflow lists " +
                            std::to_string(ph.inventory_total) + "; the workflow may not have run them.";
                f.details["expected"] = ph.inventory_total;
                f.details["observed"] = 0;
                f.details["exit_code"] = *code;
                sink.emit(std::move(f));
                continue;
            }
            check_count(s, type, "completion", judge_missing && one_to_one, sink);
        }
    }

    bool checked_at_completion() const noexcept { return checked_at_completion_; }

private:
    static Finding base(std::string scope, std::string_view check, std::string_view when) {
        Finding f;
        f.type = ReportType::STRUCTURE;
        f.severity = Severity::warning;
        f.scope = std::move(scope);
        f.fingerprint = std::string(check);
        f.details["check"] = check;
        f.details["when"] = when;
        return f;
    }

    static void check_order(const WorkflowState& s, const std::string& type, std::string_view when, ReportSink& sink) {
        const auto* ph = s.phase(type);
        if (!ph || !ph->started || !ph->started_at) return;
        auto it = s.context().dag_structure.find(type);
        if (it == s.context().dag_structure.end()) return;
        for (auto& up : it->second) {
            const auto* u = s.phase(up);
            if (up == type || !u || u->inventory_total <= 0) continue;
            // Branches of a DAG run independently (one chromosome's merge starts while another's individuals run),
            // so the phase-level dependency is broken only when T started before ANY task of U had finished.
            std::optional<Timestamp> first_finish;
            for (auto& t : s.tasks())
                if (t.task_type == up && t.status == TaskStatus::succeeded && t.finished_at &&
                    (!first_finish || *t.finished_at < *first_finish))
                    first_finish = t.finished_at;
            if (first_finish && *first_finish <= *ph->started_at) continue;
            Finding f = base("structure/" + type, "order", when);
            f.fingerprint = "order:" + up;
            f.task_type = type;
            f.message = "The " + type + " tasks started before any of the " + up +
                        " tasks they are declared to depend on had finished, so that declared dependency did not "
                        "hold in this run.";
            f.details["upstream"] = up;
            f.details["started_at"] = format_timestamp(*ph->started_at);
            if (first_finish) f.details["upstream_first_finished_at"] = format_timestamp(*first_finish);
            else f.details["upstream_first_finished_at"] = nullptr;
            f.details["upstream_completed"] = u->completed;
            sink.emit(std::move(f));
        }
    }

    static void check_count(const WorkflowState& s, const std::string& type, std::string_view when, bool allow_fewer,
                            ReportSink& sink) {
        const auto* ph = s.phase(type);
        if (!ph || ph->inventory_total <= 0) return;
        int observed = 0;
        for (auto& t : s.tasks())
            if (t.observed && t.task_type == type) ++observed;
        bool more = observed > ph->inventory_total;
        bool fewer = allow_fewer && observed < ph->inventory_total;
        if (!more && !fewer) return;
        Finding f = base("structure/" + type, "count", when);
        f.fingerprint = more ? "count:more" : "count:fewer";
        f.task_type = type;
        f.message = std::to_string(observed) + " " + type + " " + (observed == 1 ? "task was" : "tasks were") +
                    " seen, but the workflow lists " + std::to_string(ph->inventory_total) +
                    (more ? "; the extra ones were not announced." : "; the others may not have run.");
        f.details["expected"] = ph->inventory_total;
        f.details["observed"] = observed;
        sink.emit(std::move(f));
    }

    bool checked_at_completion_ = false;
};

static_assert(Detector<StructureDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_STRUCTURE_HPP
