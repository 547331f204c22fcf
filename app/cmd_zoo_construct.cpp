// `mechscope zoo construct`: models whose weights are set by hand (placeholder until the zoo lands).
#include "app/cli.h"

namespace ms::app {

void register_zoo_construct(CLI::App&, std::vector<std::pair<CLI::App*, Command>>&) {}

}  // namespace ms::app
