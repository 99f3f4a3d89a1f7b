// The one translation unit that holds Catch2's runner.
#if defined(EXECUTION_SENTINEL_CATCH2_V3)
// Catch2 v3: main() comes from Catch2::Catch2WithMain.
#else
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#endif
