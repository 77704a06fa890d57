/* The TPM ops of keyport-tpm-helper over tss2-esys. Transient objects live only for the helper's own
 * lifetime and are flushed on exit (a TPM without a resource manager, like swtpm, holds only three). */
#include "tpm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define DEFAULT_TCTI "device:/dev/tpmrm0"
#define EK_HANDLE 0x81010001u
#define EK_CERT_NV_INDEX 0x01c00002u
#define DEFAULT_AK_HANDLE 0x81004B50u
#define MAX_CACHED_AKS 8

static ESYS_CONTEXT *ctx;
static TSS2_TCTI_CONTEXT *tcti;
static char tcti_conf[256];

static ESYS_TR ek_tr = ESYS_TR_NONE;
static int ek_transient;

static struct {
  TPM2_HANDLE handle;
  ESYS_TR tr;
} aks[MAX_CACHED_AKS];
static size_t ak_count;

/* ---- errors ---- */

static int is_tcti_error(TSS2_RC rc) { return (rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER; }

/* A handle that holds nothing: TPM_RC_HANDLE in format one, from the TPM itself. */
static int is_handle_error(TSS2_RC rc) {
  return (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && (rc & TPM2_RC_FMT1) && (rc & 0x3F) == (TPM2_RC_HANDLE & 0x3F);
}

static void forget_context(void);

static void tpm_fail(jl_answer *a, uint64_t id, const char *what, TSS2_RC rc) {
  char msg[1024];
  if (is_tcti_error(rc)) {
    snprintf(msg, sizeof msg, "No TPM at %s: %s failed: %s (0x%x)", tcti_conf, what, Tss2_RC_Decode(rc), rc);
    /* The connection is gone or broken: start afresh on the next request. */
    forget_context();
  } else {
    snprintf(msg, sizeof msg, "%s failed: %s (0x%x)", what, Tss2_RC_Decode(rc), rc);
  }
  jl_error(a, 1, id, "tpm", 1, rc, msg);
}

static void request_fail(jl_answer *a, uint64_t id, const char *msg) { jl_error(a, 1, id, "request", 0, 0, msg); }

/* ---- context ---- */

static void forget_context(void) {
  /* Without a working connection nothing can be flushed; the metadata goes with the context. */
  if (ctx) Esys_Finalize(&ctx);
  if (tcti) Tss2_TctiLdr_Finalize(&tcti);
  ctx = NULL;
  tcti = NULL;
  ek_tr = ESYS_TR_NONE;
  ek_transient = 0;
  ak_count = 0;
}

static TSS2_RC ensure_context(void) {
  if (ctx) return TSS2_RC_SUCCESS;
  const char *conf = getenv("KEYPORT_TPM_TCTI");
  if (!conf || !*conf) conf = DEFAULT_TCTI;
  snprintf(tcti_conf, sizeof tcti_conf, "%s", conf);
  TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti_conf, &tcti);
  if (rc != TSS2_RC_SUCCESS) {
    tcti = NULL;
    /* Some loaders answer with a base RC; report every init failure as the TCTI's. */
    if (!is_tcti_error(rc)) rc = TSS2_TCTI_RC_LAYER | (rc & 0xFFFF);
    return rc;
  }
  rc = Esys_Initialize(&ctx, tcti, NULL);
  if (rc != TSS2_RC_SUCCESS) {
    ctx = NULL;
    Tss2_TctiLdr_Finalize(&tcti);
    tcti = NULL;
  }
  return rc;
}

void tpm_shutdown(void) {
  if (ctx) {
    if (ek_tr != ESYS_TR_NONE) {
      if (ek_transient)
        Esys_FlushContext(ctx, ek_tr);
      else
        Esys_TR_Close(ctx, &ek_tr);
    }
    for (size_t i = 0; i < ak_count; i++) Esys_TR_Close(ctx, &aks[i].tr);
  }
  ek_tr = ESYS_TR_NONE;
  ak_count = 0;
  if (ctx) Esys_Finalize(&ctx);
  if (tcti) Tss2_TctiLdr_Finalize(&tcti);
  ctx = NULL;
  tcti = NULL;
}

/* ---- request fields ---- */

static int ak_handle_of(const jl_request *req, TPM2_HANDLE *handle, jl_answer *a, uint64_t id) {
  uint64_t h = DEFAULT_AK_HANDLE;
  int got = jl_get_uint(req, "handle", 0xFFFFFFFFu, &h);
  if (got < 0 || h < 0x81000000u || h > 0x817FFFFFu) {
    request_fail(a, id, "handle must be a persistent owner handle (0x81000000..0x817FFFFF)");
    return -1;
  }
  *handle = (TPM2_HANDLE)h;
  return 0;
}

/* A base64 field into out; -1 (answered) when absent, malformed or of a length outside [min, max]. */
static long b64_field(const jl_request *req, const char *key, uint8_t *out, size_t min, size_t max, jl_answer *a,
                      uint64_t id) {
  char msg[160];
  const jl_field *f = jl_get(req, key);
  if (!f || f->type != JL_STRING) {
    snprintf(msg, sizeof msg, "%s must be a base64 string", key);
    request_fail(a, id, msg);
    return -1;
  }
  long n = b64_decode(f->str, f->str_len, out, max);
  if (n < 0 || (size_t)n < min) {
    snprintf(msg, sizeof msg, "%s must be standard base64 of %zu to %zu bytes", key, min, max);
    request_fail(a, id, msg);
    return -1;
  }
  return n;
}

/* ---- marshalling helpers ---- */

static int add_public(jl_answer *a, const char *key, const TPMT_PUBLIC *pub) {
  uint8_t buf[sizeof(TPMT_PUBLIC)];
  size_t off = 0;
  if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof buf, &off) != TSS2_RC_SUCCESS) return -1;
  jl_add_b64(a, key, buf, off);
  return 0;
}

