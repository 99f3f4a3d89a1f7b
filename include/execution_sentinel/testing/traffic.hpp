// What FakeCluster's connections carried, byte by byte (FakeCluster::traffic()): per connection and per request,
// counted on the socket, so a benchmark can compare the traffic of two ways of watching the same run.
#ifndef EXECUTION_SENTINEL_TESTING_TRAFFIC_HPP
#define EXECUTION_SENTINEL_TESTING_TRAFFIC_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace execution_sentinel::testing {

/// One request and the bytes of its exchange: from the first byte of the request read to the last byte of the
/// answer written (a watch, followed log or exec session: so far, while it is open). Counted as the socket
/// transfers them, so TLS record overhead and HTTP framing are included.
struct RequestTraffic {
    std::uint64_t connection = 0;  ///< the connection it came on (ConnectionTraffic::id)
    std::string method;            ///< "GET", "POST" …
    std::string target;            ///< path and query, as requested
    std::uint64_t bytes_sent = 0;  ///< server → client
    std::uint64_t bytes_received = 0; ///< client → server
    bool open = false;             ///< still being answered (a stream)
};

/// One accepted connection: every byte it moved, the TLS handshake and close included.
struct ConnectionTraffic {
    std::uint64_t id = 0;          ///< 1, 2, … in the order of acceptance
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    std::size_t requests = 0;
    bool open = false;
};

/// The traffic since the cluster was constructed.
struct Traffic {
    std::uint64_t bytes_sent = 0;     ///< by every connection, also those no longer listed
    std::uint64_t bytes_received = 0;
    std::uint64_t connections_total = 0;
    std::uint64_t requests_total = 0;
    std::vector<ConnectionTraffic> connections; ///< the newest (at most 100,000), oldest first
    std::vector<RequestTraffic> requests;       ///< the newest (at most 100,000), oldest first
};

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_TRAFFIC_HPP
