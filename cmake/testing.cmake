# execution_sentinel::testing: the simulated cluster (FakeCluster, scenarios, HyperFlow object builders) compiled
# once, in src/testing.cpp, for tests and demos of programs that use execution-sentinel. It links
# execution_sentinel::compiled (which defines EXECUTION_SENTINEL_SEPARATE_COMPILATION for the consumer), so neither
# the simulated apiserver nor the client is compiled again by a test. The simulated cluster shares no code with the
# client: the link only serves the consumer's own use of the client. Without this target the same headers stay
# header-only. Built only when something links it, unless execution-sentinel is the top-level project.
# See docs/fake-cluster.md.
add_library(execution_sentinel_testing STATIC ${PROJECT_SOURCE_DIR}/src/testing.cpp)
add_library(execution_sentinel::testing ALIAS execution_sentinel_testing)
target_link_libraries(execution_sentinel_testing PUBLIC execution_sentinel::compiled)
set_target_properties(execution_sentinel_testing PROPERTIES EXPORT_NAME testing OUTPUT_NAME execution_sentinel_testing)
if(DEFINED es_warning_flags)
  # The project's warning (and sanitizer) flags, when the project builds its own tests or tools.
  target_compile_options(execution_sentinel_testing PRIVATE ${es_warning_flags} ${es_sanitize_flags})
endif()
if(NOT EXECUTION_SENTINEL_TOP_LEVEL)
  set_target_properties(execution_sentinel_testing PROPERTIES EXCLUDE_FROM_ALL ON)
endif()
