// Watch events decoded straight from bytes into the typed views, without building a JSON tree.
//
// WatchDecoder<T> frames a watch body exactly like WatchFramer (same limits, same errors, same byte offsets) but
// drives a Boost.JSON SAX parser (boost::json::basic_parser) with a handler that knows the shape of a watch event
// {"type": …, "object": {…}} and of T: it keeps only the fields the view holds (kube/objects.hpp) and the
// metav1.Status fields of an ERROR event, and skips everything else — metadata.managedFields, spec, most of the
// status — without allocating for it. The result equals what the tree-based reference (WatchFramer +
// ResourceTraits<T>::parse / parse_status, kube/parse.hpp) gives for the same bytes, field by field, including
// for repeated keys (the last one wins), mistyped fields (read as absent) and the order of keys. Pure: no I/O.
#ifndef EXECUTION_SENTINEL_KUBE_WATCH_DECODER_HPP
#define EXECUTION_SENTINEL_KUBE_WATCH_DECODER_HPP

#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/watch_framer.hpp>

#include <boost/json/array.hpp>
#include <boost/json/basic_parser.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/string.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

/// One watch event with its object already in typed form. `object` is the view of `object` for every type
/// (for BOOKMARK only its metadata matters); `status` is `object` read as a metav1.Status (what an ERROR event
/// carries).
template <class T> struct DecodedWatchEvent {
    RawWatchEventType type = RawWatchEventType::added;
    T object{};
    ApiStatus status{};
};

