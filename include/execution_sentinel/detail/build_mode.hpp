// How the library is compiled: header-only (the default) or separately (EXECUTION_SENTINEL_SEPARATE_COMPILATION).
//
// Header-only: every header carries its function bodies, each `inline`; nothing to link but the dependencies.
// Separate compilation (as with BOOST_BEAST_SEPARATE_COMPILATION): define EXECUTION_SENTINEL_SEPARATE_COMPILATION
// in every translation unit and compile <execution_sentinel/src.hpp> in exactly one of them (the CMake target
// execution_sentinel::compiled does both). The headers then only declare the non-template parts (the HTTPS client,
// TLS, exec, logs, kubeconfig, credentials), and the common template instantiations (Watcher<Pod|Job|Event>,
// WatchMachine<...>, DefaultSentinel) are declared `extern template`: a translation unit that includes the umbrella
// header no longer compiles the Beast, TLS and WebSocket coroutines again. See docs/building.md.
#ifndef EXECUTION_SENTINEL_DETAIL_BUILD_MODE_HPP
#define EXECUTION_SENTINEL_DETAIL_BUILD_MODE_HPP

#if defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
/// Linkage of a function whose body is compiled once in src.hpp.
#define EXECUTION_SENTINEL_DECL
/// 1 where the bodies of such functions are compiled: in src.hpp only.
/// EXECUTION_SENTINEL_EXTERN_TEMPLATES: 1 where the common template instantiations are declared extern (every
/// translation unit but src.hpp's).
#if defined(EXECUTION_SENTINEL_SOURCE)
#define EXECUTION_SENTINEL_COMPILE_BODIES 1
#define EXECUTION_SENTINEL_EXTERN_TEMPLATES 0
#else
#define EXECUTION_SENTINEL_COMPILE_BODIES 0
#define EXECUTION_SENTINEL_EXTERN_TEMPLATES 1
#endif
#else
#define EXECUTION_SENTINEL_DECL inline
#define EXECUTION_SENTINEL_COMPILE_BODIES 1
#define EXECUTION_SENTINEL_EXTERN_TEMPLATES 0
#endif

#endif // EXECUTION_SENTINEL_DETAIL_BUILD_MODE_HPP
