// Matching Kubernetes objects to workflow tasks (pure).
//
// HyperFlow names a task's Job `job<rand>-<type-with-dashes>-<procId>-<firingId>` (legacy engines:
// `<rand>-<type>-<procId>`) and its pods `<job>-<5 chars>`; no label carries the task type. Other objects with
// the task label (engine, redis, nfs-data, tabix-extract) are not tasks. This header provides
//  - parse_job_name / parse_pod_name: the name grammar, mapping the type back through the known inventory types;
//  - DefaultTaskRule: decides whether an object is a task, the engine, a helper or unrelated;
//  - MatchRule: the overridable rule (any callable MatchCandidate → MatchDecision);
//  - TaskBinder: binds a task's group (its Job) to an inventory entry: exact name, then procId position, then
//    the first free entry of the type; a group that binds to nothing is a task the inventory does not list.
#ifndef EXECUTION_SENTINEL_TASK_MATCHING_HPP
#define EXECUTION_SENTINEL_TASK_MATCHING_HPP

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/kube/objects.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel {

/// What a task Job (or pod) name says.
struct ParsedTaskName {
    std::string job_name;   ///< the Job name (a pod name without its 5-character suffix)
    std::string type_slug;  ///< the type as written in the name, e.g. "individuals-merge"
    std::string task_type;  ///< the inventory type it maps to, else the slug with '-' → '_'
    int proc_id = 0;        ///< 1-based process position in workflow.json
    std::optional<int> firing_id; ///< absent for legacy names
    bool legacy = false;
    bool known_type = false; ///< task_type is one of the known types
    friend bool operator==(const ParsedTaskName&, const ParsedTaskName&) = default;
};

/// The name form of a task type as HyperFlow writes it: lower case, '_' → '-', other characters outside
/// [0-9a-z-] dropped. "individuals_merge" → "individuals-merge".
inline std::string type_slug(std::string_view task_type) {
    std::string out;
    out.reserve(task_type.size());
    for (char c : task_type) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c == '_') c = '-';
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') out += c;
    }
    return out;
}

namespace detail {

inline std::vector<std::string_view> es_split_dash(std::string_view s) {
    std::vector<std::string_view> parts;
    std::size_t b = 0;
    while (true) {
        auto e = s.find('-', b);
        parts.push_back(s.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
        if (e == std::string_view::npos) break;
        b = e + 1;
    }
    return parts;
}

inline std::optional<int> es_small_number(std::string_view s) noexcept {
    if (s.empty() || s.size() > 9) return std::nullopt;
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return v;
}

inline std::string es_join(const std::vector<std::string_view>& parts, std::size_t b, std::size_t e) {
    std::string out;
    for (std::size_t i = b; i < e; ++i) {
        if (i > b) out += '-';
        out += parts[i];
    }
    return out;
}

inline bool es_name_chars_ok(std::string_view s) noexcept {
    if (s.empty() || s.size() > 253) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
    return true;
}

inline bool es_has_letter(std::string_view s) noexcept {
    for (char c : s)
        if (c >= 'a' && c <= 'z') return true;
    return false;
}

} // namespace detail

/// The known task types, each once in first-seen order, indexed by their name form (type_slug) so that a name
/// maps back to its type in O(log n). Built in O(n log n); the rule and the parsers use it for every object.
class TaskTypeIndex {
public:
    TaskTypeIndex() = default;
    /// Empty names are skipped, repeated names kept once (the first).
    explicit TaskTypeIndex(const std::vector<std::string>& types) {
        for (auto& t : types) add(t);
    }

    /// Adds `type` unless it is empty or already known. Two types with the same slug: the first one wins.
    void add(const std::string& type) {
        if (type.empty() || !names_.insert(type).second) return;
        types_.push_back(type);
        by_slug_.emplace(type_slug(type), types_.size() - 1);
    }

    /// The first known type whose slug is `slug`, or nullptr.
    const std::string* by_slug(std::string_view slug) const {
        auto it = by_slug_.find(slug);
        return it == by_slug_.end() ? nullptr : &types_[it->second];
    }