/* ---- persistent AKs, cached per handle ---- */

static ESYS_TR cached_ak(TPM2_HANDLE handle) {
  for (size_t i = 0; i < ak_count; i++)
    if (aks[i].handle == handle) return aks[i].tr;
  return ESYS_TR_NONE;
}

static void uncache_ak(TPM2_HANDLE handle) {
  for (size_t i = 0; i < ak_count; i++)
    if (aks[i].handle == handle) {
      aks[i] = aks[--ak_count];
      return;
    }
}

static void cache_ak(TPM2_HANDLE handle, ESYS_TR tr) {
  uncache_ak(handle);
  if (ak_count == MAX_CACHED_AKS) {
    Esys_TR_Close(ctx, &aks[0].tr);
    aks[0] = aks[--ak_count];
  }
  aks[ak_count].handle = handle;
  aks[ak_count].tr = tr;
  ak_count++;
}

/* The AK at handle: cached, or looked up once. rc is the TPM's answer when it fails. */
static TSS2_RC ak_at(TPM2_HANDLE handle, ESYS_TR *tr) {
  *tr = cached_ak(handle);
  if (*tr != ESYS_TR_NONE) return TSS2_RC_SUCCESS;
  TSS2_RC rc = Esys_TR_FromTPMPublic(ctx, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, tr);
  if (rc == TSS2_RC_SUCCESS) cache_ak(handle, *tr);
  return rc;
}

static void answer_ak(jl_answer *a, uint64_t id, TPM2_HANDLE handle, ESYS_TR tr) {
  TPM2B_PUBLIC *pub = NULL;
  TPM2B_NAME *name = NULL;
  TPM2B_NAME *qname = NULL;
  TSS2_RC rc = Esys_ReadPublic(ctx, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, &name, &qname);
  if (rc != TSS2_RC_SUCCESS) {
    tpm_fail(a, id, "ReadPublic of the attestation key", rc);
    return;
  }
  jl_begin(a, 1, id, 1);
  if (add_public(a, "public", &pub->publicArea) < 0) {
    jl_error(a, 1, id, "internal", 0, 0, "cannot marshal the attestation key's public area");
  } else {
    jl_add_b64(a, "name", name->name, name->size);
    jl_add_uint(a, "handle", handle);
  }
  Esys_Free(pub);
  Esys_Free(name);
  Esys_Free(qname);
}

