// Umbrella header: the stable public headers of execution-sentinel.
#ifndef EXECUTION_SENTINEL_HPP
#define EXECUTION_SENTINEL_HPP

#include <execution_sentinel/version.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>

#endif // EXECUTION_SENTINEL_HPP
