#include "train/interrupt.h"

#include <csignal>
#include <cstdlib>
#include <unistd.h>

namespace pointnet {

namespace {
volatile std::sig_atomic_t g_interrupts = 0;

void on_signal(int) {
  g_interrupts = g_interrupts + 1;
  if (g_interrupts >= 2) _exit(130);
  const char msg[] = "\ninterrupt: finishing this batch, then saving a checkpoint (press again to quit now)\n";
  (void)!write(2, msg, sizeof(msg) - 1);
}
}  // namespace

void install_interrupt_handler() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool interrupt_requested() { return g_interrupts > 0; }
void request_interrupt() { g_interrupts = 1; }

}  // namespace pointnet
