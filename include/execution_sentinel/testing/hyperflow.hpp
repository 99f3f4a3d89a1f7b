// Builders of realistic HyperFlow objects as Kubernetes JSON (../../docs/scenarios.md).
//
// A HyperFlow task on Kubernetes is a Job `job<rand>-<type with _ as ->-<procId>-<firingId>` with one pod
// `<job>-<5 chars>` running one container `test`; the only custom label is `app=hyperflow`. The engine is a
// Deployment pod `hyperflow-engine-<rs-hash>-<5 chars>` with containers `hyperflow` and `hflow-tools`. Redis, the
// `nfs-data` staging Job and the conductor's `tabix-extract` Job carry `app=hyperflow` too. The builders below make
// these objects exactly as the kube-apiserver serves them (metadata, spec, status), and the status mutators move
// them through their lifecycle in place, so they can be used inside `FakeCluster::modify`.
//
// Everything here is pure: no I/O, no clock. Times are passed in; random names come from a seeded `NameSource`,
// so a given seed always produces the same objects.
#ifndef EXECUTION_SENTINEL_TESTING_HYPERFLOW_HPP
#define EXECUTION_SENTINEL_TESTING_HYPERFLOW_HPP

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string_view.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace execution_sentinel::testing {

using WallClock = std::chrono::system_clock;
using WallTime = WallClock::time_point;

/// `t` as RFC 3339 in UTC with second precision ("2026-02-23T10:15:00Z"), as metav1.Time is serialised.
inline std::string rfc3339(WallTime t) {
    auto secs = std::chrono::floor<std::chrono::seconds>(t);
    std::time_t tt = WallClock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    std::array<char, 32> buf{};
    std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf.data();
}

/// `t` as RFC 3339 with microseconds ("2026-02-23T10:15:00.123456Z"), as metav1.MicroTime is serialised.
inline std::string rfc3339_micro(WallTime t) {
    auto secs = std::chrono::floor<std::chrono::seconds>(t);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count();
    std::string s = rfc3339(t);
    s.pop_back(); // 'Z'
    std::array<char, 32> buf{};
    std::snprintf(buf.data(), buf.size(), ".%06lldZ", static_cast<long long>(micros));
    return s + buf.data();
}

/// A deterministic source of the random-looking names Kubernetes and HyperFlow generate (splitmix64).
class NameSource {
public:
    explicit NameSource(std::uint64_t seed = 1) noexcept : state_(seed) {}

    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    /// A number in [0, n).
    std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }

    /// HyperFlow's random job-name fragment: the tail of a random number in base 36, 4–6 characters ("czr2t").
    std::string job_fragment() {
        static constexpr std::string_view digits = "0123456789abcdefghijklmnopqrstuvwxyz";
        std::size_t len = 4 + static_cast<std::size_t>(below(3));
        std::string s;
        for (std::size_t i = 0; i < len; ++i) s += digits[below(digits.size())];
        return s;
    }
    /// The 5-character suffix the Job and ReplicaSet controllers give pods ("2wzwh"; k8s util/rand alphabet).
    std::string pod_suffix() { return safe_chars(5); }
    /// A ReplicaSet pod-template-hash ("6c4b46d86").
    std::string replica_set_hash() { return safe_chars(9 + static_cast<std::size_t>(below(2))); }
    /// An RFC 4122 version-4 UID as the apiserver assigns to metadata.uid.
    std::string uid() {
        static constexpr std::string_view hex = "0123456789abcdef";
        std::string s;
        for (int i = 0; i < 32; ++i) {
            if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
            std::uint64_t v = below(16);
            if (i == 12) v = 4;
            if (i == 16) v = 8 + (v & 3);
            s += hex[v];
        }
        return s;
    }
    /// A HyperFlow engine id (shortid, 9 characters, "J7rLf9D0i").
    std::string hf_id() {
        static constexpr std::string_view chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        std::string s;
        for (int i = 0; i < 9; ++i) s += chars[below(chars.size())];
        return s;
    }
    /// The hexadecimal suffix of an Event name (`<object>.<16 hex>`).
    std::string event_suffix() {
        static constexpr std::string_view hex = "0123456789abcdef";
        std::string s;
        for (int i = 0; i < 16; ++i) s += hex[below(16)];
        return s;
    }

private:
    std::string safe_chars(std::size_t n) {
        static constexpr std::string_view alphabet = "bcdfghjklmnpqrstvwxz2456789";
        std::string s;
        for (std::size_t i = 0; i < n; ++i) s += alphabet[below(alphabet.size())];
        return s;
    }
    std::uint64_t state_;
};

// ------------------------------------------------------------------------------------------------ names

/// The HyperFlow Job name: `job` + sanitised(`fragment-<task type, '_' → '-'>-<procId>-<firingId>`), where
/// sanitising lower-cases and drops characters outside [0-9a-z-] (k8sJobSubmit.js).
/// job_name("czr2t", "sifting", 10) == "jobczr2t-sifting-10-1".
inline std::string job_name(std::string_view random_fragment, std::string_view task_type, int proc_id,
                            int firing_id = 1) {
    std::string raw = std::string(random_fragment) + "-" + std::string(task_type) + "-" + std::to_string(proc_id) +
                      "-" + std::to_string(firing_id);
    std::string out = "job";
    for (char c : raw) {
        if (c == '_') c = '-';
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-') out += c;
    }
    return out;
}

/// The parts of a HyperFlow Job name, with the task type mapped back ('-' → '_').
struct JobNameParts {
    std::string fragment;
    std::string task_type;
    int proc_id = 0;
    int firing_id = 0;
    friend bool operator==(const JobNameParts&, const JobNameParts&) = default;
};

/// Parses `job<fragment>-<type>-<procId>-<firingId>` anchored on the trailing `-<digits>-<digits>`; nullopt if
/// the name does not have that shape.
inline std::optional<JobNameParts> parse_job_name(std::string_view name) {
    auto take_number = [](std::string_view& s, int& out) -> bool {
        auto dash = s.rfind('-');
        if (dash == std::string_view::npos || dash + 1 == s.size()) return false;
        std::string_view digits = s.substr(dash + 1);
        if (digits.size() > 9) return false;
        int v = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return false;
            v = v * 10 + (c - '0');
        }
        out = v;
        s = s.substr(0, dash);
        return true;
    };
    if (name.substr(0, 3) != "job") return std::nullopt;
    std::string_view rest = name.substr(3);
    JobNameParts parts;
    if (!take_number(rest, parts.firing_id) || !take_number(rest, parts.proc_id)) return std::nullopt;
    auto dash = rest.find('-');
    if (dash == std::string_view::npos || dash == 0 || dash + 1 == rest.size()) return std::nullopt;
    parts.fragment = std::string(rest.substr(0, dash));
    for (char c : rest.substr(dash + 1)) parts.task_type += (c == '-' ? '_' : c);
    return parts;
}