/* ---- ops ---- */

static void trim_ascii(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0')) s[--n] = '\0';
}

static void op_info(jl_answer *a, uint64_t id) {
  TPMI_YES_NO more;
  TPMS_CAPABILITY_DATA *cap = NULL;
  TSS2_RC rc = Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                  TPM2_PT_MANUFACTURER, TPM2_PT_FIRMWARE_VERSION_2 - TPM2_PT_MANUFACTURER + 1, &more,
                                  &cap);
  if (rc != TSS2_RC_SUCCESS) {
    tpm_fail(a, id, "GetCapability", rc);
    return;
  }
  uint32_t manufacturer = 0, fw1 = 0, fw2 = 0;
  for (UINT32 i = 0; i < cap->data.tpmProperties.count; i++) {
    TPMS_TAGGED_PROPERTY *p = &cap->data.tpmProperties.tpmProperty[i];
    if (p->property == TPM2_PT_MANUFACTURER) manufacturer = p->value;
    if (p->property == TPM2_PT_FIRMWARE_VERSION_1) fw1 = p->value;
    if (p->property == TPM2_PT_FIRMWARE_VERSION_2) fw2 = p->value;
  }
  Esys_Free(cap);
  char m[5] = {(char)(manufacturer >> 24), (char)(manufacturer >> 16), (char)(manufacturer >> 8), (char)manufacturer, 0};
  trim_ascii(m);
  char fw[64];
  snprintf(fw, sizeof fw, "%u.%u.%u.%u", fw1 >> 16, fw1 & 0xFFFF, fw2 >> 16, fw2 & 0xFFFF);
  jl_begin(a, 1, id, 1);
  jl_add_string(a, "manufacturer", m);
  jl_add_string(a, "firmware", fw);
  jl_add_string(a, "tcti", tcti_conf);
}

/* TCG EK Credential Profile, template L-1: RSA 2048, AES-128-CFB, PolicySecret(TPM_RH_ENDORSEMENT). */
static const TPM2B_PUBLIC ek_template = {
    .size = 0,
    .publicArea =
        {
            .type = TPM2_ALG_RSA,
            .nameAlg = TPM2_ALG_SHA256,
            .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT,
            .authPolicy = {.size = 32,
                           .buffer = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC,
                                      0x8D, 0x46, 0xA5, 0xD7, 0x24, 0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52,
                                      0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA}},
            .parameters.rsaDetail =
                {
                    .symmetric = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB},
                    .scheme = {.scheme = TPM2_ALG_NULL},
                    .keyBits = 2048,
                    .exponent = 0,
                },
            .unique.rsa = {.size = 256, .buffer = {0}},
        },
};

