// Prometheus metrics without an external library: a Registry of counter, gauge and histogram families with
// label sets, bounded cardinality, lock-free updates, and the Prometheus text exposition format 0.0.4.
//
// Usage:
//   es::serve::Registry registry;
//   auto& reports = registry.counter("execution_sentinel_reports_total", "Reports emitted.", {"type", "severity"});
//   auto oom = reports.with({"ANOMALY_OOMKILL", "error"});   // look up once (takes the family's mutex) ...
//   oom.inc();                                                // ... then update lock-free (one atomic add)
//   std::string text = registry.expose();                     // what GET /metrics answers
//
// Cardinality: each family holds at most FamilyOptions::max_series label combinations. A new combination beyond
// that is refused: its updates go to the family's one overflow series (every label "__overflow__") and it is
// counted, once per distinct combination, in execution_sentinel_metric_series_dropped_total{family="…"}. Label
// values longer than 256 bytes are cut to 256 bytes. remove() and remove_where() free room (a finished run's
// series); a handle to a removed series stays valid but is no longer exposed.
//
// Thread safety: every member function may be called from any thread. Updates through a handle (Counter::inc,
// Gauge::set, Histogram::observe) are atomic operations without a lock; with() and remove() take the family's
// mutex; expose() takes each family's mutex only to copy its list of series.
//
// Exposition (prometheus.io/docs/instrumenting/exposition_formats, version 0.0.4): families sorted by name, each
// with `# HELP` (backslash and line feed escaped) and `# TYPE`, then its series sorted by label values; label
// values escaped (backslash, double quote, line feed) and invalid UTF-8 replaced by U+FFFD; histograms as
// cumulative `_bucket{le="…"}` up to `le="+Inf"`, then `_sum` and `_count` (equal to the +Inf bucket). Values are
// integers when they are whole numbers below 1e15, else the shortest round-trip decimal; NaN, +Inf, -Inf as
// Prometheus spells them. A family with no series yet shows only its HELP and TYPE lines.
#ifndef EXECUTION_SENTINEL_SERVE_METRICS_HPP
#define EXECUTION_SENTINEL_SERVE_METRICS_HPP

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace execution_sentinel::serve {

/// The Content-Type of the text exposition format this registry writes.
inline constexpr std::string_view exposition_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// The value every label of a family's overflow series has.
inline constexpr std::string_view overflow_label_value = "__overflow__";

/// Label values are cut to this many bytes (a hostile task name cannot grow the exposition without bound).
inline constexpr std::size_t max_label_value_bytes = 256;

/// The family that counts refused label combinations, one series per family (registered by every Registry).
inline constexpr std::string_view series_dropped_family = "execution_sentinel_metric_series_dropped_total";

enum class MetricType : std::uint8_t { counter, gauge, histogram };

inline constexpr std::string_view to_string(MetricType t) noexcept {
    switch (t) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
    }
    return "untyped";
}

/// Limits of one family. Aggregate: use designated initializers.
struct FamilyOptions {
    /// Label combinations (series) the family holds at most, besides its overflow series. Default 1000; 0 is read
    /// as 1. A family without labels has exactly one series.
    std::size_t max_series = 1000;
};

/// A metric or label name, a duplicate family, or a wrong number of label values: a programming error.
class MetricDefinitionError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

// ------------------------------------------------------------------------------------------------ text helpers

namespace detail {

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
inline bool is_valid_metric_name(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with "__" (reserved for Prometheus).
inline bool is_valid_label_name(std::string_view s) noexcept {
    if (s.empty() || s.starts_with("__")) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

/// The length of the valid UTF-8 sequence starting at s[i], or 0 when s[i] starts none (overlong forms,
/// surrogates and code points above U+10FFFF are invalid).
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80) return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c == 0xE0) n = 3, lo = 0xA0;
    else if (c == 0xED) n = 3, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) n = 3;
    else if (c == 0xF0) n = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) n = 4;
    else if (c == 0xF4) n = 4, hi = 0x8F;
    else return 0;
    if (i + n > s.size()) return 0;
    if (b(i + 1) < lo || b(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
    return n;
}

/// `s` with every byte that does not start a valid UTF-8 sequence replaced by U+FFFD (for text that goes into
/// JSON or the exposition and came from outside).
inline std::string to_valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence_length(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
            continue;
        }
        out.append(s.substr(i, n));
        i += n;
    }
    return out;
}

