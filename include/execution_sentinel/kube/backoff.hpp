// The one backoff policy of the client, client-go's reflector policy: 0.8 s doubling to a 30 s
// cap, jitter 1.0 (a delay d becomes a value in [d, 2d), never more than the cap), reset to the start after
// 2 minutes without backing off (or by the caller after healthy time, reset()), and the server's Retry-After
// honoured. Pure: `now` is passed in and the random source is seeded, so a
// test replays exactly the same delays.
#ifndef EXECUTION_SENTINEL_KUBE_BACKOFF_HPP
#define EXECUTION_SENTINEL_KUBE_BACKOFF_HPP

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

namespace execution_sentinel::kube {

/// The knobs of the backoff policy. Defaults are client-go's reflector values.
struct BackoffOptions {
    std::chrono::milliseconds initial{800};            ///< first delay before jitter
    double factor = 2.0;                               ///< growth per consecutive backoff
    double jitter = 1.0;                               ///< d → min(d + random[0, jitter)·d, cap); 0 = none
    std::chrono::milliseconds cap{30'000};             ///< largest delay, jitter included (Retry-After aside)
    std::chrono::milliseconds reset_after{120'000};    ///< no backoff for this long → start again at `initial`
    std::chrono::milliseconds max_retry_after{60'000}; ///< a server Retry-After larger than this is clamped
    std::uint64_t seed = 0x5eed5eed5eedull;            ///< seed of the jitter's random source
};

/// Computes successive delays. Not thread-safe; one instance per retry loop.
class Backoff {
public:
    using clock = std::chrono::steady_clock;
    using duration = std::chrono::milliseconds;

    explicit Backoff(BackoffOptions options = {}) : options_(options), rng_state_(options.seed) {}

    /// The delay before the next attempt, given the time of this failure and the server's Retry-After hint
    /// in seconds if it sent one. The result is max(policy delay, hint): the policy delay (jitter included)
    /// never exceeds `cap`, the hint is clamped to `max_retry_after`. Each call advances the policy (the next delay doubles) unless more than
    /// `reset_after` passed since the previous call, in which case the policy starts again.
    duration next_delay(clock::time_point now, std::optional<int> retry_after_seconds = std::nullopt) {
        if (last_ && now - *last_ > options_.reset_after) step_ = 0;
        last_ = now;
        double base = static_cast<double>(options_.initial.count());
        for (unsigned i = 0; i < step_ && base < static_cast<double>(options_.cap.count()); ++i) base *= options_.factor;
        base = std::min(base, static_cast<double>(options_.cap.count()));
        if (base < static_cast<double>(options_.cap.count())) ++step_;
        double jittered = base + (options_.jitter > 0 ? uniform01() * options_.jitter * base : 0.0);
        jittered = std::min(jittered, static_cast<double>(options_.cap.count()));
        duration delay{static_cast<duration::rep>(jittered)};
        if (retry_after_seconds && *retry_after_seconds > 0) {
            duration hint = std::min<duration>(std::chrono::seconds{*retry_after_seconds}, options_.max_retry_after);
            delay = std::max(delay, hint);
        }
        return delay;
    }

    /// Forget the history: the next delay is the initial one.
    void reset() noexcept {
        step_ = 0;
        last_.reset();
    }

    /// How many consecutive steps have been taken (0 after a reset).
    unsigned step() const noexcept { return step_; }
    const BackoffOptions& options() const noexcept { return options_; }

private:
    // splitmix64: tiny, seedable, identical on every platform (std distributions are not).
    double uniform01() noexcept {
        std::uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        return static_cast<double>(z >> 11) * 0x1.0p-53;
    }

    BackoffOptions options_;
    std::uint64_t rng_state_;
    unsigned step_ = 0;
    std::optional<clock::time_point> last_;
};

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_BACKOFF_HPP
