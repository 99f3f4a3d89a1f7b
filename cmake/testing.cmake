# execution_sentinel::testing: the simulated cluster (FakeCluster, scenarios, HyperFlow object builders) compiled
# once, in src/testing.cpp. Linking it defines EXECUTION_SENTINEL_SEPARATE_COMPILATION for the consumer, so the
# testing headers only declare and no test or tool compiles the simulated apiserver (Beast, Asio SSL, WebSocket)
# again. Without this target the same headers stay header-only. See docs/fake-cluster.md.
add_library(execution_sentinel_testing STATIC ${PROJECT_SOURCE_DIR}/src/testing.cpp)
add_library(execution_sentinel::testing ALIAS execution_sentinel_testing)
target_link_libraries(execution_sentinel_testing PUBLIC execution_sentinel::execution_sentinel)
target_compile_definitions(execution_sentinel_testing PUBLIC EXECUTION_SENTINEL_SEPARATE_COMPILATION)
# The project's warning (and sanitizer) flags, when the project builds its own tests or tools.
target_link_libraries(execution_sentinel_testing PRIVATE $<TARGET_NAME_IF_EXISTS:execution_sentinel_build_flags>)
set_target_properties(execution_sentinel_testing PROPERTIES EXPORT_NAME testing)