    const std::vector<std::string>& types() const noexcept { return types_; }
    std::size_t size() const noexcept { return types_.size(); }

private:
    std::vector<std::string> types_;
    std::set<std::string, std::less<>> names_;
    std::map<std::string, std::size_t, std::less<>> by_slug_;
};

namespace detail {

inline void es_resolve_type(ParsedTaskName& p, const TaskTypeIndex& known_types) {
    if (const std::string* k = known_types.by_slug(p.type_slug)) {
        p.task_type = *k;
        p.known_type = true;
        return;
    }
    p.task_type = p.type_slug;
    for (auto& c : p.task_type)
        if (c == '-') c = '_';
}

inline std::optional<ParsedTaskName> es_parse_new_form(std::string_view name, const TaskTypeIndex& known) {
    auto parts = es_split_dash(name);
    if (parts.size() < 4) return std::nullopt;
    if (!parts[0].starts_with("job") || parts[0].size() < 4) return std::nullopt;
    auto proc = es_small_number(parts[parts.size() - 2]);
    auto firing = es_small_number(parts.back());
    if (!proc || !firing) return std::nullopt;
    auto slug = es_join(parts, 1, parts.size() - 2);
    if (slug.empty() || slug.front() == '-' || slug.back() == '-' || slug.find("--") != std::string::npos ||
        !es_has_letter(slug))
        return std::nullopt;
    ParsedTaskName p;
    p.job_name = std::string(name);
    p.type_slug = std::move(slug);
    p.proc_id = *proc;
    p.firing_id = *firing;
    es_resolve_type(p, known);
    return p;
}

inline std::optional<ParsedTaskName> es_parse_legacy_form(std::string_view name, const TaskTypeIndex& known) {
    auto parts = es_split_dash(name);
    if (parts.size() < 3 || parts[0].empty()) return std::nullopt;
    auto proc = es_small_number(parts.back());
    if (!proc) return std::nullopt;
    auto slug = es_join(parts, 1, parts.size() - 1);
    if (slug.empty() || slug.front() == '-' || slug.back() == '-' || slug.find("--") != std::string::npos ||
        !es_has_letter(slug))
        return std::nullopt;
    ParsedTaskName p;
    p.job_name = std::string(name);
    p.type_slug = std::move(slug);
    p.proc_id = *proc;
    p.legacy = true;
    es_resolve_type(p, known);
    return p;
}

inline bool es_pod_suffix(std::string_view token) noexcept {
    if (token.size() != 5) return false;
    for (char c : token)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
    return true;
}

} // namespace detail

/// Parses a task Job name. The type is the text between the first token (`job<rand>`) and the trailing
/// `-<procId>-<firingId>`, matched as a whole against `known_types` (so "individuals-merge" is
/// individuals_merge, never individuals); legacy `<rand>-<type>-<procId>` is accepted when the new form does
/// not apply. nullopt when the name follows neither form.
inline std::optional<ParsedTaskName> parse_job_name(std::string_view name, const TaskTypeIndex& known_types) {
    if (!detail::es_name_chars_ok(name)) return std::nullopt;
    if (auto p = detail::es_parse_new_form(name, known_types)) return p;
    return detail::es_parse_legacy_form(name, known_types);
}

/// As above with the known types as a list (indexed on each call: for many names, build a TaskTypeIndex once).
inline std::optional<ParsedTaskName> parse_job_name(std::string_view name, const std::vector<std::string>& known_types = {}) {
    return parse_job_name(name, TaskTypeIndex(known_types));
}

/// Parses a task pod name `<job name>-<5 chars>` (used when the pod carries no job-name label).
inline std::optional<ParsedTaskName> parse_pod_name(std::string_view name, const TaskTypeIndex& known_types) {
    if (!detail::es_name_chars_ok(name)) return std::nullopt;
    auto dash = name.rfind('-');
    bool has_suffix = dash != std::string_view::npos && detail::es_pod_suffix(name.substr(dash + 1));
    if (has_suffix)
        if (auto p = detail::es_parse_new_form(name.substr(0, dash), known_types)) return p;
    if (auto p = detail::es_parse_new_form(name, known_types)) return p;
    if (has_suffix)
        if (auto p = detail::es_parse_legacy_form(name.substr(0, dash), known_types)) return p;
    return detail::es_parse_legacy_form(name, known_types);
}

/// As above with the known types as a list.
inline std::optional<ParsedTaskName> parse_pod_name(std::string_view name, const std::vector<std::string>& known_types = {}) {
    return parse_pod_name(name, TaskTypeIndex(known_types));
}

// ------------------------------------------------------------------------------------------- the rule

enum class ObjectRole : std::uint8_t {
    task,      ///< a workflow task (its Job or one of its pods)
    engine,    ///< the workflow engine pod
    helper,    ///< redis, nfs-data, tabix-extract and other non-task objects
    unrelated, ///< a name that is no task name
};

/// What a rule sees of an object.
struct MatchCandidate {
    enum class Kind : std::uint8_t { pod, job };
    Kind kind = Kind::pod;
    const kube::ObjectMeta* meta = nullptr;
    std::string_view group_name;              ///< the Job (own name for Jobs, owning Job for pods; may be empty)
    std::vector<std::string_view> containers; ///< pod container names (init and main); empty for Jobs
};

/// A rule's verdict. For role == task, `group` identifies the task: a Job and all its pods (retries) share it.
struct MatchDecision {
    ObjectRole role = ObjectRole::unrelated;
    std::string group;     ///< the task's Job name (or the bare pod's name)
    std::string task_type; ///< inventory type or parsed type
    std::optional<int> proc_id;
    std::string why;       ///< for non-tasks: the reason, for logs and tests
};

/// The overridable rule. Any callable with this signature works; see DefaultTaskRule.
using MatchRule = std::function<MatchDecision(const MatchCandidate&)>;

/// The task types a context names, indexed: the inventory's types, then dag_structure's (each key, then the
/// types it depends on), each once in that order. O(n log n) in the number of names.
inline TaskTypeIndex task_type_index(const MonitoringContext& ctx) {
    TaskTypeIndex index;
    for (auto& t : ctx.task_inventory) index.add(t.task_type);
    for (auto& [t, ups] : ctx.dag_structure) {
        index.add(t);
        for (auto& u : ups) index.add(u);
    }
    return index;
}

/// The task types a context names, in the order of task_type_index.
inline std::vector<std::string> known_task_types(const MonitoringContext& ctx) { return task_type_index(ctx).types(); }

/// HyperFlow's naming (HyperFlow on Kubernetes): not a task when it is the engine (its name, engine_pod_selector,
/// a container named engine_container or "hflow-tools"), a helper (labels `component`, `role` or `name`; an
/// owner other than a Job; names redis*, nfs-data*, nfs-server-provisioner*, tabix-extract*,
/// hyperflow-engine*); a task when its Job name equals an inventory task name or parses as a task name.
class DefaultTaskRule {
public:
    explicit DefaultTaskRule(const MonitoringContext& ctx)
        : engine_pod_name_(ctx.engine_pod_name), engine_container_(ctx.engine_container),
          known_types_(task_type_index(ctx)) {
        try {
            engine_selector_ = LabelSelector::parse(ctx.engine_pod_selector);
        } catch (const std::invalid_argument&) {
            // validate() reports this; an unusable selector matches nothing here
        }
        for (auto& t : ctx.task_inventory) inventory_names_.emplace(t.name, t.task_type);
    }