namespace detail {

/// The SAX handler: a small state machine over the paths of a watch event that the views read.
template <class T> class WatchEventHandler {
public:
    static constexpr std::size_t max_object_size = boost::json::object::max_size();
    static constexpr std::size_t max_array_size = boost::json::array::max_size();
    static constexpr std::size_t max_key_size = boost::json::string::max_size();
    static constexpr std::size_t max_string_size = boost::json::string::max_size();

    using ec_t = boost::system::error_code;
    using sv_t = boost::json::string_view;

    // ---- the outcome of the last document
    bool root_is_object() const noexcept { return root_object_; }
    bool has_type() const noexcept { return type_present_; }
    std::string_view type_text() const noexcept { return type_; }
    bool has_object() const noexcept { return object_present_; }
    T& object() noexcept { return obj_; }
    ApiStatus& status() noexcept { return status_; }

    // ---- basic_parser's handler interface
    bool on_document_begin(ec_t&) {
        top_ = 0;
        skip_ = 0;
        pending_ = N::root;
        root_object_ = type_present_ = object_present_ = false;
        type_.clear();
        key_.clear();
        str_.clear();
        return true;
    }
    bool on_document_end(ec_t&) { return true; }

    bool on_object_begin(ec_t&) {
        if (skip_ > 0) return ++skip_, true;
        N n = slot();
        reset(n);
        if (n == N::obj_status) n = is_pod ? N::p_status : is_job ? N::j_status : N::skip;
        if (is_object_node(n)) {
            begin_object(n);
            push(n);
        } else {
            ++skip_;
        }
        return true;
    }
    bool on_object_end(std::size_t, ec_t&) {
        if (skip_ > 0) return --skip_, true;
        end_object(pop());
        return true;
    }
    bool on_array_begin(ec_t&) {
        if (skip_ > 0) return ++skip_, true;
        N n = slot();
        reset(n);
        if (is_array_node(n)) {
            if (n == N::p_init_statuses || n == N::p_statuses) statuses_are_init_ = n == N::p_init_statuses;
            push(n);
        } else {
            ++skip_;
        }
        return true;
    }
    bool on_array_end(std::size_t, ec_t&) {
        if (skip_ > 0) return --skip_, true;
        end_array(pop());
        return true;
    }
    bool on_key_part(sv_t s, std::size_t, ec_t&) {
        if (skip_ == 0) key_.append(s.data(), s.size());
        return true;
    }
    bool on_key(sv_t s, std::size_t n, ec_t&) {
        if (skip_ > 0) return true;
        if (n == s.size()) {
            pending_ = child(stack_[top_ - 1], std::string_view(s.data(), s.size()));
        } else {
            key_.append(s.data(), s.size());
            pending_ = child(stack_[top_ - 1], key_);
        }
        key_.clear();
        return true;
    }
    bool on_string_part(sv_t s, std::size_t, ec_t&) {
        if (skip_ == 0) str_.append(s.data(), s.size());
        return true;
    }
    bool on_string(sv_t s, std::size_t n, ec_t&) {
        if (skip_ > 0) return true;
        N node = slot();
        reset(node);
        if (n == s.size()) {
            string_value(node, std::string_view(s.data(), s.size()));
        } else {
            str_.append(s.data(), s.size());
            string_value(node, str_);
        }
        str_.clear();
        return true;
    }
    bool on_number_part(sv_t, ec_t&) { return true; }
    bool on_int64(std::int64_t i, sv_t, ec_t&) { return number(i); }
    bool on_uint64(std::uint64_t u, sv_t, ec_t&) {
        return number(u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                          ? std::numeric_limits<std::int64_t>::max()
                          : static_cast<std::int64_t>(u));
    }
    bool on_double(double d, sv_t, ec_t&) {
        if (d >= -9.0e18 && d <= 9.0e18) return number(static_cast<std::int64_t>(d));
        return scalar(); // read as absent, like int_value() in parse.hpp
    }
    bool on_bool(bool b, ec_t&) {
        if (skip_ > 0) return true;
        N n = slot();
        reset(n);
        if (n == N::o_controller) owner_controller_ = b;
        else if (n == N::cs_ready) cs_.ready = b;
        return true;
    }
    bool on_null(ec_t&) { return scalar(); }
    bool on_comment_part(sv_t, ec_t&) { return true; }
    bool on_comment(sv_t, ec_t&) { return true; }

private:
    static constexpr bool is_pod = std::is_same_v<T, Pod>;
    static constexpr bool is_job = std::is_same_v<T, Job>;
    static constexpr bool is_event = std::is_same_v<T, Event>;

    /// Every place in a watch event whose value matters. `skip` is everything else.
    enum class N : std::uint8_t {
        skip, root, env_type, object,
        // metadata
        meta, m_name, m_namespace, m_uid, m_rv, m_created, m_deleted, labels, label_value, owners, owner, o_kind,
        o_name, o_uid, o_controller,
        // keys of the object shared by the view and metav1.Status
        obj_status, obj_reason, obj_message,
        // Pod
        p_spec, p_node_name, p_containers, p_container, pc_name, pc_resources, pc_limits, pc_requests, lim_mem,
        lim_cpu, req_mem, req_cpu, p_status, p_phase, p_reason, p_message, p_start, p_conds, p_cond, cond_type,
        cond_status, cond_reason, cond_message, cond_ltt, p_init_statuses, p_statuses, cs, cs_name, cs_ready,
        cs_restarts, cs_state, cs_last_state, st_terminated, st_waiting, st_running, t_reason, t_message, t_exit,
        t_signal, t_started, t_finished, w_reason, w_message, r_started,
        // Job
        j_spec, j_backoff, j_status, j_active, j_succeeded, j_failed, j_ready, j_terminating, j_start, j_completion,
        j_conds, j_cond, jc_type, jc_status, jc_reason, jc_message,
        // Event
        e_involved, e_regarding, inv_kind, inv_name, inv_uid, e_note, e_type, e_count, e_series, e_series_count,
        e_first, e_last, e_event_time,
        // metav1.Status
        s_code, s_details, s_retry, s_causes, s_cause, sc_reason, sc_type, sc_message, sc_field,
    };

    static constexpr bool is_object_node(N n) noexcept {
        switch (n) {
        case N::root: case N::object: case N::meta: case N::labels: case N::owner: case N::p_status:
        case N::j_status: case N::p_spec: case N::p_container: case N::pc_resources: case N::pc_limits: case N::pc_requests:
        case N::p_cond: case N::cs: case N::cs_state: case N::cs_last_state: case N::st_terminated:
        case N::st_waiting: case N::st_running: case N::j_spec: case N::j_cond: case N::e_involved:
        case N::e_regarding: case N::e_series: case N::s_details: case N::s_cause:
            return true;
        default: return false;
        }
    }
    static constexpr bool is_array_node(N n) noexcept {
        switch (n) {
        case N::owners: case N::p_containers: case N::p_conds: case N::p_init_statuses: case N::p_statuses:
        case N::j_conds: case N::s_causes:
            return true;
        default: return false;
        }
    }
    static constexpr N element_of(N array) noexcept {
        switch (array) {
        case N::owners: return N::owner;
        case N::p_containers: return N::p_container;
        case N::p_conds: return N::p_cond;
        case N::p_init_statuses:
        case N::p_statuses: return N::cs;
        case N::j_conds: return N::j_cond;
        case N::s_causes: return N::s_cause;
        default: return N::skip;
        }
    }

    /// The node of the value about to start.
    N slot() const noexcept {
        if (top_ == 0) return N::root;
        N parent = stack_[top_ - 1];
        return is_array_node(parent) ? element_of(parent) : pending_;
    }
    void push(N n) noexcept { stack_[top_++] = n; }
    N pop() noexcept { return stack_[--top_]; }

    /// The node of `key` inside an object node. The schema is at most 8 levels deep: the stack never overflows.
    N child(N parent, std::string_view k) noexcept {
        switch (parent) {
        case N::root:
            if (k == "type") return N::env_type;
            if (k == "object") return N::object;
            return N::skip;
        case N::object:
            if (k == "metadata") return N::meta;
            if (k == "status") return N::obj_status;
            if (k == "reason") return N::obj_reason;
            if (k == "message") return N::obj_message;
            if (k == "code") return N::s_code;
            if (k == "details") return N::s_details;
            if constexpr (is_pod || is_job)
                if (k == "spec") return is_pod ? N::p_spec : N::j_spec;
            if constexpr (is_event) {
                if (k == "involvedObject") return N::e_involved;
                if (k == "regarding") return N::e_regarding;
                if (k == "note") return N::e_note;
                if (k == "type") return N::e_type;
                if (k == "count") return N::e_count;
                if (k == "series") return N::e_series;
                if (k == "firstTimestamp") return N::e_first;
                if (k == "lastTimestamp") return N::e_last;
                if (k == "eventTime") return N::e_event_time;
            }
            return N::skip;
        case N::meta:
            if (k == "name") return N::m_name;
            if (k == "namespace") return N::m_namespace;
            if (k == "uid") return N::m_uid;
            if (k == "resourceVersion") return N::m_rv;
            if (k == "creationTimestamp") return N::m_created;
            if (k == "deletionTimestamp") return N::m_deleted;
            if (k == "labels") return N::labels;
            if (k == "ownerReferences") return N::owners;
            return N::skip;
        case N::labels:
            obj_.meta.labels.items.emplace_back(interned_.get(k), InternedString());
            label_valid_.push_back(false);
            return N::label_value;
        case N::owner:
            if (k == "kind") return N::o_kind;
            if (k == "name") return N::o_name;
            if (k == "uid") return N::o_uid;
            if (k == "controller") return N::o_controller;
            return N::skip;
        case N::p_spec:
            if (k == "nodeName") return N::p_node_name;
            if (k == "containers") return N::p_containers;
            return N::skip;
        case N::p_container:
            if (k == "name") return N::pc_name;
            if (k == "resources") return N::pc_resources;
            return N::skip;
        case N::pc_resources:
            if (k == "limits") return N::pc_limits;
            if (k == "requests") return N::pc_requests;
            return N::skip;
        case N::pc_limits:
            if (k == "memory") return N::lim_mem;
            if (k == "cpu") return N::lim_cpu;
            return N::skip;
        case N::pc_requests:
            if (k == "memory") return N::req_mem;
            if (k == "cpu") return N::req_cpu;
            return N::skip;
        case N::p_status:
            if (k == "phase") return N::p_phase;
            if (k == "reason") return N::p_reason;
            if (k == "message") return N::p_message;
            if (k == "startTime") return N::p_start;
            if (k == "conditions") return N::p_conds;
            if (k == "initContainerStatuses") return N::p_init_statuses;
            if (k == "containerStatuses") return N::p_statuses;
            return N::skip;
        case N::p_cond:
            if (k == "type") return N::cond_type;
            if (k == "status") return N::cond_status;
            if (k == "reason") return N::cond_reason;
            if (k == "message") return N::cond_message;
            if (k == "lastTransitionTime") return N::cond_ltt;
            return N::skip;
        case N::cs:
            if (k == "name") return N::cs_name;
            if (k == "ready") return N::cs_ready;
            if (k == "restartCount") return N::cs_restarts;
            if (k == "state") return N::cs_state;
            if (k == "lastState") return N::cs_last_state;
            return N::skip;
        case N::cs_state:
        case N::cs_last_state:
            if (k == "terminated") return N::st_terminated;
            if (k == "waiting") return N::st_waiting;
            if (k == "running") return N::st_running;
            return N::skip;
        case N::st_terminated:
            if (k == "reason") return N::t_reason;
            if (k == "message") return N::t_message;
            if (k == "exitCode") return N::t_exit;
            if (k == "signal") return N::t_signal;
            if (k == "startedAt") return N::t_started;
            if (k == "finishedAt") return N::t_finished;
            return N::skip;
        case N::st_waiting:
            if (k == "reason") return N::w_reason;
            if (k == "message") return N::w_message;
            return N::skip;
        case N::st_running:
            if (k == "startedAt") return N::r_started;
            return N::skip;
        case N::j_spec:
            if (k == "backoffLimit") return N::j_backoff;
            return N::skip;
        case N::j_status:
            if (k == "active") return N::j_active;
            if (k == "succeeded") return N::j_succeeded;
            if (k == "failed") return N::j_failed;
            if (k == "ready") return N::j_ready;
            if (k == "terminating") return N::j_terminating;
            if (k == "startTime") return N::j_start;
            if (k == "completionTime") return N::j_completion;
            if (k == "conditions") return N::j_conds;
            return N::skip;
        case N::j_cond:
            if (k == "type") return N::jc_type;
            if (k == "status") return N::jc_status;
            if (k == "reason") return N::jc_reason;
            if (k == "message") return N::jc_message;
            return N::skip;
        case N::e_involved:
        case N::e_regarding:
            if (k == "kind") return N::inv_kind;
            if (k == "name") return N::inv_name;
            if (k == "uid") return N::inv_uid;
            return N::skip;
        case N::e_series:
            if (k == "count") return N::e_series_count;
            return N::skip;
        case N::s_details:
            if (k == "retryAfterSeconds") return N::s_retry;
            if (k == "causes") return N::s_causes;
            return N::skip;
        case N::s_cause:
            if (k == "reason") return N::sc_reason;
            if (k == "type") return N::sc_type;
            if (k == "message") return N::sc_message;
            if (k == "field") return N::sc_field;
            return N::skip;
        default: return N::skip;
        }
    }

    /// A value (of any type) starts for node `n`: the field reads as absent until a value of the right type
    /// fills it. This gives the tree's semantics for repeated keys (the last wins) and mistyped values.
    void reset(N n) {
        switch (n) {
        case N::env_type: type_present_ = false; type_.clear(); break;
        case N::object:
            object_present_ = false;
            obj_ = T{};
            status_ = ApiStatus{};
            if constexpr (is_event) ev_ = EventParts{};
            break;
        case N::meta: obj_.meta = ObjectMeta{}; break;
        case N::m_name: obj_.meta.name.clear(); break;
        case N::m_namespace: obj_.meta.namespace_.clear(); break;
        case N::m_uid: obj_.meta.uid.clear(); break;
        case N::m_rv: obj_.meta.resource_version.clear(); break;
        case N::m_created: obj_.meta.creation_timestamp = Timestamp{}; break;
        case N::m_deleted: obj_.meta.deletion_timestamp.reset(); break;
        case N::labels: obj_.meta.labels.items.clear(); label_valid_.clear(); break;
        case N::owners: obj_.meta.owner.reset(); owner_found_controller_ = false; break;
        case N::owner: owner_ = OwnerRef{}; owner_controller_ = false; break;
        case N::o_kind: owner_.kind.clear(); break;
        case N::o_name: owner_.name.clear(); break;
        case N::o_uid: owner_.uid.clear(); break;
        case N::o_controller: owner_controller_ = false; break;
        case N::obj_status:
            status_.status.clear();
            if constexpr (is_pod) {
                obj_.phase = PodPhase::unknown;
                obj_.reason.clear();
                obj_.message.clear();
                obj_.start_time.reset();
                obj_.conditions.clear();
                obj_.true_conditions = 0;
                obj_.init_containers.clear();
                obj_.containers.clear();
            } else if constexpr (is_job) {
                obj_.active = obj_.succeeded = obj_.failed = obj_.ready = obj_.terminating = 0;
                obj_.start_time.reset();
                obj_.completion_time.reset();
                obj_.conditions.clear();
            }
            break;
        case N::obj_reason:
            status_.reason.clear();
            if constexpr (is_event) obj_.reason.clear();
            break;
        case N::obj_message:
            status_.message.clear();
            if constexpr (is_event) ev_.message.clear();
            break;
        case N::s_code: status_.code = 0; break;
        case N::s_details: status_.retry_after_seconds.reset(); status_.causes.clear(); break;
        case N::s_retry: status_.retry_after_seconds.reset(); break;
        case N::s_causes: status_.causes.clear(); break;
        case N::s_cause: cause_ = StatusCause{}; cause_type_.clear(); break;
        case N::sc_reason: cause_.reason.clear(); break;
        case N::sc_type: cause_type_.clear(); break;
        case N::sc_message: cause_.message.clear(); break;
        case N::sc_field: cause_.field.clear(); break;
        default: break;
        }
        if constexpr (is_pod) reset_pod(n);
        if constexpr (is_job) reset_job(n);
        if constexpr (is_event) reset_event(n);
    }
    void reset_pod(N n) {
        switch (n) {
        case N::p_spec: obj_.node_name.clear(); obj_.resources.clear(); break;
        case N::p_node_name: obj_.node_name.clear(); break;
        case N::p_containers: obj_.resources.clear(); break;
        case N::p_container: res_ = ContainerResources{}; res_present_ = false; break;
        case N::pc_name: res_.name.clear(); break;
        case N::pc_resources:
            res_present_ = false;
            res_.memory_limit_bytes = res_.memory_request_bytes = 0;
            res_.cpu_limit_millicores = res_.cpu_request_millicores = 0;
            break;
        case N::pc_limits: res_.memory_limit_bytes = 0; res_.cpu_limit_millicores = 0; break;
        case N::pc_requests: res_.memory_request_bytes = 0; res_.cpu_request_millicores = 0; break;
        case N::lim_mem: res_.memory_limit_bytes = 0; break;
        case N::lim_cpu: res_.cpu_limit_millicores = 0; break;
        case N::req_mem: res_.memory_request_bytes = 0; break;
        case N::req_cpu: res_.cpu_request_millicores = 0; break;
        case N::p_phase: obj_.phase = PodPhase::unknown; break;
        case N::p_reason: obj_.reason.clear(); break;
        case N::p_message: obj_.message.clear(); break;
        case N::p_start: obj_.start_time.reset(); break;
        case N::p_conds: obj_.conditions.clear(); obj_.true_conditions = 0; break;
        case N::p_cond: cond_ = Condition{}; break;
        case N::cond_type: cond_.type.clear(); break;
        case N::cond_status: cond_.status.clear(); break;
        case N::cond_reason: cond_.reason.clear(); break;
        case N::cond_message: cond_.message.clear(); break;
        case N::cond_ltt: cond_.last_transition_time.reset(); break;
        case N::p_init_statuses: obj_.init_containers.clear(); break;
        case N::p_statuses: obj_.containers.clear(); break;
        case N::cs: cs_ = ContainerStatus{}; break;
        case N::cs_name: cs_.name.clear(); break;
        case N::cs_ready: cs_.ready = false; break;
        case N::cs_restarts: cs_.restart_count = 0; break;
        case N::cs_state: cs_.state = ContainerState{}; break;
        case N::cs_last_state: cs_.last_state = ContainerState{}; break;
        case N::st_terminated: has_terminated_ = false; terminated_ = ContainerState{}; break;
        case N::st_waiting: has_waiting_ = false; waiting_ = ContainerState{}; break;
        case N::st_running: has_running_ = false; running_ = ContainerState{}; break;
        case N::t_reason: terminated_.reason.clear(); break;
        case N::t_message: terminated_.message.clear(); break;
        case N::t_exit: terminated_.exit_code = 0; break;
        case N::t_signal: terminated_.signal = 0; break;
        case N::t_started: terminated_.started_at.reset(); break;
        case N::t_finished: terminated_.finished_at.reset(); break;
        case N::w_reason: waiting_.reason.clear(); break;
        case N::w_message: waiting_.message.clear(); break;
        case N::r_started: running_.started_at.reset(); break;
        default: break;
        }
    }
    void reset_job(N n) {
        switch (n) {
        case N::j_spec:
        case N::j_backoff: obj_.backoff_limit.reset(); break;
        case N::j_active: obj_.active = 0; break;
        case N::j_succeeded: obj_.succeeded = 0; break;
        case N::j_failed: obj_.failed = 0; break;
        case N::j_ready: obj_.ready = 0; break;
        case N::j_terminating: obj_.terminating = 0; break;
        case N::j_start: obj_.start_time.reset(); break;
        case N::j_completion: obj_.completion_time.reset(); break;
        case N::j_conds: obj_.conditions.clear(); break;
        case N::j_cond: jcond_ = JobCondition{}; break;
        case N::jc_type: jcond_.type = JobCondition::Type::other; break;
        case N::jc_status: jcond_.status = false; break;
        case N::jc_reason: jcond_.reason.clear(); break;
        case N::jc_message: jcond_.message.clear(); break;
        default: break;
        }
    }
    void reset_event(N n) {
        switch (n) {
        case N::e_involved: ev_.has_involved = false; ev_.involved = Event::Involved{}; break;
        case N::e_regarding: ev_.has_regarding = false; ev_.regarding = Event::Involved{}; break;
        case N::inv_kind: involved_target().kind.clear(); break;
        case N::inv_name: involved_target().name.clear(); break;
        case N::inv_uid: involved_target().uid.clear(); break;
        case N::e_note: ev_.note.clear(); break;
        case N::e_type: obj_.type.clear(); break;
        case N::e_count: ev_.count.reset(); break;
        case N::e_series: ev_.series_count.reset(); break;
        case N::e_series_count: ev_.series_count.reset(); break;
        case N::e_first: ev_.first.reset(); break;
        case N::e_last: ev_.last.reset(); break;
        case N::e_event_time: ev_.event_time.reset(); break;
        default: break;
        }
    }

    void begin_object(N n) noexcept {
        switch (n) {
        case N::root: root_object_ = true; break;
        case N::object: object_present_ = true; break;
        case N::st_terminated: has_terminated_ = true; break;
        case N::st_waiting: has_waiting_ = true; break;
        case N::st_running: has_running_ = true; break;
        case N::pc_resources: res_present_ = true; break;
        case N::cs_state:
        case N::cs_last_state: clear_state_parts(); break;
        case N::e_involved: ev_involved_target_regarding_ = false; ev_has(true); break;
        case N::e_regarding: ev_involved_target_regarding_ = true; ev_has(false); break;
        default: break;
        }
    }
    void ev_has(bool involved) noexcept {
        if constexpr (is_event) (involved ? ev_.has_involved : ev_.has_regarding) = true;
    }
    void clear_state_parts() noexcept {
        has_terminated_ = has_waiting_ = has_running_ = false;
        if constexpr (is_pod) {
            terminated_ = ContainerState{};
            waiting_ = ContainerState{};
            running_ = ContainerState{};
        }
    }

    void end_object(N n) {
        switch (n) {
        case N::labels: finish_labels(); break;
        case N::owner:
            if (!owner_found_controller_) {
                if (!obj_.meta.owner || owner_controller_) obj_.meta.owner = owner_;
                if (owner_controller_) owner_found_controller_ = true;
            }
            break;
        case N::p_container:
            if constexpr (is_pod)
                if (res_present_ && (res_.memory_limit_bytes != 0 || res_.memory_request_bytes != 0 ||
                                     res_.cpu_limit_millicores != 0 || res_.cpu_request_millicores != 0))
                    obj_.resources.push_back(std::move(res_));
            break;
        case N::p_cond:
            if constexpr (is_pod) {
                if (cond_.status == "True")
                    if (auto bit = Pod::ordinary_condition_bit(cond_.type); bit != 0) {
                        obj_.true_conditions |= bit;
                        break;
                    }
                obj_.conditions.push_back(std::move(cond_));
            }
            break;
        case N::cs_state:
        case N::cs_last_state:
            if constexpr (is_pod) {
                ContainerState& out = n == N::cs_state ? cs_.state : cs_.last_state;
                if (has_terminated_) {
                    out = std::move(terminated_);
                    out.kind = ContainerState::Kind::terminated;
                } else if (has_waiting_) {
                    out = std::move(waiting_);
                    out.kind = ContainerState::Kind::waiting;
                } else if (has_running_) {
                    out = std::move(running_);
                    out.kind = ContainerState::Kind::running;
                }
            }
            break;
        case N::cs:
            if constexpr (is_pod) (statuses_are_init_ ? obj_.init_containers : obj_.containers).push_back(std::move(cs_));
            break;
        case N::j_cond:
            if constexpr (is_job) obj_.conditions.push_back(std::move(jcond_));
            break;
        case N::s_cause:
            if (cause_.reason.empty()) cause_.reason = std::move(cause_type_);
            status_.causes.push_back(std::move(cause_));
            break;
        case N::object:
            if constexpr (is_event) finish_event();
            break;
        default: break;
        }
    }
    void end_array(N) noexcept {}

    void finish_labels() {
        auto& items = obj_.meta.labels.items;
        bool duplicates = false;
        if (items.size() > 1 && items.size() <= 16) { // the usual handful: no allocation
            for (std::size_t i = 0; i + 1 < items.size(); ++i)
                for (std::size_t j = i + 1; j < items.size(); ++j)
                    if (items[i].first == items[j].first) {
                        label_valid_[i] = false;
                        duplicates = true;
                        break;
                    }
        } else if (items.size() > 16) {
            // Repeated keys: the last one wins (and a non-string last value drops the label), as in the tree.
            std::vector<std::size_t> order(items.size());
            std::iota(order.begin(), order.end(), std::size_t{0});
            std::stable_sort(order.begin(), order.end(),
                             [&](std::size_t a, std::size_t b) { return items[a].first < items[b].first; });
            for (std::size_t i = 0; i + 1 < order.size(); ++i)
                if (items[order[i]].first == items[order[i + 1]].first) {
                    label_valid_[order[i]] = false;
                    duplicates = true;
                }
        }
        bool all_valid = !duplicates && std::find(label_valid_.begin(), label_valid_.end(), false) == label_valid_.end();
        if (!all_valid) {
            std::size_t w = 0;
            for (std::size_t i = 0; i < items.size(); ++i)
                if (label_valid_[i]) {
                    if (w != i) items[w] = std::move(items[i]);
                    ++w;
                }
            items.resize(w);
        }
        std::sort(items.begin(), items.end());
        label_valid_.clear();
    }

    void finish_event() {
        if constexpr (is_event) {
            if (ev_.has_involved) obj_.involved = std::move(ev_.involved);
            else if (ev_.has_regarding) obj_.involved = std::move(ev_.regarding);
            obj_.message = ev_.message.empty() ? ev_.note : ev_.message;
            int count = ev_.count.value_or(0);
            if (count == 0) count = ev_.series_count.value_or(0);
            obj_.count = count == 0 ? 1 : count;
            obj_.first_timestamp = ev_.first;
            obj_.last_timestamp = ev_.last ? ev_.last : ev_.event_time;
            if (!obj_.first_timestamp) obj_.first_timestamp = obj_.last_timestamp;
        }
    }

    static void assign_text(std::string& out, std::string_view s) { out.assign(s.data(), s.size()); }
    void assign_text(InternedString& out, std::string_view s) { out = interned_.get(s); }

    static std::optional<Timestamp> time_of(std::string_view s) noexcept {
        if (s.empty()) return std::nullopt;
        return parse_timestamp(s);
    }

    void string_value(N n, std::string_view s) {
        auto set = [&](auto& out) { assign_text(out, s); };
        switch (n) {
        case N::env_type: type_present_ = true; set(type_); break;
        case N::m_name: set(obj_.meta.name); break;
        case N::m_namespace: set(obj_.meta.namespace_); break;
        case N::m_uid: set(obj_.meta.uid); break;
        case N::m_rv: set(obj_.meta.resource_version); break;
        case N::m_created:
            if (auto t = time_of(s)) obj_.meta.creation_timestamp = *t;
            break;
        case N::m_deleted: obj_.meta.deletion_timestamp = time_of(s); break;
        case N::label_value:
            set(obj_.meta.labels.items.back().second);
            label_valid_.back() = true;
            break;
        case N::o_kind: set(owner_.kind); break;
        case N::o_name: set(owner_.name); break;
        case N::o_uid: set(owner_.uid); break;
        case N::obj_status: set(status_.status); break;
        case N::obj_reason:
            set(status_.reason);
            if constexpr (is_event) set(obj_.reason);
            break;
        case N::obj_message:
            set(status_.message);
            if constexpr (is_event) set(ev_.message);
            break;
        case N::sc_reason: set(cause_.reason); break;
        case N::sc_type: set(cause_type_); break;
        case N::sc_message: set(cause_.message); break;
        case N::sc_field: set(cause_.field); break;
        default:
            if constexpr (is_pod) pod_string(n, s);
            if constexpr (is_job) job_string(n, s);
            if constexpr (is_event) event_string(n, s);
            break;
        }
    }
    void pod_string(N n, std::string_view s) {
        auto set = [&](auto& out) { assign_text(out, s); };
        switch (n) {
        case N::p_node_name: set(obj_.node_name); break;
        case N::pc_name: set(res_.name); break;
        case N::lim_mem:
            if (auto m = parse_memory_bytes(s)) res_.memory_limit_bytes = *m;
            break;
        case N::lim_cpu:
            if (auto m = parse_millicores(s)) res_.cpu_limit_millicores = *m;
            break;
        case N::req_mem:
            if (auto m = parse_memory_bytes(s)) res_.memory_request_bytes = *m;
            break;
        case N::req_cpu:
            if (auto m = parse_millicores(s)) res_.cpu_request_millicores = *m;
            break;
        case N::p_phase: obj_.phase = parse_phase(s); break;
        case N::p_reason: set(obj_.reason); break;
        case N::p_message: set(obj_.message); break;
        case N::p_start: obj_.start_time = time_of(s); break;
        case N::cond_type: set(cond_.type); break;
        case N::cond_status: set(cond_.status); break;
        case N::cond_reason: set(cond_.reason); break;
        case N::cond_message: set(cond_.message); break;
        case N::cond_ltt: cond_.last_transition_time = time_of(s); break;
        case N::cs_name: set(cs_.name); break;
        case N::t_reason: set(terminated_.reason); break;
        case N::t_message: set(terminated_.message); break;
        case N::t_started: terminated_.started_at = time_of(s); break;
        case N::t_finished: terminated_.finished_at = time_of(s); break;
        case N::w_reason: set(waiting_.reason); break;
        case N::w_message: set(waiting_.message); break;
        case N::r_started: running_.started_at = time_of(s); break;
        default: break;
        }
    }
    void job_string(N n, std::string_view s) {
        switch (n) {
        case N::j_start: obj_.start_time = time_of(s); break;
        case N::j_completion: obj_.completion_time = time_of(s); break;
        case N::jc_type: jcond_.type = parse_job_condition_type(s); break;
        case N::jc_status: jcond_.status = s == "True"; break;
        case N::jc_reason: jcond_.reason.assign(s.data(), s.size()); break;
        case N::jc_message: jcond_.message.assign(s.data(), s.size()); break;
        default: break;
        }
    }
    void event_string(N n, std::string_view s) {
        if constexpr (is_event) {
            auto set = [&](auto& out) { assign_text(out, s); };
            switch (n) {
            case N::inv_kind: set(involved_target().kind); break;
            case N::inv_name: set(involved_target().name); break;
            case N::inv_uid: set(involved_target().uid); break;
            case N::e_note: set(ev_.note); break;
            case N::e_type: set(obj_.type); break;
            case N::e_first: ev_.first = time_of(s); break;
            case N::e_last: ev_.last = time_of(s); break;
            case N::e_event_time: ev_.event_time = time_of(s); break;
            default: break;
            }
        }
    }

    bool scalar() {
        if (skip_ == 0) reset(slot());
        return true;
    }
    bool number(std::int64_t v) {
        if (skip_ > 0) return true;
        N n = slot();
        reset(n);
        int i = static_cast<int>(std::clamp<std::int64_t>(v, std::numeric_limits<int>::min(),
                                                          std::numeric_limits<int>::max()));
        switch (n) {
        case N::s_code: status_.code = i; break;
        case N::s_retry: status_.retry_after_seconds = i; break;
        case N::cs_restarts: cs_.restart_count = i; break;
        case N::t_exit: terminated_.exit_code = i; break;
        case N::t_signal: terminated_.signal = i; break;
        default:
            if constexpr (is_job) {
                switch (n) {
                case N::j_backoff: obj_.backoff_limit = i; break;
                case N::j_active: obj_.active = i; break;
                case N::j_succeeded: obj_.succeeded = i; break;
                case N::j_failed: obj_.failed = i; break;
                case N::j_ready: obj_.ready = i; break;
                case N::j_terminating: obj_.terminating = i; break;
                default: break;
                }
            }
            if constexpr (is_event) {
                if (n == N::e_count) ev_.count = i;
                else if (n == N::e_series_count) ev_.series_count = i;
            }
            break;
        }
        return true;
    }

    struct EventParts {
        Event::Involved involved{};
        Event::Involved regarding{};
        bool has_involved = false;
        bool has_regarding = false;
        std::string message{};
        std::string note{};
        std::optional<int> count{};
        std::optional<int> series_count{};
        std::optional<Timestamp> first{};
        std::optional<Timestamp> last{};
        std::optional<Timestamp> event_time{};
    };
    Event::Involved& involved_target() noexcept {
        if constexpr (is_event) return ev_involved_target_regarding_ ? ev_.regarding : ev_.involved;
        else return dummy_involved_;
    }

    std::array<N, 16> stack_{};
    std::size_t top_ = 0;
    std::size_t skip_ = 0; ///< depth inside a skipped value
    N pending_ = N::root;  ///< node of the value after the last key
    std::string key_{};    ///< a key that arrived in parts
    std::string str_{};    ///< a string that arrived in parts
    InternCache interned_{}; ///< the texts interned last (bounded: InternCache::slots)

    bool root_object_ = false;
    bool type_present_ = false;
    bool object_present_ = false;
    std::string type_{};
    T obj_{};
    ApiStatus status_{};

    // parts being assembled
    std::vector<bool> label_valid_{};
    OwnerRef owner_{};
    bool owner_controller_ = false;
    bool owner_found_controller_ = false;
    StatusCause cause_{};
    std::string cause_type_{};
    // Pod
    ContainerResources res_{};
    bool res_present_ = false;
    Condition cond_{};
    ContainerStatus cs_{};
    bool statuses_are_init_ = false;
    ContainerState terminated_{}, waiting_{}, running_{};
    bool has_terminated_ = false, has_waiting_ = false, has_running_ = false;
    // Job
    JobCondition jcond_{};
    // Event
    EventParts ev_{};
    bool ev_involved_target_regarding_ = false;
    Event::Involved dummy_involved_{};
};

} // namespace detail

