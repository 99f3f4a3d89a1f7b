// The one RFC 3339 parser and formatter of the library (timestamps of the API server, of exec credentials, of
// log lines, of reports and context files). The simulated cluster keeps its own, so the client cannot pass its
// tests by agreeing with itself.
#ifndef EXECUTION_SENTINEL_KUBE_RFC3339_HPP
#define EXECUTION_SENTINEL_KUBE_RFC3339_HPP

#include <execution_sentinel/kube/objects.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace execution_sentinel::kube {

/// Parses "YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)": any number of fraction digits (beyond nine they are
/// dropped), a leap second :60 read as the next second, offsets up to ±23:59. nullopt for anything else — a
/// calendar date that does not exist (02-30), a field out of range, trailing bytes, or a year outside 1678-2261
/// (what a 64-bit nanosecond time point holds).
inline std::optional<Timestamp> parse_rfc3339(std::string_view s) noexcept {
    auto digits = [&](std::size_t pos, std::size_t n, int& out) {
        if (pos + n > s.size()) return false;
        int v = 0;
        for (std::size_t i = pos; i < pos + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            v = v * 10 + (s[i] - '0');
        }
        out = v;
        return true;
    };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
    if (s.size() < 20 || !digits(0, 4, y) || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' || !digits(8, 2, d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(11, 2, h) || s[13] != ':' || !digits(14, 2, mi) ||
        s[16] != ':' || !digits(17, 2, se))
        return std::nullopt;
    if (h > 23 || mi > 59 || se > 60) return std::nullopt;
    if (y < 1678 || y > 2261) return std::nullopt;
    std::size_t pos = 19;
    std::int64_t frac_ns = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        std::size_t count = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (count < 9) frac_ns = frac_ns * 10 + (s[pos] - '0');
            ++count;
            ++pos;
        }
        if (count == 0) return std::nullopt;
        for (std::size_t i = count; i < 9; ++i) frac_ns *= 10;
    }
    if (pos >= s.size()) return std::nullopt;
    int offset_min = 0;
    if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
        int oh = 0, om = 0;
        if (!digits(pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(pos + 4, 2, om) || oh > 23 ||
            om > 59)
            return std::nullopt;
        offset_min = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    using namespace std::chrono;
    year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{se} - minutes{offset_min} + nanoseconds{frac_ns};
    return time_point_cast<Timestamp::duration>(tp);
}

/// How many fraction digits format_rfc3339 writes.
enum class Rfc3339Precision : unsigned char {
    seconds,      ///< "2026-11-23T06:00:00Z" (what the API server writes and accepts as sinceTime)
    milliseconds, ///< "2026-11-23T06:00:00.123Z" (reports)
    nanoseconds,  ///< "2026-11-23T06:00:00.123456789Z" (RFC3339Nano, log timestamps)
};

/// `t` in UTC; digits below the precision are truncated (towards the past).
inline std::string format_rfc3339(Timestamp t, Rfc3339Precision precision = Rfc3339Precision::seconds) {
    using namespace std::chrono;
    const auto ns = floor<nanoseconds>(t);
    const auto secs = floor<seconds>(ns);
    const auto days_part = floor<days>(secs);
    const year_month_day ymd{days_part};
    const hh_mm_ss hms{secs - days_part};
    const auto frac = (ns - secs).count();
    char buf[48];
    int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                          static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                          static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                          static_cast<int>(hms.seconds().count()));
    std::string out(buf, static_cast<std::size_t>(n));
    if (precision == Rfc3339Precision::milliseconds) {
        std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>(frac / 1'000'000));
        out += buf;
    } else if (precision == Rfc3339Precision::nanoseconds) {
        std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(frac));
        out += buf;
    }
    out += 'Z';
    return out;
}

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_RFC3339_HPP
