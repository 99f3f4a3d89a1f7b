#ifndef EXECUTION_SENTINEL_VERSION_HPP
#define EXECUTION_SENTINEL_VERSION_HPP

#define EXECUTION_SENTINEL_VERSION_MAJOR 0
#define EXECUTION_SENTINEL_VERSION_MINOR 1
#define EXECUTION_SENTINEL_VERSION_PATCH 0

namespace execution_sentinel {
inline constexpr const char* version_string = "0.1.0";
} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_VERSION_HPP
