// Umbrella header: the stable public headers of execution-sentinel.
// The simulated cluster for tests and demos is separate: <execution_sentinel/testing/fake_cluster.hpp> and
// <execution_sentinel/testing/scenario.hpp>; so is the container log reader: <execution_sentinel/kube/logs.hpp>.
#ifndef EXECUTION_SENTINEL_HPP
#define EXECUTION_SENTINEL_HPP

#include <execution_sentinel/version.hpp>

// The Kubernetes client
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/credentials.hpp>
#include <execution_sentinel/kube/backoff.hpp>
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/watch_framer.hpp>
#include <execution_sentinel/kube/store.hpp>
#include <execution_sentinel/kube/watch_machine.hpp>
#include <execution_sentinel/kube/watcher.hpp>
#include <execution_sentinel/kube/exec.hpp>

// The workflow model, detectors and the sentinel
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/settings.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/summary.hpp>
#include <execution_sentinel/task_matching.hpp>
#include <execution_sentinel/workflow_state.hpp>
#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/detectors/progress.hpp>
#include <execution_sentinel/detectors/oom_kill.hpp>
#include <execution_sentinel/detectors/straggler.hpp>
#include <execution_sentinel/detectors/mass_failure.hpp>
#include <execution_sentinel/detectors/connectivity.hpp>
#include <execution_sentinel/detectors/completion.hpp>
#include <execution_sentinel/monitor.hpp>
#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/sentinel.hpp>

#endif // EXECUTION_SENTINEL_HPP