/// `hyperflow-engine-<rs-hash>-<suffix>`.
inline std::string engine_pod_name(std::string_view replica_set_hash, std::string_view suffix) {
    return "hyperflow-engine-" + std::string(replica_set_hash) + "-" + std::string(suffix);
}

/// A HyperFlow task id `<hfId>:<wfId>:<procId>:<firingId>` as the engine logs it ("J7rLf9D0i:2:38:1").
inline std::string task_id(std::string_view hf_id, int wf_id, int proc_id, int firing_id = 1) {
    return std::string(hf_id) + ":" + std::to_string(wf_id) + ":" + std::to_string(proc_id) + ":" +
           std::to_string(firing_id);
}

// ------------------------------------------------------------------------------------------------ helpers

namespace hyperflow_detail {

inline boost::json::object condition(std::string_view type, std::string_view status, std::string_view reason,
                                     std::string_view message, WallTime when, bool with_probe_time = false) {
    boost::json::object c;
    c["type"] = type;
    c["status"] = status;
    if (!reason.empty()) c["reason"] = reason;
    if (!message.empty()) c["message"] = message;
    c["lastProbeTime"] = with_probe_time ? boost::json::value(rfc3339(when)) : boost::json::value(nullptr);
    c["lastTransitionTime"] = rfc3339(when);
    return c;
}

inline boost::json::object& ensure_object(boost::json::object& parent, std::string_view key) {
    auto& v = parent[key];
    if (!v.is_object()) v = boost::json::object{};
    return v.as_object();
}

inline boost::json::object resources(std::string_view cpu_request, std::string_view memory_request,
                                     std::string_view cpu_limit, std::string_view memory_limit) {
    boost::json::object r;
    boost::json::object req;
    if (!cpu_request.empty()) req["cpu"] = cpu_request;
    if (!memory_request.empty()) req["memory"] = memory_request;
    if (!req.empty()) r["requests"] = std::move(req);
    boost::json::object lim;
    if (!cpu_limit.empty()) lim["cpu"] = cpu_limit;
    if (!memory_limit.empty()) lim["memory"] = memory_limit;
    if (!lim.empty()) r["limits"] = std::move(lim);
    return r;
}

inline boost::json::object env(std::string_view name, std::string_view value) {
    return {{"name", name}, {"value", value}};
}

inline boost::json::object field_env(std::string_view name, std::string_view path) {
    return {{"name", name}, {"valueFrom", {{"fieldRef", {{"apiVersion", "v1"}, {"fieldPath", path}}}}}};
}

/// The value of a simple quantity ("500Mi", "1Gi", "0.7", "250m") in base units; nullopt when not understood.
inline std::optional<double> quantity_value(std::string_view q) {
    if (q.empty()) return std::nullopt;
    std::size_t i = 0;
    double v = 0, scale = 0;
    bool digits = false;
    for (; i < q.size() && ((q[i] >= '0' && q[i] <= '9') || q[i] == '.'); ++i) {
        if (q[i] == '.') {
            if (scale != 0) return std::nullopt;
            scale = 0.1;
            continue;
        }
        digits = true;
        if (scale == 0) v = v * 10 + (q[i] - '0');
        else {
            v += (q[i] - '0') * scale;
            scale /= 10;
        }
    }
    if (!digits) return std::nullopt;
    const std::string_view suffix = q.substr(i);
    static constexpr std::pair<std::string_view, double> units[] = {
        {"", 1}, {"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
        {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0}};
    for (const auto& [u, f] : units)
        if (suffix == u) return v * f;
    return std::nullopt;
}

inline boost::json::string_view str_or(const boost::json::object& o, std::string_view key,
                                       boost::json::string_view fallback = {}) {
    auto it = o.find(key);
    if (it != o.end() && it->value().is_string()) return it->value().get_string();
    return fallback;
}

} // namespace hyperflow_detail

// ------------------------------------------------------------------------------------------------ task Job

/// What varies between HyperFlow task Jobs. Defaults are the conductor's values (HyperFlow on Kubernetes).
struct TaskJobOptions {
    std::string namespace_name = "default";
    std::string name;         ///< job_name(...)
    std::string uid;          ///< metadata.uid (NameSource::uid())
    WallTime created{};       ///< metadata.creationTimestamp
    std::string task_id;      ///< HyperFlow task id for the container command ("J7rLf9D0i:2:10:1")
    std::string redis_url;    ///< empty: "redis://redis.<namespace>:6379"
    int backoff_limit = 6;    ///< Kubernetes default; HyperFlow's template leaves it unset
    std::string image = "hyperflowwms/1000genome-worker:1.1-latest";
    std::string cpu_request = "0.7";
    std::string memory_request = "500Mi";
    std::string cpu_limit;    ///< empty: none (HyperFlow templates set no limits)
    std::string memory_limit; ///< empty: none
    std::string node_selector = "hfmaster";
    std::optional<int> ttl_seconds_after_finished; ///< absent in the conductor, 100 upstream
    std::optional<int> active_deadline_seconds;    ///< spec.activeDeadlineSeconds (HyperFlow sets none)
    std::string restart_policy = "Never";          ///< the pod template's restartPolicy (HyperFlow: Never)
};

/// A request no larger than its limit (the apiserver rejects a request above the limit): `request`, or `limit`
/// when that is smaller.
inline std::string request_within(const std::string& request, const std::string& limit) {
    const auto r = hyperflow_detail::quantity_value(request), l = hyperflow_detail::quantity_value(limit);
    return r && l && *l < *r ? limit : request;
}

/// A freshly created task Job: labels `app=hyperflow` (copied from the pod template by Job defaulting), defaults
/// (backoffLimit, completions 1, parallelism 1), template with container `test`, and an empty status.
inline boost::json::object task_job(const TaskJobOptions& o) {
    std::string redis = o.redis_url.empty() ? "redis://redis." + o.namespace_name + ":6379" : o.redis_url;
    boost::json::array envs;
    envs.push_back(hyperflow_detail::env("HF_VAR_WORK_DIR", "/work_dir"));
    envs.push_back(hyperflow_detail::env("HF_VAR_WAIT_FOR_INPUT_FILES", "0"));
    envs.push_back(hyperflow_detail::env("HF_VAR_NUM_RETRIES", "1"));
    envs.push_back(hyperflow_detail::env("HF_VAR_ENABLE_TRACING", "0"));
    envs.push_back(hyperflow_detail::field_env("HF_LOG_NODE_NAME", "spec.nodeName"));
    envs.push_back(hyperflow_detail::field_env("HF_LOG_POD_NAME", "metadata.name"));
    envs.push_back(hyperflow_detail::field_env("HF_LOG_POD_NAMESPACE", "metadata.namespace"));
    envs.push_back(hyperflow_detail::field_env("HF_LOG_POD_IP", "status.podIP"));
    envs.push_back(hyperflow_detail::field_env("HF_LOG_POD_SERVICE_ACCOUNT", "spec.serviceAccountName"));
    envs.push_back(hyperflow_detail::env("HF_VAR_FS_MONIT_ENABLED", "0"));

    boost::json::object container{
        {"name", "test"},
        {"image", o.image},
        {"imagePullPolicy", "IfNotPresent"},
        {"command", boost::json::array{"/bin/sh", "-c",
                                       "hflow-job-execute " + redis + " -a -- \"" + o.task_id +
                                           "\" || { echo \"Command failed with exit code $?\"; exit 1; }"}},
        {"workingDir", "/work_dir"},
        {"env", std::move(envs)},
        {"resources", hyperflow_detail::resources(request_within(o.cpu_request, o.cpu_limit),
                                                  request_within(o.memory_request, o.memory_limit), o.cpu_limit,
                                                  o.memory_limit)},
        {"volumeMounts", boost::json::array{{{"name", "my-pvc-nfs"}, {"mountPath", "/work_dir"}}}},
        {"terminationMessagePath", "/dev/termination-log"},
        {"terminationMessagePolicy", "File"},
    };
    boost::json::object pod_spec{
        {"restartPolicy", o.restart_policy.empty() ? std::string("Never") : o.restart_policy},
        {"containers", boost::json::array{std::move(container)}},
        {"nodeSelector", {{"hyperflow-wms/nodepool", o.node_selector}}},
        {"volumes", boost::json::array{{{"name", "my-pvc-nfs"}, {"persistentVolumeClaim", {{"claimName", "nfs"}}}}}},
        {"dnsPolicy", "ClusterFirst"},
        {"schedulerName", "default-scheduler"},
        {"securityContext", boost::json::object{}},
        {"terminationGracePeriodSeconds", 30},
    };
    boost::json::object spec{
        {"backoffLimit", o.backoff_limit},
        {"completions", 1},
        {"parallelism", 1},
        {"completionMode", "NonIndexed"},
        {"suspend", false},
        {"podReplacementPolicy", "TerminatingOrFailed"},
        {"manualSelector", false},
        {"selector", {{"matchLabels", {{"batch.kubernetes.io/controller-uid", o.uid}}}}},
        {"template",
         {{"metadata",
           {{"labels",
             {{"app", "hyperflow"},
              {"batch.kubernetes.io/controller-uid", o.uid},
              {"batch.kubernetes.io/job-name", o.name},
              {"controller-uid", o.uid},
              {"job-name", o.name}}}}},
          {"spec", std::move(pod_spec)}}},
    };
    if (o.ttl_seconds_after_finished) spec["ttlSecondsAfterFinished"] = *o.ttl_seconds_after_finished;
    if (o.active_deadline_seconds) spec["activeDeadlineSeconds"] = *o.active_deadline_seconds;
    return {
        {"apiVersion", "batch/v1"},
        {"kind", "Job"},
        {"metadata",
         {{"name", o.name},
          {"namespace", o.namespace_name},
          {"uid", o.uid},
          {"creationTimestamp", rfc3339(o.created)},
          {"generation", 1},
          {"labels", {{"app", "hyperflow"}}}}},
        {"spec", std::move(spec)},
        {"status", boost::json::object{}},
    };
}

/// Makes spec.selector and the pod-template labels name the Job's metadata.uid (the apiserver assigns the uid on
/// create; the Job defaulting then writes it into the selector and template labels).
inline void job_adopt_uid(boost::json::object& job) {
    auto* meta = job.if_contains("metadata");
    if (!meta || !meta->is_object()) return;
    std::string uid(hyperflow_detail::str_or(meta->as_object(), "uid"));
    if (uid.empty()) return;
    auto& spec = hyperflow_detail::ensure_object(job, "spec");
    auto& selector = hyperflow_detail::ensure_object(spec, "selector");
    auto& match = hyperflow_detail::ensure_object(selector, "matchLabels");
    match["batch.kubernetes.io/controller-uid"] = uid;
    auto& tpl = hyperflow_detail::ensure_object(spec, "template");
    auto& tmeta = hyperflow_detail::ensure_object(tpl, "metadata");
    auto& labels = hyperflow_detail::ensure_object(tmeta, "labels");
    labels["batch.kubernetes.io/controller-uid"] = uid;
    labels["controller-uid"] = uid;
}

/// Sets the Job's pod counters. `start` sets status.startTime if it is not yet set. Zero counters are omitted, as
/// the apiserver omits them (`omitempty`), except `ready` and `terminating`, which the Job controller always sets.
inline void job_set_counts(boost::json::object& job, int active, int ready, int succeeded, int failed,
                           std::optional<WallTime> start = std::nullopt) {
    auto& st = hyperflow_detail::ensure_object(job, "status");
    auto set_or_erase = [&](std::string_view key, int v) {
        if (v > 0) st[key] = v;
        else st.erase(key);
    };
    set_or_erase("active", active);
    set_or_erase("succeeded", succeeded);
    set_or_erase("failed", failed);
    st["ready"] = ready;
    st["terminating"] = 0;
    if (start && !st.contains("startTime")) st["startTime"] = rfc3339(*start);
    if (!st.contains("uncountedTerminatedPods")) st["uncountedTerminatedPods"] = boost::json::object{};
}

/// Marks the Job Complete as a 1.31+ controller does: SuccessCriteriaMet then Complete (both True, reason
/// CompletionsReached), completionTime set, active 0, succeeded ≥ 1.
inline void job_mark_complete(boost::json::object& job, WallTime when) {
    auto& st = hyperflow_detail::ensure_object(job, "status");
    st.erase("active");
    st["ready"] = 0;
    if (!st.contains("succeeded")) st["succeeded"] = 1;
    st["completionTime"] = rfc3339(when);
    boost::json::array conds;
    constexpr std::string_view msg = "Reached expected number of succeeded pods";
    conds.push_back(hyperflow_detail::condition("SuccessCriteriaMet", "True", "CompletionsReached", msg, when, true));
    conds.push_back(hyperflow_detail::condition("Complete", "True", "CompletionsReached", msg, when, true));
    st["conditions"] = std::move(conds);
}

/// Marks the Job Failed as a 1.31+ controller does: FailureTarget then Failed (both True, same reason and
/// message), active 0, no completionTime. Default reason BackoffLimitExceeded.
inline void job_mark_failed(boost::json::object& job, WallTime when, std::string_view reason = "BackoffLimitExceeded",
                            std::string_view message = "Job has reached the specified backoff limit") {
    auto& st = hyperflow_detail::ensure_object(job, "status");
    st.erase("active");
    st["ready"] = 0;
    boost::json::array conds;
    conds.push_back(hyperflow_detail::condition("FailureTarget", "True", reason, message, when, true));
    conds.push_back(hyperflow_detail::condition("Failed", "True", reason, message, when, true));
    st["conditions"] = std::move(conds);
}

// ------------------------------------------------------------------------------------------------ task Pod

/// What varies between the pods of a task Job.
struct TaskPodOptions {
    std::string name;          ///< <job name>-<NameSource::pod_suffix()>
    std::string uid;
    WallTime created{};
    std::string node_name = "hfmaster-worker-1";
};

/// A task pod as the Job controller creates it from `job`'s template: labels (app=hyperflow, job-name,
/// controller-uid and their batch.kubernetes.io/ forms), ownerReferences to the Job (controller=true), the
/// template's spec, and a Pending status not yet scheduled.
inline boost::json::object task_pod(const boost::json::object& job, const TaskPodOptions& o) {
    const auto& meta = job.at("metadata").as_object();
    std::string job_name_s(hyperflow_detail::str_or(meta, "name"));
    std::string job_uid(hyperflow_detail::str_or(meta, "uid"));
    std::string ns(hyperflow_detail::str_or(meta, "namespace", "default"));
    boost::json::object spec;
    boost::json::object labels{{"app", "hyperflow"}};
    if (auto* sp = job.if_contains("spec"); sp && sp->is_object()) {
        if (auto* tpl = sp->as_object().if_contains("template"); tpl && tpl->is_object()) {
            if (auto* ps = tpl->as_object().if_contains("spec"); ps && ps->is_object()) spec = ps->as_object();
            if (auto* tm = tpl->as_object().if_contains("metadata"); tm && tm->is_object())
                if (auto* l = tm->as_object().if_contains("labels"); l && l->is_object()) labels = l->as_object();
        }
    }
    labels["app"] = "hyperflow";
    labels["batch.kubernetes.io/controller-uid"] = job_uid;
    labels["batch.kubernetes.io/job-name"] = job_name_s;
    labels["controller-uid"] = job_uid;
    labels["job-name"] = job_name_s;
    spec["serviceAccountName"] = "default";
    spec["serviceAccount"] = "default";
    spec["enableServiceLinks"] = true;
    spec["preemptionPolicy"] = "PreemptLowerPriority";
    spec["priority"] = 0;
    spec["tolerations"] = boost::json::array{
        {{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"}, {"effect", "NoExecute"},
         {"tolerationSeconds", 300}},
        {{"key", "node.kubernetes.io/unreachable"}, {"operator", "Exists"}, {"effect", "NoExecute"},
         {"tolerationSeconds", 300}}};
    return {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", o.name},
          {"generateName", job_name_s + "-"},
          {"namespace", ns},
          {"uid", o.uid},
          {"creationTimestamp", rfc3339(o.created)},
          {"labels", std::move(labels)},
          {"finalizers", boost::json::array{"batch.kubernetes.io/job-tracking"}},
          {"ownerReferences",
           boost::json::array{{{"apiVersion", "batch/v1"},
                               {"kind", "Job"},
                               {"name", job_name_s},
                               {"uid", job_uid},
                               {"controller", true},
                               {"blockOwnerDeletion", true}}}}}},
        {"spec", std::move(spec)},
        {"status", {{"phase", "Pending"}, {"qosClass", "Burstable"}}},
    };
}

