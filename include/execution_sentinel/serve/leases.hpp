// Leases of `execution-sentinel serve` (docs/serve.md, "Several replicas"): each run is held by one replica
// through a coordination.k8s.io/v1 Lease in the run's namespace, with client-go's leader-election rules — the
// holder renews every retry period; a holder that could not renew for the renew deadline gives the run up; a lease
// whose record has not changed for its duration (as this replica observed it, so clocks need not agree) is expired
// and may be taken over; create and update are guarded by the resourceVersion, so two replicas cannot both win.
//
// Everything here is pure (the time is an argument): the Lease's JSON both ways, its name, and the decisions —
// may I acquire, must I renew, is it expired, have I lost it. The `serve` command drives them (one coroutine,
// a list of the leases per namespace scope and one write per decision).
#ifndef EXECUTION_SENTINEL_SERVE_LEASES_HPP
#define EXECUTION_SENTINEL_SERVE_LEASES_HPP

#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/kube/rfc3339.hpp>
#include <execution_sentinel/report.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace execution_sentinel::serve {

/// The timing of the leases: client-go's leader-election defaults. The lease duration is whole seconds (the
/// Lease counts in seconds); renew_deadline < lease_duration and retry_period < renew_deadline (config.hpp checks).
struct LeaseSettings {
    /// How long a lease stays valid after its last renewal, as seen by the other replicas.
    std::chrono::milliseconds lease_duration{15000};
    /// The holder gives a run up when it could not renew its lease for this long.
    std::chrono::milliseconds renew_deadline{10000};
    /// Period of the renewals and of the looks at the other leases.
    std::chrono::milliseconds retry_period{2000};
};

/// Label of every Lease `serve` writes (the list of the leases selects on it).
inline constexpr std::string_view lease_label = "app.kubernetes.io/managed-by";
inline constexpr std::string_view lease_label_value = "execution-sentinel";
/// Annotations: the run (namespace/engine pod) and the engine pod's uid the lease is for; the end of the run.
inline constexpr std::string_view lease_run_annotation = "execution-sentinel/run";
inline constexpr std::string_view lease_uid_annotation = "execution-sentinel/engine-uid";
inline constexpr std::string_view lease_finished_annotation = "execution-sentinel/finished";
/// Annotation of the lease of a run a client registered (POST /api/v1/runs): "true". Its context is in the
/// ConfigMap registration_configmap_name() names (serve/registration.hpp), so that any replica can take it over.
inline constexpr std::string_view lease_registered_annotation = "execution-sentinel/registered";

/// What a Lease says (spec and the annotations of `serve`), as read back: outside input, bounded.
struct LeaseRecord {
    std::string name;
    std::string namespace_;
    std::string resource_version;        ///< "" = not created yet
    std::string holder;                  ///< spec.holderIdentity; "" = free (released)
    std::int64_t duration_seconds = 0;   ///< spec.leaseDurationSeconds
    std::optional<Timestamp> acquire_time, renew_time;
    std::int64_t transitions = 0;        ///< spec.leaseTransitions
    std::string run;                     ///< "namespace/engine pod"
    std::string engine_uid;              ///< the engine pod's uid
    std::string finished;                ///< the run's end state once it ended ("" while it goes on)
    bool registered = false;             ///< a run a client registered (its context in a ConfigMap)

    bool operator==(const LeaseRecord&) const = default;
};

/// The Lease name of a run: "execution-sentinel-run-" and a hash of "namespace/engine pod" (a valid name).
inline std::string lease_name(std::string_view run_key) {
    return "execution-sentinel-run-" + execution_sentinel::detail::es_fnv1a_hex(run_key);
}

namespace lease_detail {

/// RFC 3339 with microseconds (metav1.MicroTime).
inline std::string micro_time(Timestamp t) {
    auto s = kube::format_rfc3339(t, kube::Rfc3339Precision::nanoseconds); // "…:SS.nnnnnnnnnZ"
    if (s.size() > 4 && s.back() == 'Z') s.erase(s.size() - 4, 3);
    return s;
}

inline std::string bounded_string(const boost::json::object& o, std::string_view key, std::size_t max = 512) {
    const auto* v = o.if_contains(key);
    if (!v || !v->is_string()) return {};
    std::string_view s = v->get_string();
    return std::string(s.substr(0, max));
}

inline std::int64_t bounded_int(const boost::json::object& o, std::string_view key, std::int64_t lo, std::int64_t hi) {
    const auto* v = o.if_contains(key);
    if (!v) return 0;
    std::int64_t n = 0;
    if (v->is_int64()) n = v->get_int64();
    else if (v->is_uint64()) n = v->get_uint64() > static_cast<std::uint64_t>(hi) ? hi : static_cast<std::int64_t>(v->get_uint64());
    else return 0;
    return std::clamp(n, lo, hi);
}

inline const boost::json::object* child(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_object() ? &v->get_object() : nullptr;
}

} // namespace lease_detail

