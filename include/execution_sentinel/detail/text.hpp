// Small text helpers shared by every parser of the library (the simulated cluster keeps its own).
#ifndef EXECUTION_SENTINEL_DETAIL_TEXT_HPP
#define EXECUTION_SENTINEL_DETAIL_TEXT_HPP

#include <string_view>

namespace execution_sentinel::detail {

/// ASCII white space: space, tab, CR, LF, form feed, vertical tab.
constexpr bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/// `s` without leading and trailing ASCII white space.
constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

} // namespace execution_sentinel::detail

#endif // EXECUTION_SENTINEL_DETAIL_TEXT_HPP