    MatchDecision operator()(const MatchCandidate& c) const {
        MatchDecision d;
        const auto& meta = *c.meta;
        if (c.kind == MatchCandidate::Kind::pod) {
            if (!engine_pod_name_.empty() && meta.name == engine_pod_name_) return not_task(ObjectRole::engine, "engine pod name");
            if (!engine_selector_.empty() && engine_selector_.matches(meta.labels))
                return not_task(ObjectRole::engine, "engine pod selector");
            for (auto name : c.containers)
                if (name == engine_container_ || name == "hflow-tools")
                    return not_task(ObjectRole::engine, "engine container");
        }
        for (auto key : {"component", "role", "name"})
            if (meta.labels.find(key)) return not_task(ObjectRole::helper, std::string("label ") + key);
        if (meta.owner && meta.owner->kind != "Job") return not_task(ObjectRole::helper, "owned by a " + meta.owner->kind);
        std::string_view self = c.group_name.empty() ? std::string_view(meta.name) : c.group_name;
        for (std::string_view h : {"redis", "nfs-data", "nfs-server-provisioner", "tabix-extract", "hyperflow-engine"})
            if (self == h || (self.starts_with(h) && self.size() > h.size() && self[h.size()] == '-'))
                return not_task(ObjectRole::helper, "helper name");
        // exact inventory name
        for (auto n : {self, std::string_view(meta.name)})
            if (auto it = inventory_names_.find(std::string(n)); it != inventory_names_.end()) {
                d.role = ObjectRole::task;
                d.group = std::string(self);
                d.task_type = it->second;
                if (auto p = parse_job_name(self, known_types_)) d.proc_id = p->proc_id;
                return d;
            }
        std::optional<ParsedTaskName> p = c.group_name.empty() && c.kind == MatchCandidate::Kind::pod
                                              ? parse_pod_name(meta.name, known_types_)
                                              : parse_job_name(self, known_types_);
        if (!p) return not_task(ObjectRole::unrelated, "not a task name");
        d.role = ObjectRole::task;
        d.group = p->job_name;
        d.task_type = p->task_type;
        d.proc_id = p->proc_id;
        return d;
    }

    const std::vector<std::string>& known_types() const noexcept { return known_types_.types(); }

private:
    static MatchDecision not_task(ObjectRole role, std::string why) {
        MatchDecision d;
        d.role = role;
        d.why = std::move(why);
        return d;
    }