namespace hyperflow_detail {

inline std::string first_container_name(const boost::json::object& pod) {
    if (auto* sp = pod.if_contains("spec"); sp && sp->is_object())
        if (auto* cs = sp->as_object().if_contains("containers"); cs && cs->is_array() && !cs->as_array().empty())
            if (cs->as_array()[0].is_object())
                return std::string(str_or(cs->as_array()[0].as_object(), "name", "test"));
    return "test";
}

inline std::string first_container_image(const boost::json::object& pod) {
    if (auto* sp = pod.if_contains("spec"); sp && sp->is_object())
        if (auto* cs = sp->as_object().if_contains("containers"); cs && cs->is_array() && !cs->as_array().empty())
            if (cs->as_array()[0].is_object()) return std::string(str_or(cs->as_array()[0].as_object(), "image"));
    return {};
}

inline void bind_to_node(boost::json::object& pod, std::string_view node) {
    auto& spec = ensure_object(pod, "spec");
    if (!spec.contains("nodeName")) spec["nodeName"] = node;
}

/// One containerStatuses entry per container of the spec, with `state` built by `state_of`.
template <class StateOf>
boost::json::array container_statuses(const boost::json::object& pod, bool ready, int restart_count,
                                      StateOf&& state_of) {
    boost::json::array out;
    const boost::json::array* cs = nullptr;
    if (auto* sp = pod.if_contains("spec"); sp && sp->is_object())
        if (auto* c = sp->as_object().if_contains("containers"); c && c->is_array()) cs = &c->as_array();
    if (!cs) return out;
    for (auto& c : *cs) {
        if (!c.is_object()) continue;
        std::string name(str_or(c.as_object(), "name"));
        std::string image(str_or(c.as_object(), "image"));
        boost::json::object s{{"name", name},
                              {"image", image},
                              {"imageID", ""},
                              {"ready", ready},
                              {"restartCount", restart_count},
                              {"started", false},
                              {"lastState", boost::json::object{}}};
        s["state"] = state_of(name);
        if (s["state"].as_object().contains("running")) {
            s["started"] = true;
            s["imageID"] = "docker.io/" + image + "@sha256:5d1b4f3e0a9c8e7f6b2a1d0c9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f";
            s["containerID"] = "containerd://" + std::string(64, '0');
        }
        out.push_back(std::move(s));
    }
    return out;
}

inline boost::json::array pod_conditions(WallTime when, bool scheduled, bool initialized, bool ready,
                                         std::string_view not_ready_reason, bool sandbox_ready) {
    boost::json::array c;
    c.push_back(condition("PodReadyToStartContainers", sandbox_ready ? "True" : "False", "", "", when));
    c.push_back(condition("Initialized", initialized ? "True" : "False", "", "", when));
    c.push_back(condition("Ready", ready ? "True" : "False", ready ? "" : not_ready_reason, "", when));
    c.push_back(condition("ContainersReady", ready ? "True" : "False", ready ? "" : not_ready_reason, "", when));
    c.push_back(condition("PodScheduled", scheduled ? "True" : "False", "", "", when));
    return c;
}

inline void set_ip(boost::json::object& st) {
    st["hostIP"] = "172.18.0.2";
    st["hostIPs"] = boost::json::array{{{"ip", "172.18.0.2"}}};
    if (!st.contains("podIP")) {
        st["podIP"] = "10.244.0.17";
        st["podIPs"] = boost::json::array{{{"ip", "10.244.0.17"}}};
    }
}

} // namespace hyperflow_detail

