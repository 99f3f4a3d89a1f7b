// The separately compiled part of execution-sentinel. Include this file in exactly one translation unit of a
// program built with EXECUTION_SENTINEL_SEPARATE_COMPILATION defined everywhere (the CMake target
// execution_sentinel::compiled does both). See docs/building.md.
#ifndef EXECUTION_SENTINEL_SRC_HPP
#define EXECUTION_SENTINEL_SRC_HPP

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#error "<execution_sentinel/src.hpp> is for EXECUTION_SENTINEL_SEPARATE_COMPILATION builds only"
#endif
#define EXECUTION_SENTINEL_SOURCE

#include <execution_sentinel.hpp>
#include <execution_sentinel/kube/logs.hpp>

// Non-template bodies: HTTPS client, TLS, exec, logs, kubeconfig, credentials. Their coroutine frames hold lambdas;
// GCC warns about that for a non-inline function outside the main file, but here is their only definition.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif
#include <execution_sentinel/kube/impl/tls_connection.ipp>
#include <execution_sentinel/kube/impl/client.ipp>
#include <execution_sentinel/kube/impl/exec.ipp>
#include <execution_sentinel/kube/impl/logs.ipp>
#include <execution_sentinel/kube/detail/config_impl.hpp>
#include <execution_sentinel/kube/detail/credentials_impl.hpp>
#include <execution_sentinel/detail/engine_log_impl.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// The common template instantiations, declared extern in their headers.
namespace execution_sentinel {
namespace kube {
template class WatchMachine<Pod>;
template class WatchMachine<Job>;
template class WatchMachine<Event>;
template class Watcher<Pod>;
template class Watcher<Job>;
template class Watcher<Event>;
} // namespace kube
template class Monitor<EXECUTION_SENTINEL_DEFAULT_DETECTORS>;
template class Sentinel<EXECUTION_SENTINEL_DEFAULT_DETECTORS>;
} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_SRC_HPP
