// A downstream program: it only needs the installed (or added) target to compile, link and run.
#include <execution_sentinel.hpp>
#include <iostream>

int main() {
    namespace es = execution_sentinel;
    std::error_code ec = es::kube::error::expired;
    if (ec != es::kube::condition::resync_required) return 1;
    std::cout << "consumer built against execution-sentinel " << es::version_string << "\n";
    return 0;
}
