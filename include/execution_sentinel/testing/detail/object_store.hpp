// The object store of the simulated cluster: objects by resource/namespace/name, one global increasing
// resourceVersion, and a bounded history of watch events. Pure: no I/O, no locking (the caller locks).
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_OBJECT_STORE_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_OBJECT_STORE_HPP

#include <execution_sentinel/testing/detail/resources.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <openssl/evp.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

namespace execution_sentinel::testing::detail {

/// A failure that has a Kubernetes `Status` answer (NotFound, AlreadyExists, Conflict, BadRequest, ...).
class StatusError : public std::runtime_error {
public:
    explicit StatusError(boost::json::object status)
        : std::runtime_error(std::string(status["message"].is_string() ? status["message"].as_string() : "")),
          status_(std::move(status)) {}
    const boost::json::object& status() const noexcept { return status_; }
    int code() const {
        const auto* c = status_.if_contains("code");
        return c != nullptr && c->is_int64() ? static_cast<int>(c->as_int64()) : 500;
    }

private:
    boost::json::object status_;
};

/// "2026-11-23T05:36:11Z" (RFC 3339, seconds) or with nine fraction digits (RFC 3339 Nano).
inline std::string format_rfc3339(std::chrono::system_clock::time_point t, bool nanos = false) {
    const auto secs = std::chrono::floor<std::chrono::seconds>(t);
    const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::string out(buf);
    if (nanos) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t - secs).count();
        char frac[16];
        std::snprintf(frac, sizeof frac, ".%09lld", static_cast<long long>(ns));
        out += frac;
    }
    out += 'Z';
    return out;
}

/// Parses RFC 3339 ("2026-11-23T05:36:11Z", optional fraction, "Z" or "+hh:mm"). nullopt when malformed.
inline std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
    int y, mo, d, h, mi, sec;
    if (s.size() < 20) return std::nullopt;
    const std::string head(s.substr(0, 19));
    char t;
    if (std::sscanf(head.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d", &y, &mo, &d, &t, &h, &mi, &sec) != 7 ||
        (t != 'T' && t != 't'))
        return std::nullopt;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
    std::size_t pos = 19;
    std::chrono::nanoseconds frac{0};
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        long long value = 0;
        int digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (digits < 9) { value = value * 10 + (s[pos] - '0'); ++digits; }
            ++pos;
        }
        if (digits == 0) return std::nullopt;
        while (digits++ < 9) value *= 10;
        frac = std::chrono::nanoseconds(value);
    }
    int offset_minutes = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh, om;
        if (std::sscanf(std::string(s.substr(pos + 1)).c_str(), "%2d:%2d", &oh, &om) != 2) return std::nullopt;
        offset_minutes = (oh * 60 + om) * (s[pos] == '+' ? 1 : -1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    const std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(static_cast<unsigned>(mo)),
                                          std::chrono::day(static_cast<unsigned>(d))};
    if (!ymd.ok()) return std::nullopt;
    auto tp = std::chrono::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) +
              std::chrono::seconds(sec) - std::chrono::minutes(offset_minutes);
    return std::chrono::time_point_cast<std::chrono::system_clock::duration>(tp) +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(frac);
}

inline std::string base64_encode(std::string_view data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
}

inline std::optional<std::string> base64_decode(std::string_view text) {
    if (text.empty() || text.size() % 4 != 0 || text.size() > 1 << 20) return std::nullopt;
    std::string out(3 * text.size() / 4 + 1, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    std::size_t size = static_cast<std::size_t>(n);
    if (text.ends_with("==")) size -= 2;
    else if (text.ends_with("=")) size -= 1;
    out.resize(size);
    return out;
}

inline std::string random_uid() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    const std::uint64_t a = rng(), b = rng();
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0x0fff),
                  static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                  static_cast<unsigned long long>(b & 0xffffffffffffULL));
    return buf;
}

/// One change, as retained for watches.
struct StoreEvent {
    std::uint64_t resource_version = 0;
    const ResourceInfo* resource = nullptr;
    std::string namespace_;
    std::string type;                             ///< ADDED, MODIFIED, DELETED
    boost::json::object object;                   ///< the object after the change (DELETED: last state, new RV)
    std::optional<boost::json::object> previous;  ///< MODIFIED: the object before the change
};

/// The outcome of `ObjectStore::events_after`.
struct EventsAfter {
    bool expired = false;                         ///< the requested RV is older than the retained window
    std::uint64_t oldest = 0;                     ///< the oldest RV a watch may still start from
    std::vector<const StoreEvent*> events;        ///< events with RV > the requested one, oldest first
};

inline boost::json::object& metadata_of(boost::json::object& obj) {
    boost::json::value& m = obj["metadata"];
    if (!m.is_object()) m = boost::json::object{};
    return m.as_object();
}

