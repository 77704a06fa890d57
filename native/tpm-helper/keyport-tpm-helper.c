/* keyport-tpm-helper: Keyport's bridge to the TPM. One JSON request per line on stdin, one JSON answer
 * per line on stdout (flushed after each); every answer echoes the request's "id". The TPM is the one
 * named by the TCTI string in KEYPORT_TPM_TCTI (default device:/dev/tpmrm0). On EOF, {"op":"close"},
 * SIGTERM or SIGINT it flushes every transient object it loaded and exits 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonline.h"
#include "tpm.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static jl_request req;
static char line[JL_MAX_LINE + 1];

/* Answers one line; returns 1 when the helper should exit afterwards. */
static int handle_line(const char *text, size_t len, jl_answer *a) {
  char err[200];
  if (jl_parse(text, len, &req, err, sizeof err) < 0) {
    char msg[260];
    snprintf(msg, sizeof msg, "malformed request: %s", err);
    jl_error(a, 0, 0, "request", 0, 0, msg);
    jl_send(a);
    return 0;
  }
  uint64_t id = 0;
  if (jl_get_uint(&req, "id", 9007199254740991ULL, &id) != 1) {
    jl_error(a, 0, 0, "request", 0, 0, "every request needs an \"id\": a non-negative integer");
    jl_send(a);
    return 0;
  }
  const jl_field *op = jl_get(&req, "op");
  if (!op || op->type != JL_STRING) {
    jl_error(a, 1, id, "request", 0, 0, "every request needs an \"op\" string");
    jl_send(a);
    return 0;
  }
  if (strcmp(op->str, "close") == 0) {
    jl_begin(a, 1, id, 1);
    jl_send(a);
    return 1;
  }
  if (!tpm_knows(op->str)) {
    char msg[120];
    snprintf(msg, sizeof msg, "unknown op \"%.60s\"", op->str);
    jl_error(a, 1, id, "request", 0, 0, msg);
    jl_send(a);
    return 0;
  }
  tpm_dispatch(op->str, &req, id, a);
  jl_send(a);
  return 0;
}

int main(void) {
  /* The TSS libraries log every TPM error answer to stderr; the answers carry them already. TSS2_LOG set
   * by the person running the helper still wins. */
  setenv("TSS2_LOG", "all+NONE", 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: a signal interrupts the blocking read */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  jl_answer a = {0};
  size_t used = 0;  /* bytes of the current line in `line` */
  int skipping = 0; /* the current line is over the limit: drop it up to its newline */
  char chunk[8192];
  int done = 0;
  while (!done && !stopping) {
    ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) break;
    for (ssize_t i = 0; i < n && !done; i++) {
      char c = chunk[i];
      if (c == '\n') {
        if (skipping) {
          jl_error(&a, 0, 0, "request", 0, 0, "request line longer than 65536 bytes");
          jl_send(&a);
          skipping = 0;
        } else if (used > 0) {
          done = handle_line(line, used, &a);
          if (stopping) done = 1;
        }
        used = 0;
        continue;
      }
      if (skipping) continue;
      if (used == JL_MAX_LINE) {
        skipping = 1;
        used = 0;
        continue;
      }
      line[used++] = c;
    }
  }
  tpm_shutdown();
  jl_free(&a);
  return 0;
}
