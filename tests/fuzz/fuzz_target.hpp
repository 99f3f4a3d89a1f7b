// Shared by the fuzz targets: each defines `fuzz_one(std::string_view)` through EXECUTION_SENTINEL_FUZZ_TARGET.
// With clang and -fsanitize=fuzzer the target is a libFuzzer entry point; otherwise driver.cpp replays a corpus
// and a bounded, seeded series of mutations of it (the smoke run that CI does under ASan + UBSan), every target in
// one program.
#ifndef EXECUTION_SENTINEL_TESTS_FUZZ_FUZZ_TARGET_HPP
#define EXECUTION_SENTINEL_TESTS_FUZZ_FUZZ_TARGET_HPP

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

namespace execution_sentinel::fuzz {
void fuzz_one(std::string_view data);

/// A target of the smoke program (below) and its registration, defined by driver.cpp.
using Target = void (*)(std::string_view);
bool register_target(const char* name, Target target);

/// An exception of a type the target does not document is a bug: report it and abort, so the fuzzer keeps it.
[[noreturn]] inline void unexpected(const char* what) {
    std::fprintf(stderr, "undocumented exception escaped: %s\n", what);
    std::abort();
}

/// A property the parser promises for every input: when it does not hold, report it and abort.
inline void expect(bool holds, const char* property) {
    if (holds) return;
    std::fprintf(stderr, "property violated: %s\n", property);
    std::abort();
}
} // namespace execution_sentinel::fuzz

#ifdef EXECUTION_SENTINEL_FUZZ_NAME
// The smoke build links every target into one program (tests/fuzz/CMakeLists.txt): each source is compiled with
// `fuzz_one` renamed to a name of its own and registers it here under EXECUTION_SENTINEL_FUZZ_NAME; driver.cpp
// runs the one named by `--target`.
namespace execution_sentinel::fuzz {
namespace {
[[maybe_unused]] const bool registered = register_target(EXECUTION_SENTINEL_FUZZ_NAME, &fuzz_one);
} // namespace
} // namespace execution_sentinel::fuzz
#elif !defined(EXECUTION_SENTINEL_FUZZ_DRIVER)
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    execution_sentinel::fuzz::fuzz_one(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
#endif

#endif
