// Includes Catch2, v2 (Debian 12) or v3.
#ifndef EXECUTION_SENTINEL_TESTS_SUPPORT_CATCH_HPP
#define EXECUTION_SENTINEL_TESTS_SUPPORT_CATCH_HPP
#if defined(EXECUTION_SENTINEL_CATCH2_V3)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
#endif
