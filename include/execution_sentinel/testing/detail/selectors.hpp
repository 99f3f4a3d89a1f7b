// Label and field selectors as kube-apiserver parses and applies them (equality-based subset).
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_SELECTORS_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_SELECTORS_HPP

#include <execution_sentinel/testing/detail/resources.hpp>

#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace execution_sentinel::testing::detail {

/// One requirement of a selector.
struct SelectorRequirement {
    enum class Op { equals, not_equals, exists, not_exists };
    std::string key;
    Op op = Op::equals;
    std::string value;
};

/// A conjunction of requirements; empty selects everything.
struct Selector {
    std::vector<SelectorRequirement> requirements;
    bool empty() const { return requirements.empty(); }
};

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

inline std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (;;) {
        const std::size_t pos = s.find(sep, start);
        parts.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
        if (pos == std::string_view::npos) break;
        start = pos + 1;
    }
    return parts;
}

/// Parses `a=b`, `a==b`, `a!=b`, `a`, `!a`, joined with commas. Returns the error message on failure.
inline std::variant<Selector, std::string> parse_selector(std::string_view text, bool allow_existence) {
    Selector selector;
    text = trim(text);
    if (text.empty()) return selector;
    for (std::string_view part : split(text, ',')) {
        part = trim(part);
        if (part.empty()) return std::string("invalid selector: empty requirement in \"") + std::string(text) + "\"";
        SelectorRequirement req;
        std::size_t pos;
        if ((pos = part.find("!=")) != std::string_view::npos) {
            req.op = SelectorRequirement::Op::not_equals;
            req.key = std::string(trim(part.substr(0, pos)));
            req.value = std::string(trim(part.substr(pos + 2)));
        } else if ((pos = part.find("==")) != std::string_view::npos) {
            req.key = std::string(trim(part.substr(0, pos)));
            req.value = std::string(trim(part.substr(pos + 2)));
        } else if ((pos = part.find('=')) != std::string_view::npos) {
            req.key = std::string(trim(part.substr(0, pos)));
            req.value = std::string(trim(part.substr(pos + 1)));
        } else {
            if (!allow_existence)
                return "invalid field selector: '" + std::string(part) + "' is not in key=value form";
            if (part.front() == '!') {
                req.op = SelectorRequirement::Op::not_exists;
                part.remove_prefix(1);
            } else {
                req.op = SelectorRequirement::Op::exists;
            }
            req.key = std::string(trim(part));
        }
        if (req.key.empty()) return "invalid selector: empty key in \"" + std::string(part) + "\"";
        for (char c : req.key) {
            const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '_' || c == '.' || c == '/';
            if (!ok) return "unable to parse requirement: invalid label key \"" + req.key + "\"";
        }
        if (req.value.find_first_of("=!(), ") != std::string::npos)
            return "unable to parse requirement: invalid value \"" + req.value + "\"";
        selector.requirements.push_back(std::move(req));
    }
    return selector;
}

inline std::variant<Selector, std::string> parse_label_selector(std::string_view text) { return parse_selector(text, true); }

inline const boost::json::value* json_path(const boost::json::object& obj, std::string_view path) {
    // The parts between dots, one by one (no allocation: every list, watch and metrics answer calls this per object).
    const boost::json::object* cur = &obj;
    for (;;) {
        const std::size_t dot = path.find('.');
        if (cur == nullptr) return nullptr;
        auto it = cur->find(path.substr(0, dot));
        if (it == cur->end()) return nullptr;
        const boost::json::value* v = &it->value();
        if (dot == std::string_view::npos) return v;
        path.remove_prefix(dot + 1);
        cur = v->if_object();
    }
}

inline std::string json_string_at(const boost::json::object& obj, std::string_view path) {
    const boost::json::value* v = json_path(obj, path);
    if (v == nullptr) return {};
    if (const auto* s = v->if_string()) return std::string(*s);
    if (v->is_int64()) return std::to_string(v->as_int64());
    if (v->is_uint64()) return std::to_string(v->as_uint64());
    if (v->is_bool()) return v->as_bool() ? "true" : "false";
    return {};
}

/// The field labels kube-apiserver accepts in `fieldSelector` for this resource.
inline bool field_supported(const ResourceInfo& r, std::string_view field) {
    if (field == "metadata.name" || field == "metadata.namespace") return true;
    if (r.plural == "pods")
        return field == "status.phase" || field == "spec.nodeName" || field == "spec.restartPolicy" ||
               field == "spec.schedulerName" || field == "spec.serviceAccountName" || field == "status.podIP" ||
               field == "status.nominatedNodeName" || field == "spec.hostNetwork";
    if (r.plural == "events")
        return field.starts_with("involvedObject.") || field == "reason" || field == "reportingComponent" ||
               field == "source" || field == "type";
    if (r.plural == "jobs") return field == "status.successful";
    return false;
}

/// Parses a field selector for `r`; unsupported fields are an error ("field label not supported: X").
inline std::variant<Selector, std::string> parse_field_selector(std::string_view text, const ResourceInfo& r) {
    auto parsed = parse_selector(text, false);
    if (auto* s = std::get_if<Selector>(&parsed)) {
        for (const auto& req : s->requirements)
            if (!field_supported(r, req.key)) return "field label not supported: " + req.key;
    }
    return parsed;
}

inline bool label_requirement_matches(const SelectorRequirement& req, const boost::json::object* labels) {
    const boost::json::value* v = labels != nullptr ? labels->if_contains(req.key) : nullptr;
    const boost::json::string* s = v != nullptr ? v->if_string() : nullptr;
    switch (req.op) {
    case SelectorRequirement::Op::equals: return s != nullptr && *s == req.value;
    case SelectorRequirement::Op::not_equals: return s == nullptr || *s != req.value;
    case SelectorRequirement::Op::exists: return v != nullptr;
    case SelectorRequirement::Op::not_exists: return v == nullptr;
    }
    return false;
}

inline bool labels_match(const Selector& selector, const boost::json::object& obj) {
    if (selector.empty()) return true;
    const boost::json::value* labels = json_path(obj, "metadata.labels");
    const boost::json::object* lo = labels != nullptr ? labels->if_object() : nullptr;
    for (const auto& req : selector.requirements)
        if (!label_requirement_matches(req, lo)) return false;
    return true;
}

/// The value of a field label of an object, as the apiserver's field sets define it.
inline std::string field_value(const boost::json::object& obj, std::string_view field) {
    if (field == "source") return json_string_at(obj, "source.component");
    if (field == "spec.hostNetwork") {
        const std::string v = json_string_at(obj, "spec.hostNetwork");
        return v.empty() ? "false" : v;
    }
    return json_string_at(obj, field);
}

inline bool fields_match(const Selector& selector, const boost::json::object& obj) {
    for (const auto& req : selector.requirements) {
        const std::string v = field_value(obj, req.key);
        const bool equal = v == req.value;
        if (req.op == SelectorRequirement::Op::equals ? !equal : equal) return false;
    }
    return true;
}

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_SELECTORS_HPP