/// Frames a watch body into DecodedWatchEvent<T>s: WatchFramer's contract (chunks of any size, one event capped
/// at `max_event_size`, the same error codes, messages and offsets), with the objects decoded on the fly.
template <Resource T> class WatchDecoder {
public:
    static constexpr std::size_t default_max_event_size = WatchFramer::default_max_event_size;

    explicit WatchDecoder(std::size_t max_event_size = default_max_event_size)
        : max_event_size_(max_event_size), parser_(parse_options()) {}
    WatchDecoder(const WatchDecoder&) = delete;
    WatchDecoder& operator=(const WatchDecoder&) = delete;

    /// Consumes `bytes`; appends every event completed by them to `out` (see WatchFramer::feed).
    std::error_code feed(std::string_view bytes, std::vector<DecodedWatchEvent<T>>& out);
    /// Call at the end of the stream: an error (connection_lost) if a document was left incomplete.
    std::error_code finish();
    /// Forgets any partial document and error: ready for a new stream.
    void reset();

    bool between_events() const noexcept { return !in_document_; }
    const std::string& error_message() const noexcept { return error_message_; }
    std::uint64_t error_offset() const noexcept { return error_offset_; }
    std::uint64_t bytes_consumed() const noexcept { return offset_; }
    std::uint64_t events_produced() const noexcept { return events_; }
    std::size_t max_event_size() const noexcept { return max_event_size_; }

private:
    static boost::json::parse_options parse_options() {
        boost::json::parse_options opt;
        opt.max_depth = 128; // as WatchFramer: managedFields nest deeply
        return opt;
    }
    std::error_code fail(error e, std::string what) {
        failed_ = true;
        error_offset_ = offset_;
        error_message_ = std::move(what);
        return e;
    }
    std::error_code take_document(std::vector<DecodedWatchEvent<T>>& out);

    std::size_t max_event_size_;
    boost::json::basic_parser<detail::WatchEventHandler<T>> parser_;
    bool in_document_ = false;
    bool failed_ = false;
    std::size_t document_bytes_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t events_ = 0;
    std::uint64_t error_offset_ = 0;
    std::string error_message_{};
};

