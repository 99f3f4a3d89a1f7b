// The metrics API (metrics.k8s.io/v1beta1): the request target of a namespace's PodMetrics list and a pure,
// bounded parser of its answer into kube::PodMetrics (objects.hpp), quantities read with kube/quantity.hpp.
//
//   {"kind":"PodMetricsList","items":[{"metadata":{"name":"p","namespace":"ns"},"timestamp":"…Z","window":"30s",
//     "containers":[{"name":"c","usage":{"cpu":"250m","memory":"512Mi"}}]}]}
//
// Malformed input throws MetricsParseError whose what() names the place ("items[3].containers[0].usage.memory:
// not a quantity"); nothing else escapes, and nothing grows past the documented limits.
#ifndef EXECUTION_SENTINEL_KUBE_METRICS_HPP
#define EXECUTION_SENTINEL_KUBE_METRICS_HPP

#include <execution_sentinel/kube/detail/http_util.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/quantity.hpp>
#include <execution_sentinel/kube/rfc3339.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

/// An answer of the metrics API that is not a PodMetricsList this parser accepts; what() names the field.
class MetricsParseError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// Limits of parse_pod_metrics_list: a larger answer is refused (MetricsParseError), never partly kept.
struct MetricsLimits {
    std::size_t max_body_bytes = std::size_t{32} << 20; ///< of the JSON text
    std::size_t max_items = 100'000;                    ///< pods in one list
    std::size_t max_containers = 64;                    ///< containers of one pod
    std::size_t max_name_bytes = 253;                   ///< pod, namespace and container names
};

/// "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods[?labelSelector=…]".
inline std::string pod_metrics_target(std::string_view ns, std::string_view label_selector) {
    std::string t = "/apis/metrics.k8s.io/v1beta1/namespaces/" + escape_path_segment(ns) + "/pods";
    if (!label_selector.empty()) {
        QueryString q;
        q.add("labelSelector", label_selector);
        t += q.str();
    }
    return t;
}

/// A Go duration as the metrics API writes its window ("30s", "1m0.5s", "15.003s", "500ms"), in seconds;
/// nullopt when malformed, negative or longer than 64 characters.
inline std::optional<double> parse_go_duration(std::string_view s) noexcept {
    if (s.empty() || s.size() > 64) return std::nullopt;
    if (s == "0") return 0.0;
    double total = 0;
    std::size_t i = 0;
    while (i < s.size()) {
        double value = 0;
        bool digits = false;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
            value = value * 10 + (s[i] - '0');
            digits = true;
        }
        if (i < s.size() && s[i] == '.') {
            double scale = 0.1;
            for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, scale /= 10) {
                value += (s[i] - '0') * scale;
                digits = true;
            }
        }
        if (!digits) return std::nullopt;
        std::size_t j = i;
        while (j < s.size() && !(s[j] >= '0' && s[j] <= '9') && s[j] != '.') ++j;
        std::string_view unit = s.substr(i, j - i);
        double factor = 0;
        if (unit == "h") factor = 3600;
        else if (unit == "m") factor = 60;
        else if (unit == "s") factor = 1;
        else if (unit == "ms") factor = 1e-3;
        else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") factor = 1e-6;
        else if (unit == "ns") factor = 1e-9;
        else return std::nullopt;
        total += value * factor;
        i = j;
    }
    if (!std::isfinite(total)) return std::nullopt;
    return total;
}

namespace detail {

struct MetricsReader {
    const MetricsLimits& limits;

    [[noreturn]] static void fail(const std::string& path, const std::string& problem) {
        throw MetricsParseError("PodMetricsList: " + path + ": " + problem);
    }