/// Scheduled, containers being created: phase Pending, PodScheduled True, waiting ContainerCreating.
inline void pod_set_creating(boost::json::object& pod, WallTime when, std::string_view node_name = "hfmaster-worker-1") {
    hyperflow_detail::bind_to_node(pod, node_name);
    auto& st = hyperflow_detail::ensure_object(pod, "status");
    st["phase"] = "Pending";
    st["conditions"] = hyperflow_detail::pod_conditions(when, true, true, false, "ContainersNotReady", false);
    st["startTime"] = rfc3339(when);
    hyperflow_detail::set_ip(st);
    st["containerStatuses"] = hyperflow_detail::container_statuses(pod, false, 0, [](const std::string&) {
        return boost::json::object{{"waiting", {{"reason", "ContainerCreating"}}}};
    });
}

/// Not schedulable: phase Pending, PodScheduled False reason Unschedulable with the scheduler's message, no
/// containerStatuses. The scheduler also records a FailedScheduling event (see `event`).
inline void pod_set_unschedulable(boost::json::object& pod, WallTime when, std::string_view message) {
    auto& st = hyperflow_detail::ensure_object(pod, "status");
    st["phase"] = "Pending";
    boost::json::array c;
    c.push_back(hyperflow_detail::condition("PodScheduled", "False", "Unschedulable", message, when));
    st["conditions"] = std::move(c);
    st.erase("containerStatuses");
    st.erase("startTime");
}