/* The EK's ESYS_TR and public area (caller frees pub). */
static TSS2_RC ensure_ek(TPM2B_PUBLIC **pub, const char **what) {
  TSS2_RC rc;
  *pub = NULL;
  if (ek_tr == ESYS_TR_NONE) {
    ESYS_TR tr;
    rc = Esys_TR_FromTPMPublic(ctx, EK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
    if (rc == TSS2_RC_SUCCESS) {
      TPM2B_PUBLIC *p = NULL;
      rc = Esys_ReadPublic(ctx, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &p, NULL, NULL);
      if (rc == TSS2_RC_SUCCESS && p->publicArea.type == TPM2_ALG_RSA) {
        ek_tr = tr;
        ek_transient = 0;
        *pub = p;
        return TSS2_RC_SUCCESS;
      }
      Esys_Free(p);
      Esys_TR_Close(ctx, &tr);
    } else if (!is_handle_error(rc)) {
      *what = "reading the persistent EK";
      return rc;
    }
    TPM2B_SENSITIVE_CREATE sensitive = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    rc = Esys_CreatePrimary(ctx, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive,
                            &ek_template, &outside, &pcrs, &tr, pub, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
      *what = "CreatePrimary of the EK";
      return rc;
    }
    ek_tr = tr;
    ek_transient = 1;
    return TSS2_RC_SUCCESS;
  }
  rc = Esys_ReadPublic(ctx, ek_tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, pub, NULL, NULL);
  if (rc != TSS2_RC_SUCCESS) *what = "ReadPublic of the EK";
  return rc;
}

static TSS2_RC nv_buffer_max(UINT16 *max) {
  TPMI_YES_NO more;
  TPMS_CAPABILITY_DATA *cap = NULL;
  *max = 512;
  TSS2_RC rc = Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                  TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap);
  if (rc != TSS2_RC_SUCCESS) return rc;
  if (cap->data.tpmProperties.count == 1 && cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX) {
    UINT32 v = cap->data.tpmProperties.tpmProperty[0].value;
    if (v > 0 && v <= TPM2_MAX_NV_BUFFER_SIZE) *max = (UINT16)v;
  }
  Esys_Free(cap);
  return TSS2_RC_SUCCESS;
}

/* The EK certificate from its NV index: 1 with *der (malloc'd), 0 when absent, or an RC < 0-free path. */
static TSS2_RC read_ek_cert(uint8_t **der, size_t *der_len, const char **what) {
  *der = NULL;
  *der_len = 0;
  ESYS_TR nv;
  TSS2_RC rc = Esys_TR_FromTPMPublic(ctx, EK_CERT_NV_INDEX, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
  if (rc != TSS2_RC_SUCCESS) {
    if (is_handle_error(rc)) return TSS2_RC_SUCCESS;
    *what = "looking up the EK certificate's NV index";
    return rc;
  }
  TPM2B_NV_PUBLIC *nvpub = NULL;
  rc = Esys_NV_ReadPublic(ctx, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nvpub, NULL);
  if (rc != TSS2_RC_SUCCESS) {
    *what = "NV_ReadPublic of the EK certificate";
    Esys_TR_Close(ctx, &nv);
    return rc;
  }
  UINT16 size = nvpub->nvPublic.dataSize;
  TPMA_NV attrs = nvpub->nvPublic.attributes;
  Esys_Free(nvpub);
  ESYS_TR auth = (attrs & TPMA_NV_AUTHREAD) ? nv : (attrs & TPMA_NV_OWNERREAD) ? ESYS_TR_RH_OWNER : ESYS_TR_RH_PLATFORM;
  UINT16 chunk;
  rc = nv_buffer_max(&chunk);
  if (rc != TSS2_RC_SUCCESS) {
    *what = "GetCapability(NV_BUFFER_MAX)";
    Esys_TR_Close(ctx, &nv);
    return rc;
  }
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) {
    Esys_TR_Close(ctx, &nv);
    *what = "allocating";
    return TSS2_BASE_RC_MEMORY;
  }
  UINT16 off = 0;
  while (off < size) {
    UINT16 n = (UINT16)(size - off < chunk ? size - off : chunk);
    TPM2B_MAX_NV_BUFFER *data = NULL;
    rc = Esys_NV_Read(ctx, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n, off, &data);
    if (rc != TSS2_RC_SUCCESS) {
      *what = "NV_Read of the EK certificate";
      free(buf);
      Esys_TR_Close(ctx, &nv);
      return rc;
    }
    if (data->size != n) {
      Esys_Free(data);
      free(buf);
      Esys_TR_Close(ctx, &nv);
      *what = "NV_Read of the EK certificate (short read)";
      return TSS2_BASE_RC_MALFORMED_RESPONSE;
    }
    memcpy(buf + off, data->buffer, n);
    Esys_Free(data);
    off = (UINT16)(off + n);
  }
  Esys_TR_Close(ctx, &nv);
  /* NV indices are often larger than the certificate: keep the DER SEQUENCE's own length. */
  size_t len = size;
  if (size >= 4 && buf[0] == 0x30 && buf[1] == 0x82) {
    size_t inner = ((size_t)buf[2] << 8) | buf[3];
    if (inner + 4 <= size) len = inner + 4;
  } else if (size >= 3 && buf[0] == 0x30 && buf[1] == 0x81) {
    size_t inner = buf[2];
    if (inner + 3 <= size) len = inner + 3;
  }
  *der = buf;
  *der_len = len;
  return TSS2_RC_SUCCESS;
}

