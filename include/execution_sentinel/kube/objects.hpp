// Compact typed views of the Kubernetes objects a workflow monitor needs: Pods, Jobs and Events.
// They hold only the status section that matters (../docs/watching.md) — not whole JSON documents — so a
// cache of 100,000 pods stays small. Texts that repeat across objects (label keys and values, owner references,
// node names, condition and container-state texts) are InternedStrings, shared by every object that holds them
// (kube/interned_string.hpp). Parsing from JSON lives in kube/parse.hpp.
#ifndef EXECUTION_SENTINEL_KUBE_OBJECTS_HPP
#define EXECUTION_SENTINEL_KUBE_OBJECTS_HPP

#include <execution_sentinel/kube/interned_string.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

using Clock = std::chrono::system_clock;
using Timestamp = Clock::time_point;

/// A label set kept as a small sorted vector (objects carry a handful of labels). Keys and values are interned:
/// the Job controller's labels repeat the Job's name and uid, and every task pod has the same keys.
struct Labels {
    std::vector<std::pair<InternedString, InternedString>> items;

    /// The value of `key`, or nullptr.
    const InternedString* find(std::string_view key) const noexcept {
        for (auto& kv : items)
            if (kv.first == key) return &kv.second;
        return nullptr;
    }
    bool matches(std::string_view key, std::string_view value) const noexcept {
        auto* v = find(key);
        return v && *v == value;
    }
    friend bool operator==(const Labels&, const Labels&) = default;
};

/// The controller owner (ownerReferences entry with controller=true, else the first one).
struct OwnerRef {
    InternedString kind; ///< e.g. "Job", "ReplicaSet"
    InternedString name;
    InternedString uid;
    friend bool operator==(const OwnerRef&, const OwnerRef&) = default;
};

struct ObjectMeta {
    std::string name;
    InternedString namespace_; ///< "namespace" in JSON (shared by the objects of a namespace)
    std::string uid;
    std::string resource_version;
    Timestamp creation_timestamp{};
    std::optional<Timestamp> deletion_timestamp;
    Labels labels;
    std::optional<OwnerRef> owner;
    friend bool operator==(const ObjectMeta&, const ObjectMeta&) = default;
};

/// state / lastState of a container.
struct ContainerState {
    enum class Kind : std::uint8_t { none, waiting, running, terminated };
    Kind kind = Kind::none;
    InternedString reason;  ///< waiting.reason or terminated.reason (e.g. "CrashLoopBackOff", "OOMKilled")
    InternedString message; ///< waiting.message or terminated.message (may be empty)
    int exit_code = 0;   ///< terminated.exitCode
    int signal = 0;      ///< terminated.signal
    std::optional<Timestamp> started_at;  ///< running.startedAt or terminated.startedAt
    std::optional<Timestamp> finished_at; ///< terminated.finishedAt
    friend bool operator==(const ContainerState&, const ContainerState&) = default;
};

struct ContainerStatus {
    InternedString name;
    bool ready = false;
    int restart_count = 0;
    ContainerState state;
    ContainerState last_state;
    friend bool operator==(const ContainerStatus&, const ContainerStatus&) = default;
};

enum class PodPhase : std::uint8_t { unknown, pending, running, succeeded, failed };

/// A pod condition that carries monitoring meaning (PodScheduled=False/Unschedulable, DisruptionTarget=True …).
struct Condition {
    InternedString type;
    InternedString status; ///< "True", "False", "Unknown"
    InternedString reason;
    InternedString message;
    std::optional<Timestamp> last_transition_time;
    friend bool operator==(const Condition&, const Condition&) = default;
};

/// What a main container asks for and may use (spec.containers[].resources), in base units; 0 = not set.
struct ContainerResources {
    InternedString name;
    std::int64_t memory_limit_bytes = 0;
    std::int64_t memory_request_bytes = 0;
    std::int32_t cpu_limit_millicores = 0;
    std::int32_t cpu_request_millicores = 0;
    friend bool operator==(const ContainerResources&, const ContainerResources&) = default;
};

struct Pod {
    ObjectMeta meta;
    PodPhase phase = PodPhase::unknown;
    std::uint8_t true_conditions = 0; ///< bits of ordinary_condition_bit() for ordinary conditions that are True
    InternedString reason;  ///< status.reason, e.g. "Evicted", "DeadlineExceeded"
    InternedString message; ///< status.message
    InternedString node_name;
    std::optional<Timestamp> start_time;
    /// Conditions worth keeping as records: every condition except the five ordinary ones (PodScheduled,
    /// PodReadyToStartContainers, Initialized, ContainersReady, Ready) while they are True — those are
    /// only a bit in `true_conditions`. Use has_condition() to ask about any condition.
    std::vector<Condition> conditions;
    std::vector<ContainerStatus> init_containers;
    std::vector<ContainerStatus> containers;
    /// Main containers that set a limit or a request (others are left out).
    std::vector<ContainerResources> resources;

