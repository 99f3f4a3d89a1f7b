// The one translation unit of the execution_sentinel::testing library (cmake/testing.cmake).
#include <execution_sentinel/testing/src.hpp>
