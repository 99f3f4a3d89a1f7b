// InternedString: an immutable string shared by every object that holds the same text, for the fields of the
// typed views that repeat across objects (label keys and values, owner references, node names, condition and
// container-state reasons). One pointer wide; the empty string holds nothing.
//
// Every distinct text lives once in a process-wide table, with a count of the handles that refer to it. The last
// handle to go removes the text from the table, so the table holds only what live objects use: an apiserver that
// sends millions of distinct label values costs memory only while objects carrying them are kept, and the table
// shrinks again when they go. Handles may be copied and released on any thread (atomic counts, a lock per shard
// of the table for lookups and removals).
#ifndef EXECUTION_SENTINEL_KUBE_INTERNED_STRING_HPP
#define EXECUTION_SENTINEL_KUBE_INTERNED_STRING_HPP

#include <array>
#include <atomic>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

namespace detail {

/// One interned text: a header and the characters (NUL-terminated) in a single allocation. The hash is not
/// kept (it is recomputed when the table moves a record): 8 bytes of header, so that a uid fits in 48 bytes
/// with the allocator's.
struct InternRep {
    std::atomic<std::uint32_t> refs;
    std::uint32_t size;
    const char* text() const noexcept { return reinterpret_cast<const char*>(this + 1); }
    std::string_view view() const noexcept { return {text(), size}; }
};
static_assert(sizeof(InternRep) == 8);

/// A fast 64-bit hash of short strings (8 bytes a step, multiply-xorshift mixing), seeded per process so that
/// the colliding texts of one process are not those of another.
inline std::uint64_t text_hash(std::string_view s) noexcept {
    static const std::uint64_t seed = [] {
        static const int anchor = 0;
        return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&anchor)) * 0x9E3779B97F4A7C15ull;
    }();
    const char* p = s.data();
    std::size_t n = s.size();
    std::uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        std::uint64_t w = 0;
        std::memcpy(&w, p, n);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    }
    h ^= h >> 32;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    return h;
}

inline std::uint32_t intern_hash(std::string_view s) noexcept {
    auto h = text_hash(s);
    return static_cast<std::uint32_t>(h ^ (h >> 32));
}

/// The process-wide table: 16 shards, each an open-addressing (linear probing) array of pointers with
/// backward-shift deletion, grown above 7/10 load and shrunk below 1/8.
class InternTable {
public:
    static InternTable& instance() noexcept {
        static InternTable* table = new InternTable; // never destroyed: handles may outlive static destructors
        return *table;
    }

    /// The rep of `s` with one more reference (a new rep when the text is not held by anyone).
    InternRep* acquire(std::string_view s) { return acquire(s, intern_hash(s)); }
    /// The same, with `h` = intern_hash(s) already computed.
    InternRep* acquire(std::string_view s, std::uint32_t h) {
        Shard& sh = shard_of(h);
        std::lock_guard lock(sh.mutex);
        if (!sh.slots.empty()) {
            std::size_t mask = sh.slots.size() - 1;
            for (std::size_t i = probe_start(h, mask);; i = (i + 1) & mask) {
                InternRep* r = sh.slots[i];
                if (!r) break;
                if (r->view() == s) {
                    r->refs.fetch_add(1, std::memory_order_relaxed);
                    return r;
                }
            }
        }
        if ((sh.count + 1) * 10 > sh.slots.size() * 7) resize(sh, sh.slots.empty() ? 16 : sh.slots.size() * 2);
        InternRep* r = make(s);
        insert(sh, r, h);
        ++sh.count;
        bytes_.fetch_add(alloc_size(r->size), std::memory_order_relaxed);
        return r;
    }