    /// The Job that owns this pod (label `job-name` / `batch.kubernetes.io/job-name`, else a Job owner).
    std::string job_name() const {
        if (auto* v = meta.labels.find("batch.kubernetes.io/job-name")) return v->str();
        if (auto* v = meta.labels.find("job-name")) return v->str();
        if (meta.owner && meta.owner->kind == "Job") return meta.owner->name.str();
        return {};
    }
    /// The bit of an ordinary condition type in `true_conditions`, 0 for any other type.
    static constexpr std::uint8_t ordinary_condition_bit(std::string_view type) noexcept {
        if (type == "Ready") return 1;
        if (type == "ContainersReady") return 2;
        if (type == "Initialized") return 4;
        if (type == "PodScheduled") return 8;
        if (type == "PodReadyToStartContainers") return 16;
        return 0;
    }
    /// True when the pod has condition `type` with status `status` ("True", "False", "Unknown").
    bool has_condition(std::string_view type, std::string_view status = "True") const noexcept {
        if (status == "True")
            if (auto bit = ordinary_condition_bit(type); bit != 0 && (true_conditions & bit) != 0) return true;
        for (auto& c : conditions)
            if (c.type == type && c.status == status) return true;
        return false;
    }
    /// The recorded condition of `type` (not for ordinary conditions that are True: see has_condition).
    const Condition* condition(std::string_view type) const noexcept {
        for (auto& c : conditions)
            if (c.type == type) return &c;
        return nullptr;
    }
    const ContainerStatus* container(std::string_view name) const noexcept {
        for (auto& c : containers)
            if (c.name == name) return &c;
        return nullptr;
    }
    friend bool operator==(const Pod&, const Pod&) = default;
};

struct JobCondition {
    enum class Type : std::uint8_t { other, complete, failed, failure_target, success_criteria_met, suspended };
    Type type = Type::other;
    bool status = false; ///< status == "True"
    std::string reason;  ///< e.g. "BackoffLimitExceeded", "DeadlineExceeded"
    std::string message;
    friend bool operator==(const JobCondition&, const JobCondition&) = default;
};

struct Job {
    ObjectMeta meta;
    int active = 0;
    int succeeded = 0;
    int failed = 0;
    int ready = 0;
    int terminating = 0;
    std::optional<int> backoff_limit; ///< spec.backoffLimit (Kubernetes default 6 when unset)
    std::optional<Timestamp> start_time;
    std::optional<Timestamp> completion_time;
    std::vector<JobCondition> conditions;

    bool has_condition(JobCondition::Type t) const noexcept {
        for (auto& c : conditions)
            if (c.type == t && c.status) return true;
        return false;
    }
    bool complete() const noexcept { return has_condition(JobCondition::Type::complete); }
    /// Failed, or FailureTarget (it will fail; its pods are still terminating).
    bool failed_or_failing() const noexcept {
        return has_condition(JobCondition::Type::failed) || has_condition(JobCondition::Type::failure_target);
    }
    friend bool operator==(const Job&, const Job&) = default;
};

struct Event {
    ObjectMeta meta;
    struct Involved {
        std::string kind;
        std::string name;
        std::string uid;
        friend bool operator==(const Involved&, const Involved&) = default;
    } involved;
    std::string reason;
    std::string message;
    std::string type; ///< "Normal" or "Warning"
    int count = 1;
    std::optional<Timestamp> first_timestamp;
    std::optional<Timestamp> last_timestamp;
    friend bool operator==(const Event&, const Event&) = default;
};

/// One log line: the kubelet's timestamp and the text without the timestamp and the newline.
struct LogLine {
    Timestamp time{};
    std::string text{};
    friend bool operator==(const LogLine&, const LogLine&) = default;
};

/// The metrics API's usage of one pod (metrics.k8s.io/v1beta1 PodMetrics), in base units.
struct PodMetrics {
    std::string name;
    std::string namespace_;
    Timestamp timestamp{};     ///< end of the sampling window
    double window_seconds = 0; ///< length of the sampling window
    struct Container {
        std::string name;
        double cpu_cores = 0;          ///< usage.cpu
        std::int64_t memory_bytes = 0; ///< usage.memory (working set)
        friend bool operator==(const Container&, const Container&) = default;
    };
    std::vector<Container> containers;
    friend bool operator==(const PodMetrics&, const PodMetrics&) = default;
};

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_OBJECTS_HPP