/// Appends `s` as a label value between double quotes would hold it: `\` `"` and line feed escaped, invalid UTF-8
/// replaced by U+FFFD.
inline void append_label_value(std::string& out, std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence_length(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
            continue;
        }
        if (n == 1) {
            const char c = s[i];
            if (c == '\\') out += "\\\\";
            else if (c == '"') out += "\\\"";
            else if (c == '\n') out += "\\n";
            else out += c;
        } else {
            out.append(s.substr(i, n));
        }
        i += n;
    }
}

/// Appends HELP text: `\` and line feed escaped, invalid UTF-8 replaced by U+FFFD.
inline void append_help_text(std::string& out, std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence_length(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
            continue;
        }
        if (n == 1 && s[i] == '\\') out += "\\\\";
        else if (n == 1 && s[i] == '\n') out += "\\n";
        else out.append(s.substr(i, n));
        i += n;
    }
}

/// Appends a sample value: "NaN", "+Inf", "-Inf", an integer for whole numbers below 1e15, else the shortest
/// decimal that reads back as the same double.
inline void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[64];
    std::to_chars_result r;
    if (v == std::trunc(v) && std::fabs(v) < 1e15)
        r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
    else
        r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

/// `s` cut to at most max_label_value_bytes.
inline std::string bounded_label_value(std::string_view s) {
    return std::string(s.substr(0, std::min(s.size(), max_label_value_bytes)));
}

inline void atomic_add(std::atomic<double>& a, double v) noexcept {
    double old = a.load(std::memory_order_relaxed);
    while (!a.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
    }
}

} // namespace detail

// ------------------------------------------------------------------------------------------------ series

/// The value of one counter series: only goes up.
class CounterSeries {
public:
    /// Adds `v`; negative values and NaN are ignored (a counter never goes down).
    void inc(double v = 1) noexcept {
        if (!(v >= 0)) return;
        detail::atomic_add(value_, v);
    }
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> value_{0};
};

/// The value of one gauge series.
class GaugeSeries {
public:
    void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
    void inc(double v = 1) noexcept { detail::atomic_add(value_, v); }
    void dec(double v = 1) noexcept { detail::atomic_add(value_, -v); }
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> value_{0};
};

/// Counts of one histogram series, per bucket (not cumulative), plus the sum of observations.
class HistogramSeries {
public:
    /// `bounds` are the buckets' upper bounds, ascending and finite (the +Inf bucket is implicit).
    explicit HistogramSeries(std::shared_ptr<const std::vector<double>> bounds)
        : bounds_(std::move(bounds)), counts_(bounds_->size() + 1) {}

    /// Counts `v` in the first bucket whose upper bound is >= v (the +Inf bucket when none is); NaN is ignored.
    void observe(double v) noexcept {
        if (std::isnan(v)) return;
        const auto it = std::lower_bound(bounds_->begin(), bounds_->end(), v);
        counts_[static_cast<std::size_t>(it - bounds_->begin())].fetch_add(1, std::memory_order_relaxed);
        detail::atomic_add(sum_, v);
    }

    struct Snapshot {
        std::vector<std::uint64_t> cumulative; ///< one per bound, then +Inf (== count)
        double sum = 0;
        std::uint64_t count() const noexcept { return cumulative.empty() ? 0 : cumulative.back(); }
    };
    /// Cumulative counts up to +Inf; `_count` is the +Inf bucket, so the two always agree.
    Snapshot snapshot() const {
        Snapshot s;
        s.cumulative.reserve(counts_.size());
        std::uint64_t total = 0;
        for (auto& c : counts_) {
            total += c.load(std::memory_order_relaxed);
            s.cumulative.push_back(total);
        }
        s.sum = sum_.load(std::memory_order_relaxed);
        return s;
    }
    const std::vector<double>& bounds() const noexcept { return *bounds_; }

private:
    std::shared_ptr<const std::vector<double>> bounds_;
    std::vector<std::atomic<std::uint64_t>> counts_;
    std::atomic<double> sum_{0};
};

