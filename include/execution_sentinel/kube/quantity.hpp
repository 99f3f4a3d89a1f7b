// Kubernetes resource quantities ("512Mi", "1.5Gi", "250m", "2", "1e3", "100k"), read into base units.
// The grammar is apimachinery's resource.Quantity: a signed decimal number, then an optional binary suffix
// (Ki Mi Gi Ti Pi Ei), decimal suffix (n u m "" k M G T P E) or exponent (e3, E-2).
#ifndef EXECUTION_SENTINEL_KUBE_QUANTITY_HPP
#define EXECUTION_SENTINEL_KUBE_QUANTITY_HPP

#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>

namespace execution_sentinel::kube {

/// The value of a quantity in base units (bytes, cores); nullopt when malformed, negative, not finite or longer
/// than 64 characters.
inline std::optional<double> parse_quantity(std::string_view s) noexcept {
    if (s.empty() || s.size() > 64) return std::nullopt;
    std::size_t i = 0;
    if (s[i] == '+') ++i;
    double mantissa = 0;
    bool digits = false;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        mantissa = mantissa * 10 + (s[i] - '0');
        digits = true;
    }
    if (i < s.size() && s[i] == '.') {
        double scale = 0.1;
        for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, scale /= 10) {
            mantissa += (s[i] - '0') * scale;
            digits = true;
        }
    }
    if (!digits) return std::nullopt;
    auto suffix = s.substr(i);
    double factor = 1;
    if (suffix.empty()) factor = 1;
    else if (suffix == "Ki") factor = 1024.0;
    else if (suffix == "Mi") factor = 1024.0 * 1024;
    else if (suffix == "Gi") factor = 1024.0 * 1024 * 1024;
    else if (suffix == "Ti") factor = 1024.0 * 1024 * 1024 * 1024;
    else if (suffix == "Pi") factor = 1024.0 * 1024 * 1024 * 1024 * 1024;
    else if (suffix == "Ei") factor = 1024.0 * 1024 * 1024 * 1024 * 1024 * 1024;
    else if (suffix == "n") factor = 1e-9;
    else if (suffix == "u") factor = 1e-6;
    else if (suffix == "m") factor = 1e-3;
    else if (suffix == "k") factor = 1e3;
    else if (suffix == "M") factor = 1e6;
    else if (suffix == "G") factor = 1e9;
    else if (suffix == "T") factor = 1e12;
    else if (suffix == "P") factor = 1e15;
    else if (suffix == "E") factor = 1e18;
    else if (suffix[0] == 'e' || suffix[0] == 'E') {
        std::size_t j = 1;
        bool negative = false;
        if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) negative = suffix[j++] == '-';
        if (j >= suffix.size() || suffix.size() - j > 3) return std::nullopt;
        int exponent = 0;
        for (; j < suffix.size(); ++j) {
            if (suffix[j] < '0' || suffix[j] > '9') return std::nullopt;
            exponent = exponent * 10 + (suffix[j] - '0');
        }
        factor = std::pow(10.0, negative ? -exponent : exponent);
    } else {
        return std::nullopt;
    }
    double v = mantissa * factor;
    if (!std::isfinite(v)) return std::nullopt;
    return v;
}

/// Bytes of a memory quantity, rounded up; nullopt when malformed or beyond int64.
inline std::optional<std::int64_t> parse_memory_bytes(std::string_view s) noexcept {
    auto v = parse_quantity(s);
    if (!v || *v >= 9.2e18) return std::nullopt;
    return static_cast<std::int64_t>(std::ceil(*v));
}

/// Millicores of a CPU quantity, rounded up; nullopt when malformed or beyond int32.
inline std::optional<std::int32_t> parse_millicores(std::string_view s) noexcept {
    auto v = parse_quantity(s);
    if (!v || *v * 1000 >= 2.1e9) return std::nullopt;
    return static_cast<std::int32_t>(std::ceil(*v * 1000 - 1e-9));
}

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_QUANTITY_HPP
