// Pure list and watch decisions: which objects a list page holds, continue tokens, and which watch event (if
// any) a store change becomes for a watcher with selectors.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_LIST_WATCH_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_LIST_WATCH_HPP

#include <execution_sentinel/testing/detail/object_store.hpp>
#include <execution_sentinel/testing/detail/selectors.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::testing::detail {

/// What a list or watch request selects.
struct ObjectFilter {
    const ResourceInfo* resource = nullptr;
    std::string namespace_;   ///< empty = all namespaces
    Selector labels;
    Selector fields;

    bool matches(const boost::json::object& obj) const {
        return labels_match(labels, obj) && fields_match(fields, obj);
    }
    bool covers(const StoreEvent& e) const {
        return e.resource == resource && (namespace_.empty() || e.namespace_ == namespace_);
    }
};

/// Parses a decimal resourceVersion; nullopt if it is not one.
inline std::optional<std::uint64_t> parse_resource_version(std::string_view s) {
    std::uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

/// A watch event line: `{"type":T,"object":O}\n`.
inline std::string watch_line(std::string_view type, const boost::json::object& object) {
    boost::json::object e;
    e["type"] = type;
    e["object"] = object;
    std::string s = boost::json::serialize(e);
    s += '\n';
    return s;
}

/// The watch event (type, object) a store change becomes for `filter`, or nullopt when the watcher does not
/// see it. An object that stops matching the selectors is DELETED (its previous state with the new RV), one that
/// starts matching is ADDED — as the apiserver's watch cache does.
inline std::optional<std::pair<std::string, boost::json::object>> watch_event_for(const StoreEvent& e,
                                                                                  const ObjectFilter& filter) {
    if (!filter.covers(e)) return std::nullopt;
    const bool now_matches = filter.matches(e.object);
    if (e.type != "MODIFIED" || !e.previous) {
        if (!now_matches) return std::nullopt;
        return std::pair{e.type, e.object};
    }
    const bool matched_before = filter.matches(*e.previous);
    if (now_matches && matched_before) return std::pair{std::string("MODIFIED"), e.object};
    if (now_matches) return std::pair{std::string("ADDED"), e.object};
    if (matched_before) {
        boost::json::object old = *e.previous;
        metadata_of(old)["resourceVersion"] = std::to_string(e.resource_version);
        return std::pair{std::string("DELETED"), std::move(old)};
    }
    return std::nullopt;
}

/// A BOOKMARK event object for a resource at `rv`.
inline boost::json::object bookmark_object(const ResourceInfo& r, std::uint64_t rv) {
    boost::json::object meta;
    meta["resourceVersion"] = std::to_string(rv);
    boost::json::object o;
    o["kind"] = r.kind;
    o["apiVersion"] = r.api_version();
    o["metadata"] = std::move(meta);
    return o;
}

/// Decoded continue token.
struct ContinueToken {
    std::uint64_t resource_version = 0;
    std::string start_after; ///< "namespace/name" of the last object already returned
};

inline std::string encode_continue(const ContinueToken& t) {
    boost::json::object o;
    o["v"] = "meta.k8s.io/v1";
    o["rv"] = t.resource_version;
    o["start"] = t.start_after;
    return base64_encode(boost::json::serialize(o));
}

inline std::optional<ContinueToken> decode_continue(std::string_view token) {
    auto raw = base64_decode(token);
    if (!raw) return std::nullopt;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(*raw, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const auto& o = v.as_object();
    const auto* ver = o.if_contains("v");
    const auto* rv = o.if_contains("rv");
    const auto* start = o.if_contains("start");
    if (ver == nullptr || !ver->is_string() || ver->as_string() != "meta.k8s.io/v1") return std::nullopt;
    if (rv == nullptr || !(rv->is_uint64() || rv->is_int64()) || start == nullptr || !start->is_string()) return std::nullopt;
    ContinueToken t;
    t.resource_version = rv->is_uint64() ? rv->as_uint64() : static_cast<std::uint64_t>(std::max<std::int64_t>(0, rv->as_int64()));
    t.start_after = std::string(start->as_string());
    return t;
}

inline std::string object_key(const boost::json::object& obj) {
    return metadata_string(obj, "namespace") + "/" + metadata_string(obj, "name");
}

/// One page of a list.
struct ListPage {
    std::vector<boost::json::object> items;
    std::optional<ContinueToken> next;   ///< set when more items follow
    std::size_t remaining = 0;           ///< items after this page
};

/// Selects the objects of a page from `all` (ordered by namespace/name): those after `start_after` matching
/// `filter`, at most `limit` (0 = no limit). `list_rv` goes into the continue token.
inline ListPage paginate(const std::vector<const boost::json::object*>& all, const ObjectFilter& filter,
                         std::size_t limit, const std::string& start_after, std::uint64_t list_rv) {
    ListPage page;
    std::vector<const boost::json::object*> selected;
    for (const auto* obj : all) {
        if (!filter.matches(*obj)) continue;
        if (!start_after.empty()) {
            const std::string k = object_key(*obj);
            const std::string ns = metadata_string(*obj, "namespace"), name = metadata_string(*obj, "name");
            const auto slash = start_after.find('/');
            const std::string sns = start_after.substr(0, slash);
            const std::string sname = slash == std::string::npos ? std::string() : start_after.substr(slash + 1);
            if (std::pair(ns, name) <= std::pair(sns, sname)) continue;
        }
        selected.push_back(obj);
    }
    const std::size_t take = limit == 0 ? selected.size() : std::min(limit, selected.size());
    for (std::size_t i = 0; i < take; ++i) page.items.push_back(*selected[i]);
    page.remaining = selected.size() - take;
    if (page.remaining > 0 && take > 0)
        page.next = ContinueToken{list_rv, object_key(*selected[take - 1])};
    return page;
}

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_LIST_WATCH_HPP
