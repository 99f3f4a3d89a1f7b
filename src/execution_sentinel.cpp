// The one translation unit of the execution_sentinel::compiled library.
#include <execution_sentinel/src.hpp>
