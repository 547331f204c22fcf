// `mechscope zoo train`: trained models with known mechanisms (placeholder until the zoo lands).
#include "app/cli.h"

namespace ms::app {

void register_zoo_train(CLI::App&, std::vector<std::pair<CLI::App*, Command>>&) {}

}  // namespace ms::app