    static std::string shown(std::string_view s) {
        std::string out = "\"";
        for (char c : s.substr(0, 40)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
        if (s.size() > 40) out += "…";
        return out + "\"";
    }

    static const boost::json::object& object(const boost::json::value& v, const std::string& path) {
        if (!v.is_object()) fail(path, "expected an object");
        return v.get_object();
    }

    std::string name(const boost::json::object& o, std::string_view key, const std::string& path, bool required) const {
        const auto* v = o.if_contains(key);
        if (!v || v->is_null()) {
            if (required) fail(path + "." + std::string(key), "required");
            return {};
        }
        if (!v->is_string()) fail(path + "." + std::string(key), "expected a string");
        const auto& s = v->get_string();
        if (s.size() > limits.max_name_bytes)
            fail(path + "." + std::string(key), "longer than " + std::to_string(limits.max_name_bytes) + " bytes");
        if (required && s.empty()) fail(path + "." + std::string(key), "must not be empty");
        return std::string(s);
    }

    PodMetrics::Container container(const boost::json::value& v, const std::string& path) const {
        const auto& o = object(v, path);
        PodMetrics::Container c;
        c.name = name(o, "name", path, false);
        const auto* usage = o.if_contains("usage");
        if (!usage || usage->is_null()) return c;
        const auto& u = object(*usage, path + ".usage");
        if (const auto* cpu = u.if_contains("cpu"); cpu && !cpu->is_null()) {
            if (!cpu->is_string()) fail(path + ".usage.cpu", "expected a quantity string");
            auto q = parse_quantity(cpu->get_string());
            if (!q || *q > 1e9) fail(path + ".usage.cpu", "not a CPU quantity: " + shown(cpu->get_string()));
            c.cpu_cores = *q;
        }
        if (const auto* mem = u.if_contains("memory"); mem && !mem->is_null()) {
            if (!mem->is_string()) fail(path + ".usage.memory", "expected a quantity string");
            auto q = parse_memory_bytes(mem->get_string());
            if (!q) fail(path + ".usage.memory", "not a memory quantity: " + shown(mem->get_string()));
            c.memory_bytes = *q;
        }
        return c;
    }

    PodMetrics item(const boost::json::value& v, const std::string& path) const {
        const auto& o = object(v, path);
        PodMetrics m;
        const auto* meta = o.if_contains("metadata");
        if (!meta) fail(path + ".metadata", "required");
        const auto& mo = object(*meta, path + ".metadata");
        m.name = name(mo, "name", path + ".metadata", true);
        m.namespace_ = name(mo, "namespace", path + ".metadata", false);
        if (const auto* ts = o.if_contains("timestamp"); ts && !ts->is_null()) {
            if (!ts->is_string()) fail(path + ".timestamp", "expected an RFC 3339 time");
            auto t = parse_rfc3339(ts->get_string());
            if (!t) fail(path + ".timestamp", "not an RFC 3339 time: " + shown(ts->get_string()));
            m.timestamp = *t;
        }
        if (const auto* w = o.if_contains("window"); w && !w->is_null()) {
            if (!w->is_string()) fail(path + ".window", "expected a duration such as \"30s\"");
            auto d = parse_go_duration(w->get_string());
            if (!d) fail(path + ".window", "not a duration: " + shown(w->get_string()));
            m.window_seconds = *d;
        }
        if (const auto* cs = o.if_contains("containers"); cs && !cs->is_null()) {
            if (!cs->is_array()) fail(path + ".containers", "expected an array");
            const auto& a = cs->get_array();
            if (a.size() > limits.max_containers)
                fail(path + ".containers", std::to_string(a.size()) + " containers, more than the limit of " +
                                               std::to_string(limits.max_containers));
            m.containers.reserve(a.size());
            for (std::size_t i = 0; i < a.size(); ++i)
                m.containers.push_back(container(a[i], path + ".containers[" + std::to_string(i) + "]"));
        }
        return m;
    }
};

} // namespace detail

/// The `items` of a PodMetricsList answer (JSON already parsed), checked: the root is an object, `kind` (when
/// given) is PodMetricsList, `items` is there and an array of at most limits.max_items. nullptr for `"items": null`.
inline const boost::json::array* pod_metrics_items(const boost::json::value& body, const MetricsLimits& limits = {}) {
    const auto& o = detail::MetricsReader::object(body, "(root)");
    if (const auto* kind = o.if_contains("kind"); kind && kind->is_string() && kind->get_string() != "PodMetricsList")
        detail::MetricsReader::fail("kind", "expected PodMetricsList, got " + detail::MetricsReader::shown(kind->get_string()));
    const auto* items = o.if_contains("items");
    if (!items) detail::MetricsReader::fail("items", "required");
    if (items->is_null()) return nullptr;
    if (!items->is_array()) detail::MetricsReader::fail("items", "expected an array");
    const auto& a = items->get_array();
    if (a.size() > limits.max_items)
        detail::MetricsReader::fail("items", std::to_string(a.size()) + " pods, more than the limit of " +
                                                 std::to_string(limits.max_items));
    return &a;
}

/// The pods of a PodMetricsList answer (JSON already parsed). Throws MetricsParseError naming the field: not an
/// object, `items` missing or not an array, more items or containers than the limits, a pod without a name, a
/// quantity, time or window that does not parse. Fields it does not know are ignored.
inline std::vector<PodMetrics> parse_pod_metrics_list(const boost::json::value& body, const MetricsLimits& limits = {}) {
    const auto* a = pod_metrics_items(body, limits);
    if (!a) return {};
    detail::MetricsReader r{limits};
    std::vector<PodMetrics> out;
    out.reserve(a->size());
    for (std::size_t i = 0; i < a->size(); ++i) out.push_back(r.item((*a)[i], "items[" + std::to_string(i) + "]"));
    return out;
}

/// The same from the answer's text: also refuses a text over limits.max_body_bytes, invalid JSON and nesting
/// deeper than 32 levels.
inline std::vector<PodMetrics> parse_pod_metrics_list(std::string_view text, const MetricsLimits& limits = {}) {
    if (text.size() > limits.max_body_bytes)
        throw MetricsParseError("PodMetricsList: the answer has " + std::to_string(text.size()) +
                                " bytes, more than the limit of " + std::to_string(limits.max_body_bytes));
    boost::json::parse_options po;
    po.max_depth = 32;
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec, {}, po);
    if (ec) throw MetricsParseError("PodMetricsList: (root): not valid JSON (" + ec.message() + ")");
    return parse_pod_metrics_list(v, limits);
}