/// Scheduled but the first container cannot start: phase Pending, state.waiting{reason, message}
/// (ErrImagePull, ImagePullBackOff, CreateContainerConfigError …).
inline void pod_set_waiting(boost::json::object& pod, WallTime when, std::string_view reason,
                            std::string_view message, std::string_view node_name = "hfmaster-worker-1") {
    hyperflow_detail::bind_to_node(pod, node_name);
    auto& st = hyperflow_detail::ensure_object(pod, "status");
    st["phase"] = "Pending";
    st["conditions"] = hyperflow_detail::pod_conditions(when, true, true, false, "ContainersNotReady", true);
    if (!st.contains("startTime")) st["startTime"] = rfc3339(when);
    hyperflow_detail::set_ip(st);
    std::string r(reason), m(message);
    st["containerStatuses"] = hyperflow_detail::container_statuses(pod, false, 0, [&](const std::string&) {
        boost::json::object w{{"reason", r}};
        if (!m.empty()) w["message"] = m;
        return boost::json::object{{"waiting", std::move(w)}};
    });
}

/// Running and ready: phase Running, every container running since `started`.
inline void pod_set_running(boost::json::object& pod, WallTime started, std::string_view node_name = "hfmaster-worker-1") {
    hyperflow_detail::bind_to_node(pod, node_name);
    auto& st = hyperflow_detail::ensure_object(pod, "status");
    st["phase"] = "Running";
    st["conditions"] = hyperflow_detail::pod_conditions(started, true, true, true, "", true);
    if (!st.contains("startTime")) st["startTime"] = rfc3339(started);
    hyperflow_detail::set_ip(st);
    std::string at = rfc3339(started);
    st["containerStatuses"] = hyperflow_detail::container_statuses(pod, true, 0, [&](const std::string&) {
        return boost::json::object{{"running", {{"startedAt", at}}}};
    });
}

/// Every container terminated: phase Succeeded when `exit_code` is 0, else Failed; state.terminated{exitCode,
/// reason ("Completed", "Error", "OOMKilled" …), startedAt, finishedAt}. `reason` empty picks Completed/Error.
inline void pod_set_terminated(boost::json::object& pod, WallTime started, WallTime finished, int exit_code,
                               std::string_view reason = {}, std::string_view message = {}) {
    auto& st = hyperflow_detail::ensure_object(pod, "status");
    std::string r(reason.empty() ? (exit_code == 0 ? "Completed" : "Error") : reason);
    std::string m(message);
    st["phase"] = exit_code == 0 ? "Succeeded" : "Failed";
    st["conditions"] =
        hyperflow_detail::pod_conditions(finished, true, true, false, exit_code == 0 ? "PodCompleted" : "PodFailed", false);
    if (!st.contains("startTime")) st["startTime"] = rfc3339(started);
    hyperflow_detail::set_ip(st);
    std::string s_at = rfc3339(started), f_at = rfc3339(finished);
    st["containerStatuses"] = hyperflow_detail::container_statuses(pod, false, 0, [&](const std::string&) {
        boost::json::object t{{"exitCode", exit_code},
                              {"reason", r},
                              {"startedAt", s_at},
                              {"finishedAt", f_at},
                              {"containerID", "containerd://" + std::string(64, '0')}};
        if (!m.empty()) t["message"] = m;
        return boost::json::object{{"terminated", std::move(t)}};
    });
    // A terminated container was started once.
    for (auto& c : st["containerStatuses"].as_array()) c.as_object()["started"] = false;
}

