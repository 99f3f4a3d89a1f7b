#include <execution_sentinel/kube/backoff.hpp>

#include "catch.hpp"

#include <chrono>
#include <cstdint>

namespace kube = execution_sentinel::kube;
using namespace std::chrono;
using ms = milliseconds;

TEST_CASE("backoff: 0.8 s doubling to 30 s with jitter in [d, 2d), never above 30 s", "[kube][backoff]") {
    for (std::uint64_t seed : {1ull, 2ull, 3ull, 0x5eed5eed5eedull}) {
        kube::BackoffOptions o;
        o.seed = seed;
        kube::Backoff b(o);
        auto t = kube::Backoff::clock::time_point{} + hours{1};
        const ms expected_base[] = {ms{800},   ms{1600},  ms{3200},  ms{6400}, ms{12800},
                                    ms{25600}, ms{30000}, ms{30000}, ms{30000}};
        for (auto base : expected_base) {
            auto d = b.next_delay(t);
            CAPTURE(seed, base.count(), d.count());
            CHECK(d >= base);
            CHECK(d < 2 * base);
            CHECK(d <= ms{30000}); // the cap holds with the jitter: a watcher never sleeps a whole minute
            t += d; // the next attempt fails right after the wait: no reset
        }
        CHECK(b.step() == 6); // stays at the cap
    }
}

TEST_CASE("backoff: the jittered delay is clamped to the cap, a Retry-After hint may exceed it", "[kube][backoff]") {
    kube::BackoffOptions o;
    o.initial = ms{20000};
    o.cap = ms{30000};
    o.seed = 7;
    kube::Backoff b(o);
    auto t = kube::Backoff::clock::time_point{};
    for (int i = 0; i < 20; ++i) CHECK(b.next_delay(t) <= ms{30000});
    CHECK(b.next_delay(t, 45) == ms{45000});
}

TEST_CASE("backoff: without jitter the sequence is exact", "[kube][backoff]") {
    kube::BackoffOptions o;
    o.jitter = 0;
    kube::Backoff b(o);
    auto t = kube::Backoff::clock::time_point{};
    CHECK(b.next_delay(t) == ms{800});
    CHECK(b.next_delay(t) == ms{1600});
    CHECK(b.next_delay(t) == ms{3200});
    b.reset();
    CHECK(b.next_delay(t) == ms{800});
}

TEST_CASE("backoff: reset after 2 minutes without backing off", "[kube][backoff]") {
    kube::BackoffOptions o;
    o.jitter = 0;
    kube::Backoff b(o);
    auto t = kube::Backoff::clock::time_point{};
    for (int i = 0; i < 5; ++i) b.next_delay(t);
    CHECK(b.next_delay(t + seconds{119}) == ms{25600}); // 119 s after the previous: still backing off
    CHECK(b.next_delay(t + seconds{119} + seconds{121}) == ms{800}); // 121 s of health: start again
    CHECK(b.next_delay(t + seconds{241}) == ms{1600});
}

TEST_CASE("backoff: Retry-After is honoured, clamped, never shortens the policy", "[kube][backoff]") {
    kube::BackoffOptions o;
    o.jitter = 0;
    kube::Backoff b(o);
    auto t = kube::Backoff::clock::time_point{};
    CHECK(b.next_delay(t, 5) == ms{5000});   // hint 5 s > 0.8 s
    CHECK(b.next_delay(t, 1) == ms{1600});   // policy 1.6 s > hint 1 s
    CHECK(b.next_delay(t, 3600) == ms{60000}); // a one-hour hint is clamped to max_retry_after
    CHECK(b.next_delay(t, 0) == ms{6400});   // 0 or negative hints are ignored
    CHECK(b.next_delay(t, -4) == ms{12800});
}

TEST_CASE("backoff: the same seed replays the same delays, another seed differs", "[kube][backoff]") {
    kube::BackoffOptions o;
    o.seed = 1234;
    kube::Backoff a(o), b(o);
    o.seed = 99;
    kube::Backoff c(o);
    auto t = kube::Backoff::clock::time_point{};
    bool any_difference = false;
    for (int i = 0; i < 10; ++i) {
        auto da = a.next_delay(t), db = b.next_delay(t), dc = c.next_delay(t);
        CHECK(da == db);
        any_difference = any_difference || da != dc;
    }
    CHECK(any_difference);
}