    /// Drops one reference; the last one removes the text from the table and frees it.
    void release(InternRep* r) noexcept {
        std::uint32_t n = r->refs.load(std::memory_order_relaxed);
        while (n > 1)
            if (r->refs.compare_exchange_weak(n, n - 1, std::memory_order_release, std::memory_order_relaxed)) return;
        // Possibly the last reference: decide under the shard's lock, where lookups add references.
        const std::uint32_t h = intern_hash(r->view());
        Shard& sh = shard_of(h);
        std::lock_guard lock(sh.mutex);
        if (r->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        erase(sh, r, h);
        --sh.count;
        bytes_.fetch_sub(alloc_size(r->size), std::memory_order_relaxed);
        r->~InternRep();
        ::operator delete(static_cast<void*>(r));
        if (sh.slots.size() > 64 && sh.count * 8 < sh.slots.size()) resize(sh, sh.slots.size() / 2);
    }

    /// Distinct texts held, and the bytes of their records and of the table's slots (for tests and estimates).
    std::size_t size() const {
        std::size_t n = 0;
        for (auto& sh : shards_) {
            std::lock_guard lock(sh.mutex);
            n += sh.count;
        }
        return n;
    }
    std::size_t memory() const {
        std::size_t slots = 0;
        for (auto& sh : shards_) {
            std::lock_guard lock(sh.mutex);
            slots += sh.slots.capacity() * sizeof(InternRep*);
        }
        return slots + bytes_.load(std::memory_order_relaxed);
    }

private:
    struct Shard {
        mutable std::mutex mutex;
        std::vector<InternRep*> slots; // power of two, or empty
        std::size_t count = 0;
    };
    static constexpr std::size_t shard_count = 16;

    Shard& shard_of(std::uint32_t h) noexcept { return shards_[h >> 28]; }
    static std::size_t probe_start(std::uint32_t h, std::size_t mask) noexcept { return (h * 0x9E3779B1u) & mask; }
    static std::size_t alloc_size(std::size_t n) noexcept { return sizeof(InternRep) + n + 1; }

    static InternRep* make(std::string_view s) {
        void* p = ::operator new(alloc_size(s.size()));
        auto* r = new (p) InternRep{};
        r->refs.store(1, std::memory_order_relaxed);
        r->size = static_cast<std::uint32_t>(s.size());
        char* text = reinterpret_cast<char*>(r + 1);
        if (!s.empty()) std::memcpy(text, s.data(), s.size());
        text[s.size()] = '\0';
        return r;
    }
    static void insert(Shard& sh, InternRep* r, std::uint32_t h) noexcept {
        std::size_t mask = sh.slots.size() - 1;
        std::size_t i = probe_start(h, mask);
        while (sh.slots[i]) i = (i + 1) & mask;
        sh.slots[i] = r;
    }
    static void erase(Shard& sh, InternRep* r, std::uint32_t h) noexcept {
        std::size_t mask = sh.slots.size() - 1;
        std::size_t i = probe_start(h, mask);
        while (sh.slots[i] != r) i = (i + 1) & mask;
        // backward-shift deletion: move up every later entry of the run that may sit in the hole
        for (std::size_t j = (i + 1) & mask; sh.slots[j]; j = (j + 1) & mask) {
            std::size_t home = probe_start(intern_hash(sh.slots[j]->view()), mask);
            bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
            if (movable) {
                sh.slots[i] = sh.slots[j];
                i = j;
            }
        }
        sh.slots[i] = nullptr;
    }
    static void resize(Shard& sh, std::size_t n) {
        std::vector<InternRep*> old(n, nullptr);
        old.swap(sh.slots);
        for (InternRep* r : old)
            if (r) insert(sh, r, intern_hash(r->view()));
    }

    std::array<Shard, shard_count> shards_{};
    std::atomic<std::size_t> bytes_{0};
};

} // namespace detail

/// An immutable, interned string: equal texts share one record, so a copy is a reference count and comparing two
/// of them is comparing pointers. Reads like a `const std::string` (size, data, comparisons with any string type,
/// concatenation, conversion to std::string and std::string_view).
class InternedString {
public:
    using size_type = std::size_t;
    static constexpr size_type npos = std::string_view::npos;

