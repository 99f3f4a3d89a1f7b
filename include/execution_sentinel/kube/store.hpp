// The reflector store: the current state of every watched object, keyed by namespace/name, and the events a
// watcher delivers. The store decides what is a change: an object whose resourceVersion did not change is not
// delivered again, a relist reports what vanished as deletions, a name reused by a new object (another uid)
// is a deletion followed by an addition. Pure: no I/O.
#ifndef EXECUTION_SENTINEL_KUBE_STORE_HPP
#define EXECUTION_SENTINEL_KUBE_STORE_HPP

#include <execution_sentinel/kube/objects.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

/// What happened to an object, as a watcher delivers it.
enum class WatchEventType : std::uint8_t {
    added,    ///< the object is new to the store
    modified, ///< the object changed (its resourceVersion differs from the stored one)
    deleted,  ///< the object is gone; `object` is its last known state
    synced,   ///< the initial list or a relist is complete: the store is current (no object)
};

/// One event delivered by a Watcher (and produced by the Store).
template <class T> struct WatchEvent {
    WatchEventType type = WatchEventType::added;
    T object{};
    /// For `deleted`: the deletion was inferred by a relist (the object vanished while the watch was
    /// interrupted), so `object` is the last state the store saw, not the final one (client-go's
    /// DeletedFinalStateUnknown).
    bool final_state_unknown = false;
};

/// Key of an object: namespace and name.
struct ObjectKey {
    std::string_view namespace_;
    std::string_view name;
    friend bool operator==(const ObjectKey&, const ObjectKey&) = default;
};

/// The current state of every object of one kind, keyed by namespace/name. Objects must have a name.
///
/// `apply()` folds one watch event in; `begin_relist()` / `relist_page()` / `end_relist()` (or `replace()`
/// for a single batch) fold in a full list and report the difference, including synthetic deletions of the
/// objects the list no longer has. Every function appends the resulting events to an output container with
/// `push_back(WatchEvent<T>)`.
template <class T> class Store {
public:
    /// The object stored under namespace/name, or nullptr.
    const T* get(std::string_view namespace_, std::string_view name) const {
        auto it = items_.find(ObjectKey{namespace_, name});
        return it == items_.end() ? nullptr : &it->object;
    }
    std::size_t size() const noexcept { return items_.size(); }
    bool empty() const noexcept { return items_.empty(); }

    /// Every stored object, sorted by namespace then name.
    std::vector<const T*> list() const {
        std::vector<const T*> out{};
        out.reserve(items_.size());
        for (auto& n : items_) out.push_back(&n.object);
        std::sort(out.begin(), out.end(), [](const T* a, const T* b) {
            return std::tie(a->meta.namespace_, a->meta.name) < std::tie(b->meta.namespace_, b->meta.name);
        });
        return out;
    }
    /// Calls f(const T&) for every object, in no particular order.
    template <class F> void for_each(F&& f) const {
        for (auto& n : items_) f(n.object);
    }

    /// An ADDED or MODIFIED event: stores `obj` and appends added/modified, or nothing when the stored
    /// object has the same resourceVersion (a repeat). A different uid under the same name appends a
    /// deletion of the old object, then an addition.
    template <class Out> void upsert(T obj, Out& out) { upsert_marked(std::move(obj), mark_, out); }

    /// A DELETED event: removes the object and appends `deleted` with the server's final state; nothing
    /// when the store does not hold it (so a deletion is never delivered twice).
    template <class Out> void remove(T obj, Out& out) {
        auto it = items_.find(key_of(obj));
        if (it == items_.end()) return;
        items_.erase(it);
        out.push_back(WatchEvent<T>{WatchEventType::deleted, std::move(obj), false});
    }

    /// Starts folding in a full list. Pages follow with relist_page(); end_relist() reports what vanished.
    /// Calling begin_relist() again restarts (a list that failed half-way is simply started over).
    void begin_relist() noexcept {
        ++mark_;
        if (mark_ == 0) { // wrapped: clear every mark
            for (auto& n : items_) n.mark = 0;
            mark_ = 1;
        }
        relisting_ = true;
    }
    /// One page of the list: every object is upserted and remembered as present.
    template <class Out> void relist_page(std::vector<T> items, Out& out) {
        for (auto& obj : items) upsert_marked(std::move(obj), mark_, out);
    }
    /// The list is complete: every object not seen since begin_relist() is removed and reported deleted
    /// with final_state_unknown.
    template <class Out> void end_relist(Out& out) {
        for (auto it = items_.begin(); it != items_.end();) {
            if (it->mark != mark_) {
                auto next = std::next(it);
                auto node = items_.extract(it); // before moving out: erasing may need the object's hash
                out.push_back(WatchEvent<T>{WatchEventType::deleted, std::move(node.value().object), true});
                it = next;
            } else {
                ++it;
            }
        }
        relisting_ = false;
    }
    /// begin_relist(), one page, end_relist().
    template <class Out> void replace(std::vector<T> items, Out& out) {
        begin_relist();
        relist_page(std::move(items), out);
        end_relist(out);
    }
    bool relisting() const noexcept { return relisting_; }

    void clear() noexcept { items_.clear(); }

    /// Approximate heap bytes held (nodes, buckets, and the strings and vectors inside each object). Interned
    /// texts are shared between objects and stores and are not included: see interned_string_memory().
    std::size_t memory_estimate() const noexcept;

private:
    struct Node {
        T object;
        mutable std::uint32_t mark = 0; ///< the relist generation that last saw this object
    };
    static ObjectKey key_of(const T& obj) noexcept { return {obj.meta.namespace_, obj.meta.name}; }
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(const ObjectKey& k) const noexcept {
            std::size_t h = detail::text_hash(k.name);
            return h ^ (detail::text_hash(k.namespace_) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
        }
        std::size_t operator()(const Node& n) const noexcept { return (*this)(key_of(n.object)); }
    };
    struct Eq {
        using is_transparent = void;
        static ObjectKey k(const ObjectKey& x) noexcept { return x; }
        static ObjectKey k(const Node& x) noexcept { return key_of(x.object); }
        template <class A, class B> bool operator()(const A& a, const B& b) const noexcept { return k(a) == k(b); }
    };

    template <class Out> void upsert_marked(T obj, std::uint32_t mark, Out& out) {
        auto it = items_.find(key_of(obj));
        if (it == items_.end()) {
            T copy = obj;
            items_.insert(Node{std::move(obj), mark});
            out.push_back(WatchEvent<T>{WatchEventType::added, std::move(copy), false});
            return;
        }
        it->mark = mark;
        const T& old = it->object;
        if (!old.meta.uid.empty() && !obj.meta.uid.empty() && old.meta.uid != obj.meta.uid) {
            // The name now belongs to another object: the old one was deleted in between.
            auto node = items_.extract(it);
            out.push_back(WatchEvent<T>{WatchEventType::deleted, std::move(node.value().object), true});
            node.value().object = obj;
            items_.insert(std::move(node));
            out.push_back(WatchEvent<T>{WatchEventType::added, std::move(obj), false});
            return;
        }
        if (old.meta.resource_version == obj.meta.resource_version) return; // a repeat, not a change
        auto node = items_.extract(it);
        node.value().object = obj;
        items_.insert(std::move(node));
        out.push_back(WatchEvent<T>{WatchEventType::modified, std::move(obj), false});
    }

    std::unordered_set<Node, Hash, Eq> items_;
    std::uint32_t mark_ = 0;
    bool relisting_ = false;
};