static void op_ek(jl_answer *a, uint64_t id) {
  TPM2B_PUBLIC *pub = NULL;
  const char *what = "";
  TSS2_RC rc = ensure_ek(&pub, &what);
  if (rc != TSS2_RC_SUCCESS) {
    tpm_fail(a, id, what, rc);
    return;
  }
  uint8_t *der = NULL;
  size_t der_len = 0;
  rc = read_ek_cert(&der, &der_len, &what);
  if (rc != TSS2_RC_SUCCESS) {
    Esys_Free(pub);
    tpm_fail(a, id, what, rc);
    return;
  }
  jl_begin(a, 1, id, 1);
  if (add_public(a, "public", &pub->publicArea) < 0)
    jl_error(a, 1, id, "internal", 0, 0, "cannot marshal the EK's public area");
  else if (der)
    jl_add_b64(a, "certificate", der, der_len);
  Esys_Free(pub);
  free(der);
}

static const TPM2B_PUBLIC srk_template = {
    .size = 0,
    .publicArea =
        {
            .type = TPM2_ALG_ECC,
            .nameAlg = TPM2_ALG_SHA256,
            .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
                                TPMA_OBJECT_DECRYPT,
            .authPolicy = {.size = 0},
            .parameters.eccDetail =
                {
                    .symmetric = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB},
                    .scheme = {.scheme = TPM2_ALG_NULL},
                    .curveID = TPM2_ECC_NIST_P256,
                    .kdf = {.scheme = TPM2_ALG_NULL},
                },
            .unique.ecc = {.x = {.size = 32, .buffer = {0}}, .y = {.size = 32, .buffer = {0}}},
        },
};

static const TPM2B_PUBLIC ak_template = {
    .size = 0,
    .publicArea =
        {
            .type = TPM2_ALG_ECC,
            .nameAlg = TPM2_ALG_SHA256,
            .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT,
            .authPolicy = {.size = 0},
            .parameters.eccDetail =
                {
                    .symmetric = {.algorithm = TPM2_ALG_NULL},
                    .scheme = {.scheme = TPM2_ALG_ECDSA, .details.ecdsa.hashAlg = TPM2_ALG_SHA256},
                    .curveID = TPM2_ECC_NIST_P256,
                    .kdf = {.scheme = TPM2_ALG_NULL},
                },
            .unique.ecc = {.x = {.size = 0}, .y = {.size = 0}},
        },
};