/// Handles: cheap to copy, updated without a lock. A default-constructed handle ignores updates (an optional
/// metric that was not wired).
class Counter {
public:
    Counter() = default;
    explicit Counter(std::shared_ptr<CounterSeries> s) : s_(std::move(s)) {}
    void inc(double v = 1) const noexcept {
        if (s_) s_->inc(v);
    }
    double value() const noexcept { return s_ ? s_->value() : 0; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

private:
    std::shared_ptr<CounterSeries> s_;
};

class Gauge {
public:
    Gauge() = default;
    explicit Gauge(std::shared_ptr<GaugeSeries> s) : s_(std::move(s)) {}
    void set(double v) const noexcept {
        if (s_) s_->set(v);
    }
    void inc(double v = 1) const noexcept {
        if (s_) s_->inc(v);
    }
    void dec(double v = 1) const noexcept {
        if (s_) s_->dec(v);
    }
    double value() const noexcept { return s_ ? s_->value() : 0; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

private:
    std::shared_ptr<GaugeSeries> s_;
};

class Histogram {
public:
    Histogram() = default;
    explicit Histogram(std::shared_ptr<HistogramSeries> s) : s_(std::move(s)) {}
    void observe(double v) const noexcept {
        if (s_) s_->observe(v);
    }
    HistogramSeries::Snapshot snapshot() const { return s_ ? s_->snapshot() : HistogramSeries::Snapshot{}; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

private:
    std::shared_ptr<HistogramSeries> s_;
};

// ------------------------------------------------------------------------------------------------ families

/// What every family shares: its name, help, type, label names, limits, and its exposition.
class FamilyBase {
public:
    FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> labels,
               FamilyOptions options)
        : name_(std::move(name)), help_(std::move(help)), type_(type), labels_(std::move(labels)),
          options_(options) {
        if (options_.max_series == 0) options_.max_series = 1;
    }
    virtual ~FamilyBase() = default;
    FamilyBase(const FamilyBase&) = delete;
    FamilyBase& operator=(const FamilyBase&) = delete;

    const std::string& name() const noexcept { return name_; }
    const std::string& help() const noexcept { return help_; }
    MetricType type() const noexcept { return type_; }
    const std::vector<std::string>& label_names() const noexcept { return labels_; }
    const FamilyOptions& options() const noexcept { return options_; }

    /// Appends this family in the text format.
    virtual void expose(std::string& out) const = 0;
    /// Series held now (the overflow series excluded).
    virtual std::size_t size() const = 0;

protected:
    void append_header(std::string& out) const {
        out += "# HELP ";
        out += name_;
        out += ' ';
        detail::append_help_text(out, help_);
        out += "\n# TYPE ";
        out += name_;
        out += ' ';
        out += to_string(type_);
        out += '\n';
    }
    /// `name{a="x",b="y"}` (or `name` without labels); `extra` is one more label (histogram `le`).
    void append_sample_name(std::string& out, std::string_view suffix, const std::vector<std::string>& values,
                            std::string_view extra_name = {}, std::string_view extra_value = {}) const {
        out += name_;
        out += suffix;
        if (labels_.empty() && extra_name.empty()) return;
        out += '{';
        bool first = true;
        for (std::size_t i = 0; i < labels_.size(); ++i) {
            if (!first) out += ',';
            first = false;
            out += labels_[i];
            out += "=\"";
            detail::append_label_value(out, values[i]);
            out += '"';
        }
        if (!extra_name.empty()) {
            if (!first) out += ',';
            out += extra_name;
            out += "=\"";
            out += extra_value;
            out += '"';
        }
        out += '}';
    }