/// Reads a Lease object (JSON as the API server serves it). Missing or malformed fields read as empty: a Lease
/// anyone may edit never stops `serve`, at worst it is treated as free or expired.
inline LeaseRecord lease_from_json(const boost::json::object& obj) {
    using namespace lease_detail;
    LeaseRecord r;
    if (const auto* meta = child(obj, "metadata")) {
        r.name = bounded_string(*meta, "name", 253);
        r.namespace_ = bounded_string(*meta, "namespace", 63);
        r.resource_version = bounded_string(*meta, "resourceVersion", 64);
        if (const auto* ann = child(*meta, "annotations")) {
            r.run = bounded_string(*ann, lease_run_annotation, 512);
            r.engine_uid = bounded_string(*ann, lease_uid_annotation, 64);
            r.finished = bounded_string(*ann, lease_finished_annotation, 64);
            r.registered = bounded_string(*ann, lease_registered_annotation, 8) == "true";
        }
    }
    if (const auto* spec = child(obj, "spec")) {
        r.holder = bounded_string(*spec, "holderIdentity", 512);
        r.duration_seconds = bounded_int(*spec, "leaseDurationSeconds", 0, 86400);
        r.transitions = bounded_int(*spec, "leaseTransitions", 0, INT32_MAX);
        auto time = [&](std::string_view key) -> std::optional<Timestamp> {
            auto s = bounded_string(*spec, key, 64);
            if (s.empty()) return std::nullopt;
            return kube::parse_rfc3339(s);
        };
        r.acquire_time = time("acquireTime");
        r.renew_time = time("renewTime");
    }
    return r;
}

/// The Lease object for a create (no resourceVersion) or a guarded update (with it).
inline boost::json::object lease_to_json(const LeaseRecord& r) {
    using lease_detail::micro_time;
    boost::json::object ann{{lease_run_annotation, r.run}, {lease_uid_annotation, r.engine_uid}};
    if (!r.finished.empty()) ann[lease_finished_annotation] = r.finished;
    if (r.registered) ann[lease_registered_annotation] = "true";
    boost::json::object meta{{"name", r.name},
                             {"namespace", r.namespace_},
                             {"labels", {{lease_label, lease_label_value}}},
                             {"annotations", std::move(ann)}};
    if (!r.resource_version.empty()) meta["resourceVersion"] = r.resource_version;
    boost::json::object spec{{"holderIdentity", r.holder},
                             {"leaseDurationSeconds", r.duration_seconds},
                             {"leaseTransitions", r.transitions}};
    if (r.acquire_time) spec["acquireTime"] = micro_time(*r.acquire_time);
    if (r.renew_time) spec["renewTime"] = micro_time(*r.renew_time);
    return {{"apiVersion", "coordination.k8s.io/v1"}, {"kind", "Lease"}, {"metadata", std::move(meta)},
            {"spec", std::move(spec)}};
}

/// The run ("namespace", "engine pod") a Lease read back is for, when it is a run's lease whose annotations agree
/// with its place: the run is "namespace/engine pod" with the Lease's own namespace and a valid pod name, and the
/// Lease's name is lease_name() of it. nullopt for a membership, or for a Lease edited into something else (it
/// is then left alone: no replica starts a run from it).
inline std::optional<std::pair<std::string, std::string>> lease_run(const LeaseRecord& r) {
    const auto slash = r.run.find('/');
    if (slash == std::string::npos) return std::nullopt;
    std::string ns = r.run.substr(0, slash), pod = r.run.substr(slash + 1);
    if (ns != r.namespace_ || !execution_sentinel::detail::es_is_dns1123_label(ns) ||
        !execution_sentinel::detail::es_is_dns1123_subdomain(pod) || r.name != lease_name(r.run))
        return std::nullopt;
    return std::pair{std::move(ns), std::move(pod)};
}

/// A lease as one replica sees it: the record and when this replica saw it change last (its own clock).
struct ObservedLease {
    LeaseRecord record;
    Timestamp observed_at{};
};

/// Folds a newly read record into what was observed: the observation time moves only when the record changed
/// (client-go's rule: expiry is judged by how long the record has stayed the same here, not by the holder's clock).
inline ObservedLease observe_lease(const std::optional<ObservedLease>& before, LeaseRecord now_read, Timestamp now) {
    if (before && before->record == now_read) return *before;
    return {std::move(now_read), now};
}

/// Whether the lease may be taken: free (no holder), or not renewed for its duration since it was observed.
/// A lease with a duration of 0 or less counts as 1 s (a zero would make every lease expired at once).
inline bool lease_expired(const ObservedLease& o, Timestamp now) {
    if (o.record.holder.empty()) return true;
    const auto duration = std::chrono::seconds(std::max<std::int64_t>(o.record.duration_seconds, 1));
    return now >= o.observed_at + duration;
}