static void op_create_ak(const jl_request *req, jl_answer *a, uint64_t id) {
  TPM2_HANDLE handle;
  if (ak_handle_of(req, &handle, a, id) < 0) return;
  TPM2B_SENSITIVE_CREATE sensitive = {0};
  TPM2B_DATA outside = {0};
  TPML_PCR_SELECTION pcrs = {0};
  ESYS_TR srk = ESYS_TR_NONE, ak = ESYS_TR_NONE, persistent = ESYS_TR_NONE;
  TPM2B_PRIVATE *priv = NULL;
  TPM2B_PUBLIC *pub = NULL;
  const char *what = "CreatePrimary of the storage key";
  TSS2_RC rc = Esys_CreatePrimary(ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive,
                                  &srk_template, &outside, &pcrs, &srk, NULL, NULL, NULL, NULL);
  if (rc != TSS2_RC_SUCCESS) goto done;
  what = "Create of the attestation key";
  rc = Esys_Create(ctx, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &ak_template, &outside, &pcrs,
                   &priv, &pub, NULL, NULL, NULL);
  if (rc != TSS2_RC_SUCCESS) goto done;
  what = "Load of the attestation key";
  rc = Esys_Load(ctx, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &ak);
  if (rc != TSS2_RC_SUCCESS) goto done;
  /* The storage key is no longer needed: free its slot before anything else. */
  Esys_FlushContext(ctx, srk);
  srk = ESYS_TR_NONE;

  /* Whatever holds the handle goes first. */
  ESYS_TR old = cached_ak(handle);
  uncache_ak(handle);
  if (old == ESYS_TR_NONE) {
    rc = Esys_TR_FromTPMPublic(ctx, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &old);
    if (rc != TSS2_RC_SUCCESS) {
      old = ESYS_TR_NONE;
      if (!is_handle_error(rc)) {
        what = "looking up the persistent handle";
        goto done;
      }
    }
  }
  if (old != ESYS_TR_NONE) {
    ESYS_TR gone = ESYS_TR_NONE;
    what = "EvictControl (removing the old key)";
    rc = Esys_EvictControl(ctx, ESYS_TR_RH_OWNER, old, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, handle, &gone);
    if (rc != TSS2_RC_SUCCESS) {
      Esys_TR_Close(ctx, &old);
      goto done;
    }
  }
  what = "EvictControl (persisting the attestation key)";
  rc = Esys_EvictControl(ctx, ESYS_TR_RH_OWNER, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, handle,
                         &persistent);
  if (rc != TSS2_RC_SUCCESS) goto done;
  Esys_FlushContext(ctx, ak);
  ak = ESYS_TR_NONE;
  cache_ak(handle, persistent);

done:
  if (srk != ESYS_TR_NONE) Esys_FlushContext(ctx, srk);
  if (ak != ESYS_TR_NONE) Esys_FlushContext(ctx, ak);
  Esys_Free(priv);
  Esys_Free(pub);
  if (rc != TSS2_RC_SUCCESS) {
    tpm_fail(a, id, what, rc);
    return;
  }
  answer_ak(a, id, handle, persistent);
}

static void not_found(jl_answer *a, uint64_t id, TPM2_HANDLE handle) {
  char msg[120];
  snprintf(msg, sizeof msg, "no key at persistent handle 0x%08x", handle);
  jl_error(a, 1, id, "not_found", 0, 0, msg);
}

static int find_ak(const jl_request *req, jl_answer *a, uint64_t id, TPM2_HANDLE *handle, ESYS_TR *tr) {
  if (ak_handle_of(req, handle, a, id) < 0) return -1;
  TSS2_RC rc = ak_at(*handle, tr);
  if (rc == TSS2_RC_SUCCESS) return 0;
  if (is_handle_error(rc))
    not_found(a, id, *handle);
  else
    tpm_fail(a, id, "looking up the attestation key", rc);
  return -1;
}

static void op_load_ak(const jl_request *req, jl_answer *a, uint64_t id) {
  TPM2_HANDLE handle;
  ESYS_TR tr;
  if (find_ak(req, a, id, &handle, &tr) < 0) return;
  answer_ak(a, id, handle, tr);
}

