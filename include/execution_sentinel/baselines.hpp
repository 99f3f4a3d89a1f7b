// Baselines: expected durations per task type learned from past runs (docs/history.md, "Baselines"), and the pure
// decision of which expected duration a task uses — the inventory's estimate, the learned one, or the learned one
// overriding an inventory estimate that is far from it.
//
// Usage:
//   es::Baselines b("1000genome");
//   b.set("frequency", {.samples = 40, .p50_seconds = 95, .p95_seconds = 180, .scope = "workflow"});
//   auto e = es::choose_expectation(30.0, b.find("frequency"), es::BaselineOptions{});
//   // e.basis == ExpectationBasis::history (95 s is more than 3 × 30 s), e.seconds == 95
// history/baselines.hpp loads a Baselines from a RunHistoryStore. Monitor::set_baselines (and
// SentinelOptions::baselines) hand it to the WorkflowState, which gives every task its Expectation.
#ifndef EXECUTION_SENTINEL_BASELINES_HPP
#define EXECUTION_SENTINEL_BASELINES_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace execution_sentinel {

/// Where a task's expected duration comes from.
enum class ExpectationBasis : std::uint8_t {
    none,      ///< no expected duration
    inventory, ///< the inventory's expected_duration_seconds
    history,   ///< the P50 of the type's succeeded attempts in past runs
};

/// "", "inventory", "history".
inline constexpr std::string_view to_string(ExpectationBasis b) noexcept {
    switch (b) {
    case ExpectationBasis::none: return "";
    case ExpectationBasis::inventory: return "inventory";
    case ExpectationBasis::history: return "history";
    }
    return "";
}

/// The learned duration of one task type: its succeeded attempts in past runs.
struct TypeBaseline {
    std::size_t samples = 0; ///< succeeded attempts measured
    double p50_seconds = 0;  ///< the median: the expectation
    double p95_seconds = 0;
    std::string scope;       ///< "workflow" (runs of the same workflow name) or "all" (all runs in the store)
    friend bool operator==(const TypeBaseline&, const TypeBaseline&) = default;
};

/// How baselines are used (SentinelSettings: SENTINEL_BASELINE_MIN_SAMPLES, SENTINEL_BASELINE_OVERRIDE_FACTOR).
struct BaselineOptions {
    /// A learned baseline is used only when at least this many succeeded attempts were measured (at least 1).
    std::size_t min_samples = 5;
    /// When the inventory has an estimate too, the learned one replaces it only if they are more than this factor
    /// apart, either way (history ≥ factor × inventory or inventory ≥ factor × history, strictly). Below 1 or not a
    /// number: never.
    double override_factor = 3.0;
    friend bool operator==(const BaselineOptions&, const BaselineOptions&) = default;
};

/// Learned baselines per task type, for one workflow name ("" = learned across all runs).
class Baselines {
public:
    Baselines() = default;
    explicit Baselines(std::string workflow_name) : workflow_name_(std::move(workflow_name)) {}

    /// Sets (replaces) the baseline of `task_type`.
    void set(std::string task_type, TypeBaseline b) { types_[std::move(task_type)] = std::move(b); }
    /// The baseline of `task_type`, whatever its sample count, or nullptr.
    const TypeBaseline* find(std::string_view task_type) const {
        auto it = types_.find(task_type);
        return it == types_.end() ? nullptr : &it->second;
    }
    const std::map<std::string, TypeBaseline, std::less<>>& types() const noexcept { return types_; }
    bool empty() const noexcept { return types_.empty(); }
    std::size_t size() const noexcept { return types_.size(); }
    const std::string& workflow_name() const noexcept { return workflow_name_; }

    friend bool operator==(const Baselines&, const Baselines&) = default;

private:
    std::string workflow_name_;
    std::map<std::string, TypeBaseline, std::less<>> types_;
};

/// What a task is expected to take, and why.
struct Expectation {
    std::optional<double> seconds;           ///< the expected duration chosen; nullopt when there is none
    ExpectationBasis basis = ExpectationBasis::none;
    bool overrides_inventory = false;        ///< history chosen over an inventory estimate far from it
    std::optional<double> inventory_seconds; ///< the inventory's estimate when usable (> 0), chosen or not
    std::optional<TypeBaseline> history;     ///< the learned baseline when usable (enough samples), chosen or not
    friend bool operator==(const Expectation&, const Expectation&) = default;
};

/// A learned baseline that can be used: enough samples and a positive, finite P50.
inline bool usable_baseline(const TypeBaseline* b, const BaselineOptions& o) noexcept {
    return b && b->samples >= std::max<std::size_t>(1, o.min_samples) && std::isfinite(b->p50_seconds) &&
           b->p50_seconds > 0;
}

/// The decision (pure): with no usable estimate, none; with one, that one; with both, the inventory's unless the
/// learned P50 and the inventory's estimate are more than `override_factor` apart either way, then the learned one
/// (overrides_inventory). An inventory estimate is usable when it is finite and > 0.
inline Expectation choose_expectation(std::optional<double> inventory_seconds, const TypeBaseline* history,
                                      const BaselineOptions& options) {
    Expectation e;
    if (inventory_seconds && std::isfinite(*inventory_seconds) && *inventory_seconds > 0)
        e.inventory_seconds = inventory_seconds;
    if (usable_baseline(history, options)) e.history = *history;
    if (e.inventory_seconds && e.history) {
        const double inv = *e.inventory_seconds, hist = e.history->p50_seconds;
        const double factor = options.override_factor;
        const bool apart = std::isfinite(factor) && factor >= 1 && std::max(inv / hist, hist / inv) > factor;
        if (apart) {
            e.seconds = hist;
            e.basis = ExpectationBasis::history;
            e.overrides_inventory = true;
        } else {
            e.seconds = inv;
            e.basis = ExpectationBasis::inventory;
        }
    } else if (e.history) {
        e.seconds = e.history->p50_seconds;
        e.basis = ExpectationBasis::history;
    } else if (e.inventory_seconds) {
        e.seconds = e.inventory_seconds;
        e.basis = ExpectationBasis::inventory;
    }
    return e;
}

/// The same for a task type looked up in `baselines`.
inline Expectation choose_expectation(std::optional<double> inventory_seconds, const Baselines& baselines,
                                      std::string_view task_type, const BaselineOptions& options) {
    return choose_expectation(inventory_seconds, baselines.find(task_type), options);
}

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_BASELINES_HPP