inline std::string metadata_string(const boost::json::object& obj, std::string_view field) {
    const auto* m = obj.if_contains("metadata");
    if (m == nullptr || !m->is_object()) return {};
    const auto* v = m->as_object().if_contains(field);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

/// Objects, resourceVersions and watch history. Not thread-safe.
class ObjectStore {
public:
    explicit ObjectStore(std::size_t history_limit = 10000) : history_limit_(history_limit == 0 ? 1 : history_limit) {}

    std::uint64_t resource_version() const noexcept { return rv_; }

    /// Stores a new object. Fills apiVersion/kind, metadata namespace/uid/resourceVersion/creationTimestamp
    /// (a given creationTimestamp is kept), honours generateName. Throws StatusError (409 AlreadyExists, 400).
    const StoreEvent& create(const ResourceInfo& r, std::string_view ns, boost::json::object obj) {
        check_type(r, obj);
        auto& meta = metadata_of(obj);
        check_namespace(meta, ns);
        std::string name = metadata_string(obj, "name");
        if (name.empty()) {
            const std::string prefix = metadata_string(obj, "generateName");
            if (prefix.empty())
                throw StatusError(make_status(422, "Invalid", std::string(r.kind) + " \"\" is invalid: metadata.name: Required value: name or generateName is required"));
            do name = prefix + random_suffix(); while (objects_.count(key(r, ns, name)) != 0);
            meta["name"] = name;
        }
        if (objects_.count(key(r, ns, name)) != 0) throw StatusError(already_exists_status(r, name));
        meta["namespace"] = ns;
        meta["uid"] = random_uid();
        if (metadata_string(obj, "creationTimestamp").empty())
            meta["creationTimestamp"] = format_rfc3339(std::chrono::system_clock::now());
        if (r.plural == "jobs" && !meta.contains("generation")) meta["generation"] = 1;
        meta["resourceVersion"] = std::to_string(++rv_);
        obj["apiVersion"] = r.api_version();
        obj["kind"] = r.kind;
        auto& stored = objects_[key(r, ns, name)];
        stored = obj;
        return record(r, ns, "ADDED", std::move(obj), std::nullopt);
    }

    /// Replaces a whole object; metadata.resourceVersion, when set, must equal the stored one (else 409 Conflict).
    /// uid and creationTimestamp are kept from the stored object. Throws StatusError (404, 409, 400).
    const StoreEvent& replace(const ResourceInfo& r, std::string_view ns, boost::json::object obj,
                              std::string_view path_name = {}) {
        check_type(r, obj);
        auto& meta = metadata_of(obj);
        check_namespace(meta, ns);
        const std::string name = metadata_string(obj, "name");
        if (!path_name.empty() && name != path_name)
            throw StatusError(bad_request_status("the name of the object (" + name +
                                                 ") does not match the name on the URL (" + std::string(path_name) + ")"));
        auto it = objects_.find(key(r, ns, name));
        if (it == objects_.end()) throw StatusError(not_found_status(r, name));
        const std::string given = metadata_string(obj, "resourceVersion");
        if (!given.empty() && given != metadata_string(it->second, "resourceVersion"))
            throw StatusError(conflict_status(r, name));
        return update_stored(r, ns, it->second, std::move(obj));
    }

    /// Read-modify-write of a stored object. Throws StatusError 404 if absent.
    template <class Mutate>
    const StoreEvent& modify(const ResourceInfo& r, std::string_view ns, std::string_view name, Mutate&& mutate) {
        auto it = objects_.find(key(r, ns, name));
        if (it == objects_.end()) throw StatusError(not_found_status(r, name));
        boost::json::object copy = it->second;
        mutate(copy);
        metadata_of(copy)["name"] = name;
        return update_stored(r, ns, it->second, std::move(copy));
    }

    /// Deletes an object; nullptr when absent.
    const StoreEvent* remove(const ResourceInfo& r, std::string_view ns, std::string_view name) {
        auto it = objects_.find(key(r, ns, name));
        if (it == objects_.end()) return nullptr;
        boost::json::object obj = std::move(it->second);
        objects_.erase(it);
        metadata_of(obj)["resourceVersion"] = std::to_string(++rv_);
        return &record(r, ns, "DELETED", std::move(obj), std::nullopt);
    }

    const boost::json::object* get(const ResourceInfo& r, std::string_view ns, std::string_view name) const {
        auto it = objects_.find(key(r, ns, name));
        return it == objects_.end() ? nullptr : &it->second;
    }

    /// Objects of a resource in a namespace (all namespaces when `ns` is empty), ordered by namespace then name.
    std::vector<const boost::json::object*> list(const ResourceInfo& r, std::string_view ns) const {
        return list_after(r, ns, {}, {}, objects_.size());
    }

    /// Up to `max` objects of list(r, ns) that come after the object of namespace `after_ns` and name `after_name`
    /// in its order (from the first when both are empty): a list read in parts.
    std::vector<const boost::json::object*> list_after(const ResourceInfo& r, std::string_view ns, std::string_view after_ns,
                                                       std::string_view after_name, std::size_t max) const {
        std::vector<const boost::json::object*> out;
        auto it = after_ns.empty() && after_name.empty() ? objects_.lower_bound(key(r, ns, ""))
                                                         : objects_.upper_bound(key(r, after_ns, after_name));
        for (; it != objects_.end() && out.size() < max; ++it) {
            if (std::get<0>(it->first) != r.plural || (!ns.empty() && std::get<1>(it->first) != ns)) break;
            out.push_back(&it->second);
        }
        return out;
    }

    /// Retained events after `rv`, or `expired` when the window no longer reaches back to it.
    EventsAfter events_after(std::uint64_t rv) const {
        EventsAfter out;
        out.oldest = horizon_;
        if (rv < horizon_) {
            out.expired = true;
            return out;
        }
        for (const auto& e : history_)
            if (e.resource_version > rv) out.events.push_back(&e);
        return out;
    }

    /// The oldest RV a watch may start from.
    std::uint64_t oldest_watchable() const noexcept { return horizon_; }

    /// Drops the whole history: watches from any older RV answer 410 Expired.
    void compact() {
        history_.clear();
        horizon_ = rv_;
    }

private:
    using Key = std::tuple<std::string, std::string, std::string>;
    static Key key(const ResourceInfo& r, std::string_view ns, std::string_view name) {
        return Key{std::string(r.plural), std::string(ns), std::string(name)};
    }

    static std::string random_suffix() {
        static thread_local std::mt19937 rng{std::random_device{}()};
        static constexpr char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
        std::string s;
        for (int i = 0; i < 5; ++i) s += alphabet[rng() % (sizeof alphabet - 1)];
        return s;
    }

    static void check_type(const ResourceInfo& r, const boost::json::object& obj) {
        const auto* kind = obj.if_contains("kind");
        if (kind != nullptr && kind->is_string() && !kind->as_string().empty() && kind->as_string() != r.kind)
            throw StatusError(bad_request_status("the kind " + std::string(kind->as_string()) +
                                                 " does not match the resource " + std::string(r.plural)));
        const auto* av = obj.if_contains("apiVersion");
        if (av != nullptr && av->is_string() && !av->as_string().empty() && av->as_string() != r.api_version())
            throw StatusError(bad_request_status("the API version " + std::string(av->as_string()) +
                                                 " does not match the expected API version " + r.api_version()));
        const auto* meta = obj.if_contains("metadata");
        if (meta != nullptr && !meta->is_object()) throw StatusError(bad_request_status("metadata must be an object"));
    }

    static void check_namespace(boost::json::object& meta, std::string_view ns) {
        const auto* given = meta.if_contains("namespace");
        if (given != nullptr && given->is_string() && !given->as_string().empty() && given->as_string() != ns)
            throw StatusError(bad_request_status(
                "the namespace of the provided object does not match the namespace sent on the request"));
    }

    const StoreEvent& update_stored(const ResourceInfo& r, std::string_view ns, boost::json::object& stored,
                                    boost::json::object obj) {
        auto& meta = metadata_of(obj);
        meta["namespace"] = ns;
        meta["uid"] = metadata_string(stored, "uid");
        const std::string created = metadata_string(stored, "creationTimestamp");
        if (!created.empty()) meta["creationTimestamp"] = created;
        meta["resourceVersion"] = std::to_string(++rv_);
        obj["apiVersion"] = r.api_version();
        obj["kind"] = r.kind;
        boost::json::object previous = std::move(stored);
        stored = obj;
        return record(r, ns, "MODIFIED", std::move(obj), std::move(previous));
    }

    const StoreEvent& record(const ResourceInfo& r, std::string_view ns, std::string_view type,
                             boost::json::object obj, std::optional<boost::json::object> previous) {
        StoreEvent e;
        e.resource_version = rv_;
        e.resource = &r;
        e.namespace_ = std::string(ns);
        e.type = std::string(type);
        e.object = std::move(obj);
        e.previous = std::move(previous);
        history_.push_back(std::move(e));
        while (history_.size() > history_limit_) {
            horizon_ = history_.front().resource_version;
            history_.pop_front();
        }
        return history_.back();
    }

    std::map<Key, boost::json::object> objects_;
    std::deque<StoreEvent> history_;
    std::size_t history_limit_;
    std::uint64_t rv_ = 1;
    std::uint64_t horizon_ = 0;
};

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_OBJECT_STORE_HPP
