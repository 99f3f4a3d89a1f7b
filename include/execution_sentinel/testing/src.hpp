// The simulated cluster (FakeCluster, scenarios) compiled once: include this header in exactly one translation
// unit of a program built with EXECUTION_SENTINEL_SEPARATE_COMPILATION defined everywhere (the CMake target
// execution_sentinel::testing does both). Without that macro the testing headers are header-only and this file
// adds nothing. See docs/fake-cluster.md.
#ifndef EXECUTION_SENTINEL_TESTING_SRC_HPP
#define EXECUTION_SENTINEL_TESTING_SRC_HPP

#if defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION) && !defined(EXECUTION_SENTINEL_SOURCE)
#define EXECUTION_SENTINEL_SOURCE
#endif

#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <execution_sentinel/testing/detail/impl/router.ipp>
#include <execution_sentinel/testing/detail/impl/streaming.ipp>
#include <execution_sentinel/testing/detail/impl/exec_session.ipp>
#include <execution_sentinel/testing/detail/impl/cluster_server.ipp>
#include <execution_sentinel/testing/impl/fake_cluster.ipp>
#include <execution_sentinel/testing/scenario/impl/json_reader.ipp>
#include <execution_sentinel/testing/scenario/impl/timeline.ipp>

#if defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
namespace execution_sentinel::testing {
template class BasicScenarioRunner<FakeCluster>;
} // namespace execution_sentinel::testing
#endif

#endif // EXECUTION_SENTINEL_TESTING_SRC_HPP