/// parse_pod_metrics_list(text) in steps, for a caller that must not be busy for the whole of a large answer at
/// once (the Sentinel, between two watch events): the text is fed in pieces of any size, parsed as they come,
/// then the pods are read a batch at a time. The result and the errors are those of parse_pod_metrics_list(text),
/// and as there, nothing is kept of an answer that fails: the caller uses the pods once done() is true.
///
///   PodMetricsListReader r(limits);
///   for (each piece) r.feed(piece);   // yield between pieces
///   r.finish();
///   while (!r.done()) r.read(500);    // yield between batches
///   auto pods = r.take();
class PodMetricsListReader {
public:
    explicit PodMetricsListReader(const MetricsLimits& limits = {}) : limits_(limits), parser_({}, options()) {
        // The tree lives in one arena: it is built without an allocation per value and dropped at once (freeing a
        // 10,000-pod tree value by value took milliseconds).
        parser_.reset(&arena_);
    }

    /// Parses the next piece of the text. Throws MetricsParseError (over the size limit, not valid JSON).
    void feed(std::string_view piece) {
        if (finished_) throw std::logic_error("PodMetricsListReader::feed after finish");
        fed_ += piece.size();
        if (fed_ > limits_.max_body_bytes)
            throw MetricsParseError("PodMetricsList: the answer has more than " + std::to_string(limits_.max_body_bytes) +
                                    " bytes, the limit");
        boost::system::error_code ec;
        parser_.write(piece.data(), piece.size(), ec);
        if (ec) throw MetricsParseError("PodMetricsList: (root): not valid JSON (" + ec.message() + ")");
    }

    /// The end of the text: checks the document as parse_pod_metrics_list does before reading its items.
    void finish() {
        if (finished_) return;
        boost::system::error_code ec;
        parser_.finish(ec);
        if (ec) throw MetricsParseError("PodMetricsList: (root): not valid JSON (" + ec.message() + ")");
        finished_ = true;
        body_.emplace(parser_.release()); // constructed, not assigned: it keeps the arena
        items_ = pod_metrics_items(*body_, limits_);
        if (items_) out_.reserve(items_->size());
    }

    /// Reads up to `n` more pods (at least one). Throws MetricsParseError naming the first bad one.
    void read(std::size_t n) {
        if (!finished_) throw std::logic_error("PodMetricsListReader::read before finish");
        if (!items_) return;
        detail::MetricsReader r{limits_};
        for (std::size_t end = std::min(items_->size(), next_ + std::max<std::size_t>(n, 1)); next_ < end; ++next_)
            out_.push_back(r.item((*items_)[next_], "items[" + std::to_string(next_) + "]"));
    }

    /// Whether every pod has been read.
    bool done() const noexcept { return finished_ && (!items_ || next_ == items_->size()); }

    /// The pods, once done().
    std::vector<PodMetrics> take() {
        if (!done()) throw std::logic_error("PodMetricsListReader::take before done");
        items_ = nullptr;
        body_.reset();
        return std::move(out_);
    }

private:
    static boost::json::parse_options options() {
        boost::json::parse_options po;
        po.max_depth = 32;
        return po;
    }

    MetricsLimits limits_;
    boost::json::monotonic_resource arena_; // before parser_ and body_, which use it
    boost::json::stream_parser parser_;
    std::size_t fed_ = 0;
    bool finished_ = false;
    std::optional<boost::json::value> body_;
    const boost::json::array* items_ = nullptr;
    std::size_t next_ = 0;
    std::vector<PodMetrics> out_;
};

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_METRICS_HPP