namespace hyperflow_detail {

/// The pod's first containerStatuses entry, created from the spec when absent.
inline boost::json::object& first_container_status(boost::json::object& pod) {
    auto& st = ensure_object(pod, "status");
    auto& cs = st["containerStatuses"];
    if (!cs.is_array() || cs.as_array().empty() || !cs.as_array()[0].is_object())
        cs = container_statuses(pod, false, 0, [](const std::string&) { return boost::json::object{}; });
    if (cs.as_array().empty()) cs.as_array().push_back(boost::json::object{{"name", "test"}});
    return cs.as_array()[0].as_object();
}

/// Sets (or adds) the condition `type` of a pod or Job, keeping the others.
inline void set_condition(boost::json::object& obj, boost::json::object cond) {
    auto& st = ensure_object(obj, "status");
    auto& cs = st["conditions"];
    if (!cs.is_array()) cs = boost::json::array{};
    for (auto& c : cs.as_array())
        if (c.is_object() && c.as_object()["type"] == cond["type"]) {
            c = std::move(cond);
            return;
        }
    cs.as_array().push_back(std::move(cond));
}

} // namespace hyperflow_detail

/// Evicted by the kubelet under node pressure: phase Failed, status.reason `Evicted` and `message`, condition
/// DisruptionTarget True (reason TerminationByKubelet), the container killed (exit 137, reason Error).
inline void pod_set_evicted(boost::json::object& pod, WallTime started, WallTime when, std::string_view message) {
    pod_set_terminated(pod, started, when, 137, "Error");
    auto& st = hyperflow_detail::ensure_object(pod, "status");
    st["reason"] = "Evicted";
    st["message"] = message;
    hyperflow_detail::set_condition(pod, hyperflow_detail::condition("DisruptionTarget", "True", "TerminationByKubelet",
                                                                     message, when));
}

/// The container exited (`exit_code`, `reason`) and waits to be restarted: phase Running, not ready,
/// state.waiting CrashLoopBackOff with the kubelet's back-off message, lastState.terminated, restartCount.
inline void pod_set_crash_loop(boost::json::object& pod, WallTime started, WallTime when, int exit_code,
                               std::string_view reason, int restart_count, std::string_view backoff) {
    auto& st = hyperflow_detail::ensure_object(pod, "status");
    st["phase"] = "Running";
    st["conditions"] = hyperflow_detail::pod_conditions(when, true, true, false, "ContainersNotReady", true);
    auto& c = hyperflow_detail::first_container_status(pod);
    const std::string name(hyperflow_detail::str_or(c, "name", "test"));
    const auto* meta = pod.if_contains("metadata");
    std::string pod_name, ns, uid;
    if (meta && meta->is_object()) {
        pod_name = std::string(hyperflow_detail::str_or(meta->as_object(), "name"));
        ns = std::string(hyperflow_detail::str_or(meta->as_object(), "namespace", "default"));
        uid = std::string(hyperflow_detail::str_or(meta->as_object(), "uid"));
    }
    c["ready"] = false;
    c["started"] = false;
    c["restartCount"] = restart_count;
    c["lastState"] = boost::json::object{
        {"terminated",
         {{"exitCode", exit_code},
          {"reason", reason.empty() ? std::string_view(exit_code == 0 ? "Completed" : "Error") : reason},
          {"startedAt", rfc3339(started)},
          {"finishedAt", rfc3339(when)},
          {"containerID", "containerd://" + std::string(64, '1')}}}};
    c["state"] = boost::json::object{
        {"waiting",
         {{"reason", "CrashLoopBackOff"},
          {"message", "back-off " + std::string(backoff) + " restarting failed container=" + name + " pod=" + pod_name +
                          "_" + ns + "(" + uid + ")"}}}};
}

/// The crashed container runs again since `when` (restartCount and lastState kept): phase Running, ready.
inline void pod_set_restarted(boost::json::object& pod, WallTime when) {
    auto& st = hyperflow_detail::ensure_object(pod, "status");
    st["phase"] = "Running";
    st["conditions"] = hyperflow_detail::pod_conditions(when, true, true, true, "", true);
    auto& c = hyperflow_detail::first_container_status(pod);
    c["ready"] = true;
    c["started"] = true;
    c["state"] = boost::json::object{{"running", {{"startedAt", rfc3339(when)}}}};
}

/// The node stopped responding: the node controller marks the pod not ready; status.reason NodeLost and a message
/// naming the node. The phase stays as it was (no kubelet reports it any more).
inline void pod_set_node_lost(boost::json::object& pod, WallTime when, std::string_view message) {
    auto& st = hyperflow_detail::ensure_object(pod, "status");
    hyperflow_detail::set_condition(pod, hyperflow_detail::condition("Ready", "False", "", "", when));
    hyperflow_detail::set_condition(pod, hyperflow_detail::condition("ContainersReady", "False", "", "", when));
    st["reason"] = "NodeLost";
    st["message"] = message;
}

/// Marked for deletion: metadata.deletionTimestamp (now + grace) and deletionGracePeriodSeconds, and a
/// DisruptionTarget condition when `disruption_reason` is given (DeletionByTaintManager, DeletionByPodGC …).
inline void pod_mark_deleting(boost::json::object& pod, WallTime when, int grace_seconds,
                              std::string_view disruption_reason = {}, std::string_view message = {}) {
    auto& meta = hyperflow_detail::ensure_object(pod, "metadata");
    meta["deletionTimestamp"] = rfc3339(when + std::chrono::seconds(grace_seconds));
    meta["deletionGracePeriodSeconds"] = grace_seconds;
    if (!disruption_reason.empty())
        hyperflow_detail::set_condition(pod, hyperflow_detail::condition("DisruptionTarget", "True", disruption_reason,
                                                                         message, when));
}

/// The Job will fail (1.31+ controller): FailureTarget True with `reason`/`message` while its pods terminate;
/// `terminating` pods counted, none active.
inline void job_mark_failure_target(boost::json::object& job, WallTime when, std::string_view reason,
                                    std::string_view message, int terminating) {
    auto& st = hyperflow_detail::ensure_object(job, "status");
    st.erase("active");
    st["ready"] = 0;
    st["terminating"] = terminating;
    hyperflow_detail::set_condition(job, hyperflow_detail::condition("FailureTarget", "True", reason, message, when, true));
}

/// The pod's phase ("" when absent).
inline std::string pod_phase(const boost::json::object& pod) {
    if (auto* st = pod.if_contains("status"); st && st->is_object())
        return std::string(hyperflow_detail::str_or(st->as_object(), "phase"));
    return {};
}