static void op_activate(const jl_request *req, jl_answer *a, uint64_t id) {
  TPM2_HANDLE handle;
  ESYS_TR ak;
  TPM2B_ID_OBJECT credential = {0};
  TPM2B_ENCRYPTED_SECRET secret = {0};
  long n = b64_field(req, "credential", credential.credential, 1, sizeof credential.credential, a, id);
  if (n < 0) return;
  credential.size = (UINT16)n;
  n = b64_field(req, "secret", secret.secret, 1, sizeof secret.secret, a, id);
  if (n < 0) return;
  secret.size = (UINT16)n;
  if (find_ak(req, a, id, &handle, &ak) < 0) return;
  TPM2B_PUBLIC *ekpub = NULL;
  const char *what = "";
  TSS2_RC rc = ensure_ek(&ekpub, &what);
  Esys_Free(ekpub);
  if (rc != TSS2_RC_SUCCESS) {
    tpm_fail(a, id, what, rc);
    return;
  }
  ESYS_TR session = ESYS_TR_NONE;
  TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
  TPM2B_DIGEST *cert_info = NULL;
  what = "StartAuthSession";
  rc = Esys_StartAuthSession(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                             TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &session);
  if (rc != TSS2_RC_SUCCESS) goto done;
  /* Kept after the command, so this function flushes it whatever happens. */
  rc = Esys_TRSess_SetAttributes(ctx, session, TPMA_SESSION_CONTINUESESSION, 0xFF);
  if (rc != TSS2_RC_SUCCESS) goto done;
  what = "PolicySecret(endorsement)";
  rc = Esys_PolicySecret(ctx, ESYS_TR_RH_ENDORSEMENT, session, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                         NULL, NULL, 0, NULL, NULL);
  if (rc != TSS2_RC_SUCCESS) goto done;
  what = "ActivateCredential";
  rc = Esys_ActivateCredential(ctx, ak, ek_tr, ESYS_TR_PASSWORD, session, ESYS_TR_NONE, &credential, &secret,
                               &cert_info);
done:
  if (session != ESYS_TR_NONE) Esys_FlushContext(ctx, session);
  if (rc != TSS2_RC_SUCCESS) {
    tpm_fail(a, id, what, rc);
    return;
  }
  jl_begin(a, 1, id, 1);
  jl_add_b64(a, "cert_info", cert_info->buffer, cert_info->size);
  Esys_Free(cert_info);
}

/* The quote's arguments from a request: nonce (1..64 bytes) and a sha256 PCR selection. */
static int quote_args(const jl_request *req, jl_answer *a, uint64_t id, TPM2B_DATA *nonce, TPML_PCR_SELECTION *sel,
                      int nonce_required) {
  memset(nonce, 0, sizeof *nonce);
  memset(sel, 0, sizeof *sel);
  if (nonce_required || jl_get(req, "nonce")) {
    long n = b64_field(req, "nonce", nonce->buffer, 1, 64, a, id);
    if (n < 0) return -1;
    nonce->size = (UINT16)n;
  } else {
    nonce->size = 32;
  }
  sel->count = 1;
  sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
  sel->pcrSelections[0].sizeofSelect = 3;
  const jl_field *pcrs = jl_get(req, "pcrs");
  if (!pcrs || pcrs->type == JL_NULL) {
    sel->pcrSelections[0].pcrSelect[0] = 0xFF; /* PCRs 0..7 */
    return 0;
  }
  if (pcrs->type != JL_ARRAY || pcrs->count == 0) {
    request_fail(a, id, "pcrs must be a non-empty array of PCR numbers 0..23");
    return -1;
  }
  for (size_t i = 0; i < pcrs->count; i++) {
    if (pcrs->items[i] > 23) {
      request_fail(a, id, "pcrs must be a non-empty array of PCR numbers 0..23");
      return -1;
    }
    sel->pcrSelections[0].pcrSelect[pcrs->items[i] / 8] |= (BYTE)(1u << (pcrs->items[i] % 8));
  }
  return 0;
}