// ------------------------------------------------------------------------------------------- memory estimate

namespace detail {
inline std::size_t heap_of(const std::string& s) noexcept {
    // libstdc++ and libc++ keep up to 15 (22) characters inline; count the capacity of heap strings plus the
    // allocator's 16-byte granularity.
    return s.capacity() > 15 ? ((s.capacity() + 1 + 15) / 16) * 16 : 0;
}
/// Interned texts are shared: their records are counted once, by interned_string_memory(), not per object.
inline std::size_t heap_of(const InternedString&) noexcept { return 0; }
inline std::size_t heap_of(const Labels& l) noexcept { return l.items.capacity() * sizeof(l.items[0]); }
inline std::size_t heap_of(const ObjectMeta& m) noexcept {
    return heap_of(m.name) + heap_of(m.namespace_) + heap_of(m.uid) + heap_of(m.resource_version) + heap_of(m.labels);
}
inline std::size_t heap_of(const std::vector<ContainerStatus>& v) noexcept {
    return v.capacity() * sizeof(ContainerStatus);
}
inline std::size_t heap_of(const Pod& p) noexcept {
    return heap_of(p.meta) + heap_of(p.init_containers) + heap_of(p.containers) +
           p.conditions.capacity() * sizeof(Condition) + p.resources.capacity() * sizeof(ContainerResources);
}
inline std::size_t heap_of(const Job& j) noexcept {
    std::size_t n = heap_of(j.meta) + j.conditions.capacity() * sizeof(JobCondition);
    for (auto& c : j.conditions) n += heap_of(c.reason) + heap_of(c.message);
    return n;
}
inline std::size_t heap_of(const Event& e) noexcept {
    return heap_of(e.meta) + heap_of(e.involved.kind) + heap_of(e.involved.name) + heap_of(e.involved.uid) +
           heap_of(e.reason) + heap_of(e.message) + heap_of(e.type);
}
} // namespace detail

template <class T> std::size_t Store<T>::memory_estimate() const noexcept {
    // node = next pointer + the Node (+ malloc's header), rounded to 16; one bucket pointer per bucket
    std::size_t n = items_.bucket_count() * sizeof(void*);
    for (auto& node : items_) n += ((sizeof(Node) + 2 * sizeof(void*) + 15) / 16) * 16 + detail::heap_of(node.object);
    return n;
}

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_STORE_HPP