// ------------------------------------------------------------------------------------------------ engine & support

/// What varies between engine pods.
struct EnginePodOptions {
    std::string namespace_name = "default";
    std::string name;              ///< engine_pod_name(replica_set_hash, suffix)
    std::string replica_set_hash;  ///< pod-template-hash
    std::string uid;
    std::string replica_set_uid;
    WallTime created{};
    std::string image = "hyperflowwms/hyperflow:v1.9.1";
    std::string node_name = "hfmaster-worker-1";
};

/// The engine Deployment pod, Running and ready: labels app=hyperflow, name=hyperflow-engine,
/// component=hyperflow-engine, pod-template-hash; owner ReplicaSet `hyperflow-engine-<hash>`; containers
/// `hyperflow` (engine) and `hflow-tools` (visualisation sidecar), both running since `created`.
inline boost::json::object engine_pod(const EnginePodOptions& o) {
    std::string rs_name = "hyperflow-engine-" + o.replica_set_hash;
    boost::json::array engine_env{
        hyperflow_detail::env("REDIS_URL", "redis://redis." + o.namespace_name + ":6379"),
        hyperflow_detail::env("HF_VAR_function", "k8sCommand"),
        hyperflow_detail::env("HF_VAR_JOB_TEMPLATE_PATH", "/opt/hyperflow/job-template.yaml"),
        hyperflow_detail::env("HF_VAR_WORKER_CONTAINER", "hyperflowwms/1000genome-worker:1.1-latest"),
        hyperflow_detail::env("HF_VAR_WORK_DIR", "/work_dir"),
        hyperflow_detail::env("HF_VAR_BACKOFF_LIMIT", "0"),
        hyperflow_detail::env("HF_VAR_STOP_WORKFLOW_WHEN_JOB_FAILED", "1"),
        hyperflow_detail::field_env("HF_VAR_NAMESPACE", "metadata.namespace"),
        hyperflow_detail::env("HF_VAR_CPU_REQUEST", "0.7"),
        hyperflow_detail::env("HF_VAR_MEM_REQUEST", "500Mi"),
        hyperflow_detail::env("NODE_OPTIONS", "--max-old-space-size=4096"),
    };
    boost::json::array mounts{{{"name", "workdir"}, {"mountPath", "/work_dir"}},
                              {{"name", "config-map"}, {"mountPath", "/opt/hyperflow/job-template.yaml"},
                               {"subPath", "job-template.yaml"}}};
    boost::json::object engine{
        {"name", "hyperflow"},
        {"image", o.image},
        {"imagePullPolicy", "IfNotPresent"},
        {"command", boost::json::array{"/bin/sh", "-c"}},
        {"args", boost::json::array{
                     "while ! [ -f /work_dir/.conductor-ready ]; do sleep 2; done; cd /work_dir; mkdir -p logs-hf; "
                     "hflow run workflow.json; echo $? > /work_dir/.workflow-exit-code; "
                     "if [ \"$(ls -A logs-hf)\" ]; then touch /work_dir/postprocStart; fi; "
                     "while true; do sleep 5; done"}},
        {"env", std::move(engine_env)},
        {"resources", hyperflow_detail::resources("200m", "100Mi", "", "")},
        {"volumeMounts", mounts},
        {"workingDir", "/work_dir"},
    };
    boost::json::object tools{
        {"name", "hflow-tools"},
        {"image", "hyperflowwms/hflow-tools:v1.3.0"},
        {"imagePullPolicy", "IfNotPresent"},
        {"command", boost::json::array{"/bin/sh", "-c",
                                       "while ! [ -f /work_dir/parsingFinished ]; do sleep 5; done"}},
        {"volumeMounts", boost::json::array{{{"name", "workdir"}, {"mountPath", "/work_dir"}}}},
    };
    boost::json::object pod{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", o.name},
          {"generateName", rs_name + "-"},
          {"namespace", o.namespace_name},
          {"uid", o.uid},
          {"creationTimestamp", rfc3339(o.created)},
          {"labels",
           {{"app", "hyperflow"},
            {"component", "hyperflow-engine"},
            {"name", "hyperflow-engine"},
            {"pod-template-hash", o.replica_set_hash}}},
          {"ownerReferences",
           boost::json::array{{{"apiVersion", "apps/v1"},
                               {"kind", "ReplicaSet"},
                               {"name", rs_name},
                               {"uid", o.replica_set_uid},
                               {"controller", true},
                               {"blockOwnerDeletion", true}}}}}},
        {"spec",
         {{"containers", boost::json::array{std::move(engine), std::move(tools)}},
          {"restartPolicy", "Always"},
          {"serviceAccountName", "hyperflow-engine"},
          {"nodeSelector", {{"hyperflow-wms/nodepool", "hfmaster"}}},
          {"volumes", boost::json::array{{{"name", "workdir"}, {"persistentVolumeClaim", {{"claimName", "nfs"}}}},
                                         {{"name", "config-map"}, {"configMap", {{"name", "hyperflow-config"}}}}}}}},
        {"status", {{"phase", "Pending"}, {"qosClass", "Burstable"}}},
    };
    pod_set_running(pod, o.created, o.node_name);
    return pod;
}

/// The redis pod of the HyperFlow deployment (labels app=hyperflow, name=redis), Running.
inline boost::json::object redis_pod(std::string_view namespace_name, NameSource& names, WallTime created) {
    std::string hash = names.replica_set_hash();
    std::string name = "redis-" + hash + "-" + names.pod_suffix();
    boost::json::object pod{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", name},
          {"generateName", "redis-" + hash + "-"},
          {"namespace", namespace_name},
          {"uid", names.uid()},
          {"creationTimestamp", rfc3339(created)},
          {"labels", {{"app", "hyperflow"}, {"name", "redis"}, {"pod-template-hash", hash}}},
          {"ownerReferences", boost::json::array{{{"apiVersion", "apps/v1"},
                                                  {"kind", "ReplicaSet"},
                                                  {"name", "redis-" + hash},
                                                  {"uid", names.uid()},
                                                  {"controller", true},
                                                  {"blockOwnerDeletion", true}}}}}},
        {"spec",
         {{"containers", boost::json::array{{{"name", "redis"},
                                             {"image", "redis:7.2"},
                                             {"ports", boost::json::array{{{"containerPort", 6379}}}}}}},
          {"restartPolicy", "Always"}}},
        {"status", {{"phase", "Pending"}, {"qosClass", "BestEffort"}}},
    };
    pod_set_running(pod, created);
    return pod;
}

