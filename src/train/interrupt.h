// Ctrl-C during training: the first SIGINT/SIGTERM asks the loop to stop after
// the current batch (it then saves a checkpoint and exits cleanly); a second
// one ends the process at once.
#pragma once

namespace pointnet {

void install_interrupt_handler();
bool interrupt_requested();
void request_interrupt();  // for tests

}  // namespace pointnet
