// The one path-tracking JSON reader of the library's file formats (the monitoring context, reports, summaries):
// each field is read with its type checked and, when it is wrong, the error names its path
// ("task_inventory[3].dag_order: expected an integer") through the format's own exception.
#ifndef EXECUTION_SENTINEL_DETAIL_JSON_READER_HPP
#define EXECUTION_SENTINEL_DETAIL_JSON_READER_HPP

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::detail {

/// Reads the fields of one JSON object. `Fail` is called as `fail(path, problem)` and must throw (the format's
/// error type); `prefix` is the object's own path with its trailing dot ("" at the top, "task_inventory[3].").
/// A field that is absent or null counts as absent everywhere.
template <class Fail> class JsonFields {
public:
    JsonFields(const boost::json::object& object, std::string prefix, Fail fail)
        : object_(object), prefix_(std::move(prefix)), fail_(std::move(fail)) {}

    const boost::json::object& object() const noexcept { return object_; }
    /// The field, or nullptr when absent or null.
    const boost::json::value* get(std::string_view key) const {
        auto* v = object_.if_contains(key);
        return (v && !v->is_null()) ? v : nullptr;
    }
    bool has(std::string_view key) const { return get(key) != nullptr; }
    std::string path(std::string_view key) const { return prefix_ + std::string(key); }
    [[noreturn]] void fail(std::string_view key, std::string_view problem) const {
        fail_(path(key), std::string(problem));
        throw std::logic_error("JsonFields: the failure handler returned"); // Fail must throw
    }

    /// A string field; `required` fails when it is absent.
    std::optional<std::string> string(std::string_view key, bool required = false) const {
        auto* v = get(key);
        if (!v) {
            if (required) fail(key, "required");
            return std::nullopt;
        }
        if (!v->is_string()) fail(key, "expected a string");
        return std::string(v->get_string());
    }
    /// Assigns `out` when the field is present.
    void string(std::string_view key, std::string& out, bool required = false) const {
        if (auto s = string(key, required)) out = std::move(*s);
    }

    /// An integer in [min, max]: an int64, a uint64, or a number with no fraction (1.0) within range.
    std::optional<std::int64_t> integer(std::string_view key, std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                                        std::int64_t max = std::numeric_limits<std::int64_t>::max()) const {
        auto* v = get(key);
        if (!v) return std::nullopt;
        std::int64_t n = 0;
        if (v->is_int64()) {
            n = v->get_int64();
        } else if (v->is_uint64()) {
            if (v->get_uint64() > static_cast<std::uint64_t>(max)) fail(key, "integer out of range");
            n = static_cast<std::int64_t>(v->get_uint64());
        } else if (v->is_double()) {
            double d = v->get_double();
            if (!std::isfinite(d) || std::floor(d) != d) fail(key, "expected an integer");
            if (d < static_cast<double>(min) || d > static_cast<double>(max)) fail(key, "integer out of range");
            n = static_cast<std::int64_t>(d);
        } else {
            fail(key, "expected an integer");
        }
        if (n < min || n > max) fail(key, "integer out of range");
        return n;
    }
    void integer(std::string_view key, int& out) const {
        if (auto n = integer(key, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()))
            out = static_cast<int>(*n);
    }

    /// A finite number.
    std::optional<double> number(std::string_view key) const {
        auto* v = get(key);
        if (!v) return std::nullopt;
        double d = 0;
        if (v->is_double()) d = v->get_double();
        else if (v->is_int64()) d = static_cast<double>(v->get_int64());
        else if (v->is_uint64()) d = static_cast<double>(v->get_uint64());
        else fail(key, "expected a number");
        if (!std::isfinite(d)) fail(key, "expected a finite number");
        return d;
    }
    void number(std::string_view key, std::optional<double>& out) const {
        if (auto d = number(key)) out = d;
    }

    std::optional<bool> boolean(std::string_view key) const {
        auto* v = get(key);
        if (!v) return std::nullopt;
        if (!v->is_bool()) fail(key, "expected true or false");
        return v->get_bool();
    }
    void boolean(std::string_view key, bool& out) const {
        if (auto b = boolean(key)) out = *b;
    }

    const boost::json::object* object(std::string_view key) const {
        auto* v = get(key);
        if (!v) return nullptr;
        if (!v->is_object()) fail(key, "expected an object");
        return &v->get_object();
    }
    const boost::json::array* array(std::string_view key) const {
        auto* v = get(key);
        if (!v) return nullptr;
        if (!v->is_array()) fail(key, "expected an array");
        return &v->get_array();
    }
    /// An array of strings; the message names the first element that is not one ("key[2]: expected a string").
    std::vector<std::string> strings(std::string_view key) const {
        std::vector<std::string> out;
        auto* a = array(key);
        if (!a) return out;
        out.reserve(a->size());
        for (std::size_t i = 0; i < a->size(); ++i) {
            if (!(*a)[i].is_string()) fail(std::string(key) + "[" + std::to_string(i) + "]", "expected a string");
            out.emplace_back((*a)[i].get_string());
        }
        return out;
    }

    /// The reader of a nested object field, its path extended ("details." or "task_inventory[3].").
    JsonFields nested(const boost::json::object& o, std::string_view key) const {
        return JsonFields(o, path(key) + ".", fail_);
    }

private:
    const boost::json::object& object_;
    std::string prefix_;
    Fail fail_;
};

} // namespace execution_sentinel::detail

#endif // EXECUTION_SENTINEL_DETAIL_JSON_READER_HPP