    std::string name_;
    std::string help_;
    MetricType type_;
    std::vector<std::string> labels_;
    FamilyOptions options_;
};

/// One family of series of type `Series` (CounterSeries, GaugeSeries or HistogramSeries).
template <class Series, class Handle> class Family final : public FamilyBase {
public:
    /// Made by Registry; `make` builds a new series, `dropped` counts refused label combinations.
    Family(std::string name, std::string help, MetricType type, std::vector<std::string> labels,
           FamilyOptions options, std::function<std::shared_ptr<Series>()> make, Counter dropped)
        : FamilyBase(std::move(name), std::move(help), type, std::move(labels), options), make_(std::move(make)),
          dropped_(std::move(dropped)) {
        if (labels_.empty()) series_.emplace(std::vector<std::string>{}, make_());
    }

    /// The series with these label values (in the order of the family's label names), created when new; the
    /// overflow series when the family is full. Throws MetricDefinitionError for a wrong number of values.
    /// Look a series up once and keep its handle where updates are frequent.
    Handle with(std::initializer_list<std::string_view> values) {
        return with(std::span<const std::string_view>(values.begin(), values.size()));
    }
    Handle with(std::span<const std::string_view> values) {
        std::vector<std::string> key;
        key.reserve(values.size());
        for (auto v : values) key.push_back(detail::bounded_label_value(v));
        return find_or_create(std::move(key));
    }
    Handle with(std::span<const std::string> values) {
        std::vector<std::string> key;
        key.reserve(values.size());
        for (auto& v : values) key.push_back(detail::bounded_label_value(v));
        return find_or_create(std::move(key));
    }

    /// The only series of a family without labels.
    Handle with() { return find_or_create({}); }

    /// Removes the series with these label values; false when there is none.
    bool remove(std::initializer_list<std::string_view> values) {
        std::vector<std::string> key;
        for (auto v : values) key.push_back(detail::bounded_label_value(v));
        std::lock_guard lock(mutex_);
        return series_.erase(key) > 0;
    }

    /// Removes every series whose label `label` equals `value`; returns how many.
    std::size_t remove_where(std::string_view label, std::string_view value) {
        return remove_where({std::pair{label, value}});
    }

    /// Removes every series whose labels have all these values (label name, value); returns how many. An unknown
    /// label name matches nothing.
    std::size_t remove_where(std::initializer_list<std::pair<std::string_view, std::string_view>> match) {
        std::vector<std::pair<std::size_t, std::string>> wanted;
        for (auto& [label, value] : match) {
            const auto it = std::find(labels_.begin(), labels_.end(), label);
            if (it == labels_.end()) return 0;
            wanted.emplace_back(static_cast<std::size_t>(it - labels_.begin()), detail::bounded_label_value(value));
        }
        std::lock_guard lock(mutex_);
        return std::erase_if(series_, [&](const auto& kv) {
            for (auto& [index, value] : wanted)
                if (kv.first[index] != value) return false;
            return true;
        });
    }

    std::size_t size() const override {
        std::lock_guard lock(mutex_);
        return series_.size();
    }

    void expose(std::string& out) const override {
        std::vector<std::pair<std::vector<std::string>, std::shared_ptr<Series>>> copy;
        std::shared_ptr<Series> overflow;
        {
            std::lock_guard lock(mutex_);
            copy.assign(series_.begin(), series_.end());
            overflow = overflow_;
        }
        if (overflow)
            copy.emplace_back(std::vector<std::string>(labels_.size(), std::string(overflow_label_value)), overflow);
        append_header(out);
        for (auto& [values, series] : copy) append_series(out, values, *series);
    }

private:
    Handle find_or_create(std::vector<std::string> key) {
        if (key.size() != labels_.size())
            throw MetricDefinitionError("metric " + name_ + ": expected " + std::to_string(labels_.size()) +
                                        " label values, got " + std::to_string(key.size()));
        bool refused = false;
        Handle h;
        {
            std::lock_guard lock(mutex_);
            if (auto it = series_.find(key); it != series_.end()) return Handle(it->second);
            if (series_.size() < options_.max_series) {
                auto s = make_();
                series_.emplace(std::move(key), s);
                return Handle(std::move(s));
            }
            if (!overflow_) overflow_ = make_();
            refused = note_refused(key);
            h = Handle(overflow_);
        }
        if (refused) dropped_.inc();
        return h;
    }

    /// Whether `key` was not refused before (exact for the first 65,536 distinct combinations, then every
    /// refusal counts).
    bool note_refused(const std::vector<std::string>& key) {
        std::size_t hash = 0;
        for (auto& v : key) hash = hash * 1000003u ^ std::hash<std::string>{}(v);
        if (refused_.size() >= 65536) return true;
        return refused_.insert(hash).second;
    }

    void append_series(std::string& out, const std::vector<std::string>& values, const Series& s) const {
        if constexpr (std::is_same_v<Series, HistogramSeries>) {
            const auto snap = s.snapshot();
            const auto& bounds = s.bounds();
            std::string le;
            for (std::size_t i = 0; i < bounds.size(); ++i) {
                le.clear();
                detail::append_number(le, bounds[i]);
                append_sample_name(out, "_bucket", values, "le", le);
                out += ' ';
                detail::append_number(out, static_cast<double>(snap.cumulative[i]));
                out += '\n';
            }
            append_sample_name(out, "_bucket", values, "le", "+Inf");
            out += ' ';
            detail::append_number(out, static_cast<double>(snap.count()));
            out += '\n';
            append_sample_name(out, "_sum", values);
            out += ' ';
            detail::append_number(out, snap.sum);
            out += '\n';
            append_sample_name(out, "_count", values);
            out += ' ';
            detail::append_number(out, static_cast<double>(snap.count()));
            out += '\n';
        } else {
            append_sample_name(out, "", values);
            out += ' ';
            detail::append_number(out, s.value());
            out += '\n';
        }
    }

    std::function<std::shared_ptr<Series>()> make_;
    Counter dropped_;
    mutable std::mutex mutex_;
    std::map<std::vector<std::string>, std::shared_ptr<Series>> series_;
    std::shared_ptr<Series> overflow_;
    std::unordered_set<std::size_t> refused_;
};

using CounterFamily = Family<CounterSeries, Counter>;
using GaugeFamily = Family<GaugeSeries, Gauge>;
using HistogramFamily = Family<HistogramSeries, Histogram>;

/// client_golang's DefBuckets, in seconds: .005 … 10 ("tailored to network service response times").
inline std::vector<double> default_buckets() { return {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}; }

// ------------------------------------------------------------------------------------------------ registry

/// The set of families one /metrics endpoint exposes.
class Registry {
public:
    Registry() {
        auto fam = std::make_unique<CounterFamily>(
            std::string(series_dropped_family),
            "Label combinations refused because their metric family was full (their updates went to the "
            "family's overflow series).",
            MetricType::counter, std::vector<std::string>{"family"}, FamilyOptions{.max_series = 10000},
            [] { return std::make_shared<CounterSeries>(); }, Counter{});
        dropped_ = fam.get();
        families_.emplace(fam->name(), std::move(fam));
    }
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    /// A counter family; `name` must end in `_total`. Registering the same name again with the same type and
    /// labels returns the existing family; with anything else it throws MetricDefinitionError.
    CounterFamily& counter(std::string name, std::string help, std::vector<std::string> labels = {},
                           FamilyOptions options = {}) {
        if (!name.ends_with("_total"))
            throw MetricDefinitionError("counter " + name + ": a counter's name ends in _total");
        return add<CounterFamily>(std::move(name), std::move(help), MetricType::counter, std::move(labels), options,
                                  [] { return std::make_shared<CounterSeries>(); });
    }