    InternedString() noexcept = default;
    InternedString(const char* s) : rep_(acquire(s)) {}
    /// From std::string or std::string_view (a template so that a braced list never converts: `{"a", "b"}` is
    /// not taken for an iterator range).
    template <class S>
        requires(std::is_same_v<S, std::string> || std::is_same_v<S, std::string_view>)
    InternedString(const S& s) : rep_(acquire(std::string_view(s))) {}
    InternedString(const InternedString& o) noexcept : rep_(o.rep_) {
        if (rep_) rep_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    InternedString(InternedString&& o) noexcept : rep_(std::exchange(o.rep_, nullptr)) {}
    InternedString& operator=(const InternedString& o) noexcept {
        if (rep_ != o.rep_) InternedString(o).swap(*this);
        return *this;
    }
    InternedString& operator=(InternedString&& o) noexcept {
        if (this != &o) {
            release();
            rep_ = std::exchange(o.rep_, nullptr);
        }
        return *this;
    }
    ~InternedString() { release(); }

    void swap(InternedString& o) noexcept { std::swap(rep_, o.rep_); }
    void clear() noexcept {
        release();
        rep_ = nullptr;
    }
    InternedString& assign(const char* s, size_type n) { return *this = InternedString(std::string_view(s, n)); }
    InternedString& assign(std::string_view s) { return *this = InternedString(s); }

    std::string_view view() const noexcept { return rep_ ? rep_->view() : std::string_view(); }
    std::string str() const { return std::string(view()); }
    operator std::string_view() const noexcept { return view(); }
    operator std::string() const { return str(); }

    const char* data() const noexcept { return rep_ ? rep_->text() : ""; }
    const char* c_str() const noexcept { return data(); }
    size_type size() const noexcept { return rep_ ? rep_->size : 0; }
    size_type length() const noexcept { return size(); }
    bool empty() const noexcept { return rep_ == nullptr; }
    const char* begin() const noexcept { return data(); }
    const char* end() const noexcept { return data() + size(); }
    char operator[](size_type i) const noexcept { return data()[i]; }
    char front() const noexcept { return data()[0]; }
    char back() const noexcept { return data()[size() - 1]; }
    std::string substr(size_type pos = 0, size_type n = npos) const { return std::string(view().substr(pos, n)); }
    size_type find(std::string_view s, size_type pos = 0) const noexcept { return view().find(s, pos); }
    size_type find(char c, size_type pos = 0) const noexcept { return view().find(c, pos); }
    size_type rfind(std::string_view s, size_type pos = npos) const noexcept { return view().rfind(s, pos); }
    size_type rfind(char c, size_type pos = npos) const noexcept { return view().rfind(c, pos); }
    bool starts_with(std::string_view s) const noexcept { return view().starts_with(s); }
    bool ends_with(std::string_view s) const noexcept { return view().ends_with(s); }
    int compare(std::string_view s) const noexcept { return view().compare(s); }

    /// True when both handles share one record (always so for equal texts).
    bool same_record(const InternedString& o) const noexcept { return rep_ == o.rep_; }

    friend bool operator==(const InternedString& a, const InternedString& b) noexcept { return a.rep_ == b.rep_; }
    friend bool operator==(const InternedString& a, std::string_view b) noexcept { return a.view() == b; }
    friend bool operator==(const InternedString& a, const std::string& b) noexcept { return a.view() == b; }
    friend bool operator==(const InternedString& a, const char* b) noexcept { return a.view() == b; }
    friend std::strong_ordering operator<=>(const InternedString& a, const InternedString& b) noexcept {
        if (a.rep_ == b.rep_) return std::strong_ordering::equal;
        return a.view() <=> b.view();
    }
    friend std::strong_ordering operator<=>(const InternedString& a, std::string_view b) noexcept {
        return a.view() <=> b;
    }
    friend std::strong_ordering operator<=>(const InternedString& a, const std::string& b) noexcept {
        return a.view() <=> std::string_view(b);
    }
    friend std::strong_ordering operator<=>(const InternedString& a, const char* b) noexcept {
        return a.view() <=> std::string_view(b);
    }

    friend std::string operator+(const InternedString& a, const InternedString& b) { return a.str().append(b.view()); }
    friend std::string operator+(const InternedString& a, std::string_view b) { return a.str().append(b); }
    friend std::string operator+(const InternedString& a, const std::string& b) { return a.str().append(b); }
    friend std::string operator+(const InternedString& a, const char* b) { return a.str().append(b); }
    friend std::string operator+(const InternedString& a, char b) { return a.str() + b; }
    friend std::string operator+(std::string_view a, const InternedString& b) { return std::string(a).append(b.view()); }
    friend std::string operator+(const std::string& a, const InternedString& b) { return std::string(a).append(b.view()); }
    friend std::string operator+(std::string&& a, const InternedString& b) { return std::move(a.append(b.view())); }
    friend std::string operator+(const char* a, const InternedString& b) { return std::string(a).append(b.view()); }
    friend std::string operator+(char a, const InternedString& b) { return (std::string(1, a)).append(b.view()); }

    template <class Stream>
        requires requires(Stream& os, std::string_view v) { os << v; }
    friend Stream& operator<<(Stream& os, const InternedString& s) {
        os << s.view();
        return os;
    }

private:
    friend class InternCache;
    explicit InternedString(detail::InternRep* r) noexcept : rep_(r) {}
    static detail::InternRep* acquire(std::string_view s) {
        return s.empty() ? nullptr : detail::InternTable::instance().acquire(s);
    }
    void release() noexcept {
        if (rep_) detail::InternTable::instance().release(rep_);
    }
    detail::InternRep* rep_ = nullptr;
};

/// The texts a decoder interned last, in a small direct-mapped cache: a decoder meets the same keys and values
/// (label keys, "hyperflow", condition reasons, container names) event after event, and a hit costs a hash and a
/// comparison instead of a lookup under the table's lock. It keeps at most `slots` texts alive.
class InternCache {
public:
    static constexpr std::size_t slots = 128;

    InternedString get(std::string_view s) {
        if (s.empty()) return {};
        const std::uint32_t h = detail::intern_hash(s);
        InternedString& e = slots_[(h ^ (h >> 7)) & (slots - 1)];
        if (e.rep_ && e.view() == s) return e;
        e = InternedString(detail::InternTable::instance().acquire(s, h));
        return e;
    }
    void clear() noexcept {
        for (auto& e : slots_) e.clear();
    }

private:
    std::array<InternedString, slots> slots_{};
};

/// Distinct interned texts alive in the process, and the heap they take with the table.
inline std::size_t interned_string_count() { return detail::InternTable::instance().size(); }
inline std::size_t interned_string_memory() { return detail::InternTable::instance().memory(); }

} // namespace execution_sentinel::kube

template <> struct std::hash<execution_sentinel::kube::InternedString> {
    std::size_t operator()(const execution_sentinel::kube::InternedString& s) const noexcept {
        return std::hash<std::string_view>{}(s.view());
    }
};

#endif // EXECUTION_SENTINEL_KUBE_INTERNED_STRING_HPP