// ------------------------------------------------------------------------------------------- definitions

template <Resource T> std::error_code WatchDecoder<T>::take_document(std::vector<DecodedWatchEvent<T>>& out) {
    auto& h = parser_.handler();
    parser_.reset();
    in_document_ = false;
    document_bytes_ = 0;
    auto where = [this] {
        return "watch event #" + std::to_string(events_ + 1) + " ending at byte " + std::to_string(offset_);
    };
    if (!h.root_is_object()) return fail(error::malformed_response, "malformed " + where() + ": not a JSON object");
    if (!h.has_type()) return fail(error::malformed_response, "malformed " + where() + ": no string \"type\"");
    auto type_text = h.type_text();
    auto type = parse_watch_event_type(type_text);
    if (!type)
        return fail(error::malformed_response, "malformed " + where() + ": unknown type \"" +
                                                   std::string(type_text.substr(0, 32)) + "\"");
    if (!h.has_object()) return fail(error::malformed_response, "malformed " + where() + ": no object \"object\"");
    out.push_back(DecodedWatchEvent<T>{*type, std::move(h.object()), std::move(h.status())});
    ++events_;
    return {};
}

template <Resource T>
std::error_code WatchDecoder<T>::feed(std::string_view bytes, std::vector<DecodedWatchEvent<T>>& out) {
    if (failed_)
        return fail(error::malformed_response, error_message_.empty() ? "watch framer used after an error" : error_message_);
    const char* p = bytes.data();
    std::size_t n = bytes.size();
    while (n > 0) {
        if (!in_document_) {
            std::size_t i = 0;
            while (i < n && (p[i] == '\n' || p[i] == '\r' || p[i] == ' ' || p[i] == '\t')) ++i;
            p += i;
            n -= i;
            offset_ += i;
            if (n == 0) break;
            in_document_ = true;
        }
        std::size_t budget = max_event_size_ - document_bytes_;
        std::size_t chunk = n < budget ? n : budget;
        boost::system::error_code ec;
        std::size_t used = parser_.write_some(true, p, chunk, ec);
        p += used;
        n -= used;
        offset_ += used;
        document_bytes_ += used;
        if (ec) {
            in_document_ = false;
            return fail(error::malformed_response, "malformed watch event #" + std::to_string(events_ + 1) +
                                                       " at byte " + std::to_string(offset_) + ": " + ec.message());
        }
        if (parser_.done()) {
            if (auto e = take_document(out)) return e;
            continue;
        }
        if (document_bytes_ >= max_event_size_ && n > 0)
            return fail(error::event_too_large, "watch event #" + std::to_string(events_ + 1) + " starting near byte " +
                                                    std::to_string(offset_ - document_bytes_) + " exceeds " +
                                                    std::to_string(max_event_size_) + " bytes");
    }
    return {};
}

template <Resource T> std::error_code WatchDecoder<T>::finish() {
    if (failed_) return error::malformed_response;
    if (in_document_)
        return fail(error::connection_lost, "watch stream ended inside event #" + std::to_string(events_ + 1) +
                                                " after " + std::to_string(document_bytes_) + " bytes of it");
    return {};
}

template <Resource T> void WatchDecoder<T>::reset() {
    parser_.reset();
    in_document_ = false;
    failed_ = false;
    document_bytes_ = 0;
    offset_ = 0;
    events_ = 0;
    error_offset_ = 0;
    error_message_.clear();
}
} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_WATCH_DECODER_HPP