/// What a replica does about a run's lease when it is not its holder.
enum class LeaseDecision : std::uint8_t {
    create,   ///< there is no Lease: create it (holding it)
    acquire,  ///< free or expired: take it over by a guarded update
    wait,     ///< another replica holds it and renews it
    finished, ///< the run ended (on any replica): nothing to do
    stale,    ///< the Lease is of an earlier engine pod of that name: take it over (a new run)
};

/// The decision for a run whose engine pod has `engine_uid`, given its Lease as observed (nullopt = none).
inline LeaseDecision decide_lease(const std::optional<ObservedLease>& lease, std::string_view engine_uid, Timestamp now) {
    if (!lease) return LeaseDecision::create;
    const auto& r = lease->record;
    if (!r.engine_uid.empty() && !engine_uid.empty() && r.engine_uid != engine_uid) return LeaseDecision::stale;
    if (!r.finished.empty()) return LeaseDecision::finished;
    return lease_expired(*lease, now) ? LeaseDecision::acquire : LeaseDecision::wait;
}

/// The Lease name of a replica's membership (renewed like a run's lease; the replicas alive are those whose
/// membership is not expired): "execution-sentinel-replica-" and a hash of its identity.
inline std::string member_lease_name(std::string_view identity) {
    return "execution-sentinel-replica-" + execution_sentinel::detail::es_fnv1a_hex(identity);
}

/// Whether a Lease name is a replica's membership (not a run's lease).
inline bool is_member_lease(std::string_view name) { return name.starts_with("execution-sentinel-replica-"); }

/// A replica's fair share of the runs: the runs held by live replicas plus those waiting for a holder, divided
/// among the live replicas (at least 1: itself), rounded up.
inline std::size_t fair_share(std::size_t held_by_live, std::size_t waiting, std::size_t live_replicas) {
    const std::size_t replicas = std::max<std::size_t>(live_replicas, 1);
    return (held_by_live + waiting + replicas - 1) / replicas;
}

/// Whether a replica that holds `held` runs should try to acquire a free or expired lease now. Below its fair
/// share it does; at or above it, it leaves the lease to the others for two retry periods after the lease became
/// available, then anyone takes it, so that no run waits for long.
inline bool should_try_acquire(std::size_t held, std::size_t fair, Timestamp available_since, Timestamp now,
                               const LeaseSettings& s) {
    return held < fair || now >= available_since + 2 * s.retry_period;
}

/// The record that makes `identity` the holder (create when `current` is nullopt, else a takeover), at `now`.
/// leaseTransitions counts the changes of holder (not the first holder).
inline LeaseRecord acquired_lease(const std::optional<LeaseRecord>& current, std::string name, std::string ns,
                                  std::string run, std::string engine_uid, std::string identity, Timestamp now,
                                  const LeaseSettings& s) {
    LeaseRecord r = current.value_or(LeaseRecord{});
    const bool stale = current && !current->engine_uid.empty() && current->engine_uid != engine_uid;
    if (current && !current->holder.empty() && current->holder != identity && !stale) ++r.transitions;
    if (stale) {
        r.transitions = 0;
        r.finished.clear();
    }
    r.name = std::move(name);
    r.namespace_ = std::move(ns);
    r.run = std::move(run);
    r.engine_uid = std::move(engine_uid);
    r.holder = std::move(identity);
    r.duration_seconds = std::chrono::duration_cast<std::chrono::seconds>(s.lease_duration).count();
    r.acquire_time = now;
    r.renew_time = now;
    return r;
}

/// The record after a renewal at `now`.
inline LeaseRecord renewed_lease(LeaseRecord r, Timestamp now) {
    r.renew_time = now;
    return r;
}

/// The record that gives the run up at once (graceful shutdown): no holder, so another replica takes it over
/// without waiting for it to expire.
inline LeaseRecord released_lease(LeaseRecord r, Timestamp now) {
    r.holder.clear();
    r.renew_time = now;
    return r;
}

/// The record of a run that ended with `state`: no holder, and no replica starts it again.
inline LeaseRecord finished_lease(LeaseRecord r, std::string state, Timestamp now) {
    r = released_lease(std::move(r), now);
    r.finished = std::move(state);
    return r;
}

/// Whether the holder must renew now: every retry period after its last successful renewal.
inline bool renewal_due(Timestamp last_renewed, Timestamp now, const LeaseSettings& s) {
    return now >= last_renewed + s.retry_period;
}

/// Whether the holder has lost the run: it could not renew for the renew deadline (so that it stops before the
/// others may take the lease over, a lease duration after its last renewal).
inline bool renewal_deadline_passed(Timestamp last_renewed, Timestamp now, const LeaseSettings& s) {
    return now >= last_renewed + s.renew_deadline;
}

} // namespace execution_sentinel::serve

#endif // EXECUTION_SENTINEL_SERVE_LEASES_HPP
