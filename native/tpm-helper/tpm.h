/* The TPM side of keyport-tpm-helper: one ESYS context over the TCTI named by KEYPORT_TPM_TCTI, the
 * ops the helper answers, and the cleanup that flushes every transient object it loaded. */
#ifndef KEYPORT_TPM_H
#define KEYPORT_TPM_H

#include <stdint.h>

#include "jsonline.h"

/* Runs one request (its op already known to be a TPM op) and writes its answer, success or error. */
void tpm_dispatch(const char *op, const jl_request *req, uint64_t id, jl_answer *a);
/* 1 when op names a TPM op. */
int tpm_knows(const char *op);
/* Flushes transient objects, closes persistent handles' metadata, finalizes ESYS and the TCTI. */
void tpm_shutdown(void);

#endif