    /// A gauge family; `name` must not end in `_total`.
    GaugeFamily& gauge(std::string name, std::string help, std::vector<std::string> labels = {},
                       FamilyOptions options = {}) {
        if (name.ends_with("_total"))
            throw MetricDefinitionError("gauge " + name + ": only counters end in _total");
        return add<GaugeFamily>(std::move(name), std::move(help), MetricType::gauge, std::move(labels), options,
                                [] { return std::make_shared<GaugeSeries>(); });
    }

    /// A histogram family with these bucket upper bounds (finite, strictly ascending, at least one; +Inf is
    /// added); no label may be called `le`.
    HistogramFamily& histogram(std::string name, std::string help, std::vector<std::string> labels,
                               std::vector<double> buckets, FamilyOptions options = {}) {
        if (buckets.empty()) throw MetricDefinitionError("histogram " + name + ": needs at least one bucket");
        for (std::size_t i = 0; i < buckets.size(); ++i)
            if (!std::isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
                throw MetricDefinitionError("histogram " + name + ": buckets must be finite and strictly ascending");
        if (std::find(labels.begin(), labels.end(), "le") != labels.end())
            throw MetricDefinitionError("histogram " + name + ": the label name le is reserved");
        if (name.ends_with("_total") || name.ends_with("_bucket") || name.ends_with("_sum") ||
            name.ends_with("_count"))
            throw MetricDefinitionError("histogram " + name + ": a histogram's name takes no _total, _bucket, _sum "
                                                              "or _count suffix");
        auto bounds = std::make_shared<const std::vector<double>>(std::move(buckets));
        auto& f = add<HistogramFamily>(std::move(name), std::move(help), MetricType::histogram, std::move(labels),
                                       options, [bounds] { return std::make_shared<HistogramSeries>(bounds); });
        return f;
    }

    /// The text exposition (format 0.0.4) of every family, sorted by name.
    std::string expose() const {
        std::string out;
        expose(out);
        return out;
    }
    void expose(std::string& out) const {
        std::lock_guard lock(mutex_);
        for (auto& [name, family] : families_) family->expose(out);
    }

    /// The family called `name`, or nullptr.
    const FamilyBase* find(std::string_view name) const {
        std::lock_guard lock(mutex_);
        auto it = families_.find(name);
        return it == families_.end() ? nullptr : it->second.get();
    }

    /// The refused label combinations of family `name` so far.
    double series_dropped(std::string_view name) { return dropped_->with({name}).value(); }

private:
    template <class F, class Make>
    F& add(std::string name, std::string help, MetricType type, std::vector<std::string> labels,
           FamilyOptions options, Make make) {
        if (!detail::is_valid_metric_name(name))
            throw MetricDefinitionError("metric name " + name + " is not valid ([a-zA-Z_:][a-zA-Z0-9_:]*)");
        for (std::size_t i = 0; i < labels.size(); ++i) {
            if (!detail::is_valid_label_name(labels[i]))
                throw MetricDefinitionError("metric " + name + ": label name " + labels[i] + " is not valid");
            for (std::size_t j = 0; j < i; ++j)
                if (labels[i] == labels[j])
                    throw MetricDefinitionError("metric " + name + ": label " + labels[i] + " appears twice");
        }
        std::lock_guard lock(mutex_);
        if (auto it = families_.find(name); it != families_.end()) {
            auto* existing = dynamic_cast<F*>(it->second.get());
            if (!existing || existing->label_names() != labels)
                throw MetricDefinitionError("metric " + name + " is already registered with another type or labels");
            return *existing;
        }
        Counter dropped = dropped_->with({name});
        auto fam = std::make_unique<F>(name, std::move(help), type, std::move(labels), options, std::move(make),
                                       std::move(dropped));
        auto& ref = *fam;
        families_.emplace(std::move(name), std::move(fam));
        return ref;
    }

    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<FamilyBase>, std::less<>> families_;
    CounterFamily* dropped_ = nullptr;
};

} // namespace execution_sentinel::serve

#endif // EXECUTION_SENTINEL_SERVE_METRICS_HPP