namespace hyperflow_detail {

inline boost::json::object support_job(std::string_view ns, std::string_view name, std::string_view role,
                                       std::string_view container, std::string_view image, int backoff_limit,
                                       NameSource& names, WallTime created, WallTime finished) {
    std::string uid = names.uid();
    boost::json::object job{
        {"apiVersion", "batch/v1"},
        {"kind", "Job"},
        {"metadata",
         {{"name", name},
          {"namespace", ns},
          {"uid", uid},
          {"creationTimestamp", rfc3339(created)},
          {"generation", 1},
          {"labels", {{"app", "hyperflow"}, {"role", role}}}}},
        {"spec",
         {{"backoffLimit", backoff_limit},
          {"completions", 1},
          {"parallelism", 1},
          {"completionMode", "NonIndexed"},
          {"suspend", false},
          {"selector", {{"matchLabels", {{"batch.kubernetes.io/controller-uid", uid}}}}},
          {"template",
           {{"metadata",
             {{"labels",
               {{"app", "hyperflow"},
                {"role", role},
                {"batch.kubernetes.io/controller-uid", uid},
                {"batch.kubernetes.io/job-name", name},
                {"controller-uid", uid},
                {"job-name", name}}}}},
            {"spec",
             {{"restartPolicy", "Never"},
              {"containers", boost::json::array{{{"name", container}, {"image", image}}}}}}}}}},
        {"status", boost::json::object{}},
    };
    job_set_counts(job, 0, 0, 1, 0, created);
    job_mark_complete(job, finished);
    return job;
}

} // namespace hyperflow_detail

/// The data-staging Job `nfs-data` (labels app=hyperflow, role=nfs-data), Complete.
inline boost::json::object nfs_data_job(std::string_view namespace_name, NameSource& names, WallTime created,
                                        WallTime finished) {
    return hyperflow_detail::support_job(namespace_name, "nfs-data", "nfs-data", "nfs-data",
                               "hyperflowwms/1000genome-data:1.0", 6, names, created, finished);
}

/// The conductor's `tabix-extract` Job (labels app=hyperflow, role=tabix-extract, container `tabix`,
/// backoffLimit 0), Complete.
inline boost::json::object tabix_extract_job(std::string_view namespace_name, NameSource& names, WallTime created,
                                             WallTime finished) {
    return hyperflow_detail::support_job(namespace_name, "tabix-extract", "tabix-extract", "tabix",
                               "quay.io/biocontainers/tabix:1.11--hdfd78af_0", 0, names, created, finished);
}

// ------------------------------------------------------------------------------------------------ events

/// What an Event says about which object.
struct EventOptions {
    std::string namespace_name = "default";
    std::string name;             ///< empty: "<involved name>.<16 hex>" from `names`
    std::string involved_kind = "Pod";
    std::string involved_name;
    std::string involved_uid;
    std::string involved_api_version = "v1";
    std::string field_path;       ///< e.g. "spec.containers{test}"
    std::string reason;           ///< "FailedScheduling", "BackOff", "Pulling", "Killing" …
    std::string message;
    std::string type = "Normal";  ///< "Normal" or "Warning"
    int count = 1;
    WallTime first{};
    WallTime last{};              ///< == first unless the event repeated
    std::string component = "kubelet"; ///< "default-scheduler", "job-controller" …
    std::string host;             ///< node name for kubelet events
};

/// A core/v1 Event with involvedObject, reason, message, type, count, first/lastTimestamp and eventTime null,
/// as kubelet and the controllers report them.
inline boost::json::object event(const EventOptions& o, NameSource& names) {
    std::string name = o.name.empty() ? o.involved_name + "." + names.event_suffix() : o.name;
    boost::json::object involved{{"kind", o.involved_kind},
                                 {"namespace", o.namespace_name},
                                 {"name", o.involved_name},
                                 {"uid", o.involved_uid},
                                 {"apiVersion", o.involved_api_version}};
    if (!o.field_path.empty()) involved["fieldPath"] = o.field_path;
    boost::json::object source{{"component", o.component}};
    if (!o.host.empty()) source["host"] = o.host;
    WallTime last = o.last < o.first ? o.first : o.last;
    return {
        {"apiVersion", "v1"},
        {"kind", "Event"},
        {"metadata",
         {{"name", name}, {"namespace", o.namespace_name}, {"uid", names.uid()},
          {"creationTimestamp", rfc3339(o.first)}}},
        {"involvedObject", std::move(involved)},
        {"reason", o.reason},
        {"message", o.message},
        {"source", std::move(source)},
        {"firstTimestamp", rfc3339(o.first)},
        {"lastTimestamp", rfc3339(last)},
        {"count", o.count},
        {"type", o.type},
        {"eventTime", nullptr},
        {"reportingComponent", o.component},
        {"reportingInstance", o.host},
    };
}

/// An Event about `object` (a Pod or Job as built above): involvedObject filled from its metadata.
inline boost::json::object event_about(const boost::json::object& object, std::string_view reason,
                                       std::string_view message, std::string_view type, WallTime when,
                                       NameSource& names, std::string_view component = "kubelet") {
    EventOptions o;
    const auto* meta = object.if_contains("metadata");
    if (meta && meta->is_object()) {
        o.namespace_name = std::string(hyperflow_detail::str_or(meta->as_object(), "namespace", "default"));
        o.involved_name = std::string(hyperflow_detail::str_or(meta->as_object(), "name"));
        o.involved_uid = std::string(hyperflow_detail::str_or(meta->as_object(), "uid"));
    }
    o.involved_kind = std::string(hyperflow_detail::str_or(object, "kind", "Pod"));
    o.involved_api_version = std::string(hyperflow_detail::str_or(object, "apiVersion", "v1"));
    o.reason = std::string(reason);
    o.message = std::string(message);
    o.type = std::string(type);
    o.first = o.last = when;
    o.component = std::string(component);
    if (component == "kubelet") {
        if (auto* sp = object.if_contains("spec"); sp && sp->is_object())
            o.host = std::string(hyperflow_detail::str_or(sp->as_object(), "nodeName"));
        if (o.involved_kind == "Pod") o.field_path = "spec.containers{" + hyperflow_detail::first_container_name(object) + "}";
    }
    return event(o, names);
}

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_HYPERFLOW_HPP