static void op_quote(const jl_request *req, jl_answer *a, uint64_t id) {
  TPM2B_DATA nonce;
  TPML_PCR_SELECTION sel;
  if (quote_args(req, a, id, &nonce, &sel, 1) < 0) return;
  TPM2_HANDLE handle;
  ESYS_TR ak;
  if (find_ak(req, a, id, &handle, &ak) < 0) return;
  TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
  TPM2B_ATTEST *attest = NULL;
  TPMT_SIGNATURE *sig = NULL;
  TSS2_RC rc = Esys_Quote(ctx, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &nonce, &scheme, &sel, &attest, &sig);
  if (rc != TSS2_RC_SUCCESS) {
    tpm_fail(a, id, "Quote", rc);
    return;
  }
  uint8_t buf[sizeof(TPMT_SIGNATURE)];
  size_t off = 0;
  if (Tss2_MU_TPMT_SIGNATURE_Marshal(sig, buf, sizeof buf, &off) != TSS2_RC_SUCCESS) {
    jl_error(a, 1, id, "internal", 0, 0, "cannot marshal the signature");
  } else {
    jl_begin(a, 1, id, 1);
    jl_add_b64(a, "attest", attest->attestationData, attest->size);
    jl_add_b64(a, "signature", buf, off);
  }
  Esys_Free(attest);
  Esys_Free(sig);
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

/* The same percentile as bench/stats.ts: the ceil(p% * n)-th smallest sample. */
static double percentile(const double *sorted, size_t n, double p) {
  size_t idx = (size_t)(p / 100.0 * (double)n + 0.999999999);
  if (idx < 1) idx = 1;
  if (idx > n) idx = n;
  return sorted[idx - 1];
}

static void op_raw_quote_bench(const jl_request *req, jl_answer *a, uint64_t id) {
  uint64_t count = 0;
  if (jl_get_uint(req, "count", 100000, &count) != 1 || count == 0) {
    request_fail(a, id, "count must be an integer 1..100000");
    return;
  }
  TPM2B_DATA nonce;
  TPML_PCR_SELECTION sel;
  if (quote_args(req, a, id, &nonce, &sel, 0) < 0) return;
  TPM2_HANDLE handle;
  ESYS_TR ak;
  if (find_ak(req, a, id, &handle, &ak) < 0) return;
  double *us = malloc(count * sizeof *us);
  if (!us) {
    jl_error(a, 1, id, "internal", 0, 0, "out of memory");
    return;
  }
  TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
  for (uint64_t i = 0; i < count; i++) {
    struct timespec t0, t1;
    TPM2B_ATTEST *attest = NULL;
    TPMT_SIGNATURE *sig = NULL;
    nonce.buffer[0] = (BYTE)i;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    TSS2_RC rc = Esys_Quote(ctx, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &nonce, &scheme, &sel, &attest, &sig);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    Esys_Free(attest);
    Esys_Free(sig);
    if (rc != TSS2_RC_SUCCESS) {
      free(us);
      tpm_fail(a, id, "Quote", rc);
      return;
    }
    us[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
  }
  qsort(us, count, sizeof *us, cmp_double);
  jl_begin(a, 1, id, 1);
  jl_add_double(a, "median_us", percentile(us, count, 50));
  jl_add_double(a, "p90_us", percentile(us, count, 90));
  jl_add_uint(a, "count", count);
  free(us);
}

static const char *const ops[] = {"info", "ek", "create_ak", "load_ak", "activate", "quote", "raw_quote_bench"};

int tpm_knows(const char *op) {
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(ops[i], op) == 0) return 1;
  return 0;
}

void tpm_dispatch(const char *op, const jl_request *req, uint64_t id, jl_answer *a) {
  TSS2_RC rc = ensure_context();
  if (rc != TSS2_RC_SUCCESS) {
    char msg[1024];
    snprintf(msg, sizeof msg, "No TPM at %s: %s (0x%x)", tcti_conf, Tss2_RC_Decode(rc), rc);
    jl_error(a, 1, id, "tpm", 1, rc, msg);
    return;
  }
  if (strcmp(op, "info") == 0)
    op_info(a, id);
  else if (strcmp(op, "ek") == 0)
    op_ek(a, id);
  else if (strcmp(op, "create_ak") == 0)
    op_create_ak(req, a, id);
  else if (strcmp(op, "load_ak") == 0)
    op_load_ak(req, a, id);
  else if (strcmp(op, "activate") == 0)
    op_activate(req, a, id);
  else if (strcmp(op, "quote") == 0)
    op_quote(req, a, id);
  else if (strcmp(op, "raw_quote_bench") == 0)
    op_raw_quote_bench(req, a, id);
}