    std::string engine_pod_name_;
    std::string engine_container_;
    LabelSelector engine_selector_;
    TaskTypeIndex known_types_;
    std::multimap<std::string, std::string> inventory_names_; // name → type
};

/// Builds the MatchCandidate of a pod / Job.
inline MatchCandidate candidate_of(const kube::Pod& pod, std::string& job_name_storage) {
    MatchCandidate c;
    c.kind = MatchCandidate::Kind::pod;
    c.meta = &pod.meta;
    job_name_storage = pod.job_name();
    c.group_name = job_name_storage;
    for (auto& s : pod.init_containers) c.containers.push_back(s.name);
    for (auto& s : pod.containers) c.containers.push_back(s.name);
    return c;
}

inline MatchCandidate candidate_of(const kube::Job& job) {
    MatchCandidate c;
    c.kind = MatchCandidate::Kind::job;
    c.meta = &job.meta;
    c.group_name = job.meta.name;
    return c;
}

// ------------------------------------------------------------------------------------------- binding

/// Where a task group landed.
struct TaskBinding {
    std::optional<std::size_t> inventory_index; ///< nullopt: a task the inventory does not list
    bool operator==(const TaskBinding&) const = default;
};

/// Binds task groups to inventory entries, once and for good (the same group always gets the same entry):
///  1. an unclaimed entry whose name equals the group (Job) name;
///  2. entry number procId (procId is the 1-based process position in workflow.json, the order the
///     inventory is built in) when its type equals the group's type or is empty;
///  3. the first unclaimed entry of the group's type; when the inventory has no entry of that type at all,
///     the first unclaimed entry with an empty type;
///  4. otherwise none: the group is counted as an extra task under its parsed type.
class TaskBinder {
public:
    explicit TaskBinder(const std::vector<TaskSpec>& inventory) : inventory_(&inventory), claimed_(inventory.size()) {
        for (std::size_t i = 0; i < inventory.size(); ++i) {
            by_name_[inventory[i].name].entries.push_back(i);
            by_type_[inventory[i].task_type].entries.push_back(i);
        }
    }

    TaskBinding bind(const MatchDecision& d) {
        if (auto it = groups_.find(d.group); it != groups_.end()) return it->second;
        TaskBinding b;
        const auto& inv = *inventory_;
        if (auto it = by_name_.find(d.group); it != by_name_.end()) b.inventory_index = take_first(it->second);
        if (!b.inventory_index && d.proc_id && *d.proc_id >= 1 && static_cast<std::size_t>(*d.proc_id) <= inv.size()) {
            auto i = static_cast<std::size_t>(*d.proc_id - 1);
            if (!claimed_[i] && (inv[i].task_type == d.task_type || inv[i].task_type.empty())) {
                claimed_[i] = true;
                b.inventory_index = i;
            }
        }
        if (!b.inventory_index) {
            if (auto it = by_type_.find(d.task_type); it != by_type_.end())
                b.inventory_index = take_first(it->second);
            else if (auto e = by_type_.find(std::string()); e != by_type_.end())
                b.inventory_index = take_first(e->second);
        }
        groups_.emplace(d.group, b);
        return b;
    }

    std::optional<TaskBinding> find(const std::string& group) const {
        if (auto it = groups_.find(group); it != groups_.end()) return it->second;
        return std::nullopt;
    }

    /// Takes back a binding made before a restart (checkpoint.hpp): `group` keeps its inventory entry, which no
    /// other group can claim.
    void restore(const std::string& group, std::optional<std::size_t> inventory_index) {
        TaskBinding b;
        if (inventory_index && *inventory_index < claimed_.size()) {
            claimed_[*inventory_index] = true;
            b.inventory_index = inventory_index;
        }
        groups_[group] = b;
    }

private:
    struct Slots {
        std::vector<std::size_t> entries; // inventory indices, ascending
        std::size_t cursor = 0;           // entries before it are claimed
    };

    std::optional<std::size_t> take_first(Slots& slots) {
        while (slots.cursor < slots.entries.size() && claimed_[slots.entries[slots.cursor]]) ++slots.cursor;
        if (slots.cursor == slots.entries.size()) return std::nullopt;
        auto i = slots.entries[slots.cursor++];
        claimed_[i] = true;
        return i;
    }

    const std::vector<TaskSpec>* inventory_;
    std::vector<bool> claimed_;
    std::map<std::string, Slots> by_name_;
    std::map<std::string, Slots> by_type_;
    std::map<std::string, TaskBinding> groups_;
};

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_TASK_MATCHING_HPP
