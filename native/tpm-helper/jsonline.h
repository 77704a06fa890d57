/* JSON lines for keyport-tpm-helper: a parser for exactly the flat request objects the helper accepts
 * (string, number, bool and null values, and arrays of small non-negative integers), an answer writer,
 * and standard base64. No allocation beyond the caller's buffers. */
#ifndef KEYPORT_JSONLINE_H
#define KEYPORT_JSONLINE_H

#include <stddef.h>
#include <stdint.h>

#define JL_MAX_LINE (64 * 1024)
#define JL_MAX_FIELDS 16
#define JL_MAX_KEY 32
#define JL_MAX_ARRAY 32

typedef enum { JL_STRING, JL_NUMBER, JL_BOOL, JL_NULL, JL_ARRAY } jl_type;

typedef struct {
  char key[JL_MAX_KEY];
  jl_type type;
  const char *str; /* JL_STRING: decoded, NUL-terminated, inside the request's pool */
  size_t str_len;
  double num;
  int boolean;
  uint32_t items[JL_MAX_ARRAY]; /* JL_ARRAY: integers 0..2^32-1 */
  size_t count;
} jl_field;

typedef struct {
  jl_field fields[JL_MAX_FIELDS];
  size_t n;
  char pool[JL_MAX_LINE + 1]; /* decoded strings; never longer than the line they came from */
  size_t pool_used;
} jl_request;

/* Parses one line (without its newline). Returns 0, or -1 with a message in err. */
int jl_parse(const char *line, size_t len, jl_request *req, char *err, size_t err_len);

const jl_field *jl_get(const jl_request *req, const char *key);

/* An integer field: 0 when absent (value untouched), 1 when present and valid, -1 when wrong. */
int jl_get_uint(const jl_request *req, const char *key, uint64_t max, uint64_t *value);

/* Standard base64 with padding. out must hold ((len + 2) / 3) * 4 + 1 bytes. */
size_t b64_encode(const uint8_t *in, size_t len, char *out);
/* Returns the decoded length, or -1 on bad input or when it would not fit in out_cap. */
long b64_decode(const char *in, size_t len, uint8_t *out, size_t out_cap);

/* The answer being written: fields are appended, then jl_send writes it as one line and flushes. */
typedef struct {
  char *buf;
  size_t len;
  size_t cap;
  int failed;
} jl_answer;

void jl_begin(jl_answer *a, int has_id, uint64_t id, int ok);
void jl_add_string(jl_answer *a, const char *key, const char *value);
void jl_add_uint(jl_answer *a, const char *key, uint64_t value);
void jl_add_double(jl_answer *a, const char *key, double value);
void jl_add_b64(jl_answer *a, const char *key, const uint8_t *bytes, size_t len);
/* {"id":N,"ok":false,"error":{"kind":K,"rc":RC?,"message":M}} in one call. */
void jl_error(jl_answer *a, int has_id, uint64_t id, const char *kind, int has_rc, uint32_t rc,
              const char *message);
int jl_send(jl_answer *a);
void jl_free(jl_answer *a);

#endif
