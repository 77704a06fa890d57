/* See jsonline.h. The parser accepts one JSON object per line whose values are flat; anything else
 * is refused with a message, never guessed at. */
#include "jsonline.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *p;
  const char *end;
  jl_request *req;
  char *err;
  size_t err_len;
} parser;

static int fail(parser *ps, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ps->err, ps->err_len, fmt, ap);
  va_end(ap);
  return -1;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n')) ps->p++;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int read_hex4(parser *ps, unsigned *out) {
  if (ps->end - ps->p < 4) return fail(ps, "truncated \\u escape");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(ps->p[i]);
    if (d < 0) return fail(ps, "bad \\u escape");
    v = (v << 4) | (unsigned)d;
  }
  ps->p += 4;
  *out = v;
  return 0;
}

/* A string into the pool (or into dst/dst_cap for keys). The pool cannot overflow: a decoded string
 * is never longer than its source text, and the pool is as large as the longest line. */
static int parse_string(parser *ps, char *dst, size_t dst_cap, size_t *out_len) {
  if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a string");
  ps->p++;
  size_t n = 0;
#define PUT(ch)                                                          \
  do {                                                                   \
    if (n + 1 >= dst_cap) return fail(ps, "string too long");            \
    dst[n++] = (char)(ch);                                               \
  } while (0)
  for (;;) {
    if (ps->p >= ps->end) return fail(ps, "unterminated string");
    unsigned char c = (unsigned char)*ps->p++;
    if (c == '"') break;
    if (c < 0x20) return fail(ps, "control character in a string");
    if (c != '\\') {
      PUT(c);
      continue;
    }
    if (ps->p >= ps->end) return fail(ps, "unterminated escape");
    char e = *ps->p++;
    switch (e) {
      case '"': PUT('"'); break;
      case '\\': PUT('\\'); break;
      case '/': PUT('/'); break;
      case 'b': PUT('\b'); break;
      case 'f': PUT('\f'); break;
      case 'n': PUT('\n'); break;
      case 'r': PUT('\r'); break;
      case 't': PUT('\t'); break;
      case 'u': {
        unsigned cp;
        if (read_hex4(ps, &cp) < 0) return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned lo;
          if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') return fail(ps, "lone surrogate");
          ps->p += 2;
          if (read_hex4(ps, &lo) < 0) return -1;
          if (lo < 0xDC00 || lo > 0xDFFF) return fail(ps, "lone surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return fail(ps, "lone surrogate");
        }
        if (cp == 0) return fail(ps, "NUL in a string");
        if (cp < 0x80) {
          PUT(cp);
        } else if (cp < 0x800) {
          PUT(0xC0 | (cp >> 6));
          PUT(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
          PUT(0xE0 | (cp >> 12));
          PUT(0x80 | ((cp >> 6) & 0x3F));
          PUT(0x80 | (cp & 0x3F));
        } else {
          PUT(0xF0 | (cp >> 18));
          PUT(0x80 | ((cp >> 12) & 0x3F));
          PUT(0x80 | ((cp >> 6) & 0x3F));
          PUT(0x80 | (cp & 0x3F));
        }
        break;
      }
      default: return fail(ps, "bad escape");
    }
  }
#undef PUT
  dst[n] = '\0';
  *out_len = n;
  return 0;
}

static int parse_number(parser *ps, double *out) {
  const char *start = ps->p;
  if (ps->p < ps->end && *ps->p == '-') ps->p++;
  if (ps->p >= ps->end) return fail(ps, "bad number");
  if (*ps->p == '0') {
    ps->p++;
  } else if (*ps->p >= '1' && *ps->p <= '9') {
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  } else {
    return fail(ps, "bad number");
  }
  if (ps->p < ps->end && *ps->p == '.') {
    ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return fail(ps, "bad number");
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return fail(ps, "bad number");
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  }
  size_t n = (size_t)(ps->p - start);
  char tmp[64];
  if (n >= sizeof tmp) return fail(ps, "number too long");
  memcpy(tmp, start, n);
  tmp[n] = '\0';
  *out = strtod(tmp, NULL);
  if (!isfinite(*out)) return fail(ps, "number out of range");
  return 0;
}

static int literal(parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return fail(ps, "unexpected value");
  ps->p += n;
  return 0;
}

static int parse_value(parser *ps, jl_field *f) {
  if (ps->p >= ps->end) return fail(ps, "missing value");
  char c = *ps->p;
  if (c == '"') {
    jl_request *r = ps->req;
    char *dst = r->pool + r->pool_used;
    size_t len;
    if (parse_string(ps, dst, sizeof r->pool - r->pool_used, &len) < 0) return -1;
    r->pool_used += len + 1;
    f->type = JL_STRING;
    f->str = dst;
    f->str_len = len;
    return 0;
  }
  if (c == 't') {
    f->type = JL_BOOL;
    f->boolean = 1;
    return literal(ps, "true");
  }
  if (c == 'f') {
    f->type = JL_BOOL;
    f->boolean = 0;
    return literal(ps, "false");
  }
  if (c == 'n') {
    f->type = JL_NULL;
    return literal(ps, "null");
  }
  if (c == '[') {
    ps->p++;
    f->type = JL_ARRAY;
    f->count = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
      ps->p++;
      return 0;
    }
    for (;;) {
      skip_ws(ps);
      double v;
      if (parse_number(ps, &v) < 0) return fail(ps, "arrays hold integers only");
      if (v < 0 || v > 4294967295.0 || v != floor(v)) return fail(ps, "array item out of range");
      if (f->count >= JL_MAX_ARRAY) return fail(ps, "array too long");
      f->items[f->count++] = (uint32_t)v;
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        continue;
      }
      if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return 0;
      }
      return fail(ps, "expected , or ] in an array");
    }
  }
  if (c == '{') return fail(ps, "nested objects are not accepted");
  f->type = JL_NUMBER;
  return parse_number(ps, &f->num);
}

int jl_parse(const char *line, size_t len, jl_request *req, char *err, size_t err_len) {
  parser ps = {line, line + len, req, err, err_len};
  req->n = 0;
  req->pool_used = 0;
  if (len > JL_MAX_LINE) return fail(&ps, "line too long");
  if (memchr(line, '\0', len)) return fail(&ps, "NUL in the line");
  skip_ws(&ps);
  if (ps.p >= ps.end || *ps.p != '{') return fail(&ps, "expected an object");
  ps.p++;
  skip_ws(&ps);
  if (ps.p < ps.end && *ps.p == '}') {
    ps.p++;
  } else {
    for (;;) {
      skip_ws(&ps);
      if (req->n >= JL_MAX_FIELDS) return fail(&ps, "too many fields");
      jl_field *f = &req->fields[req->n];
      memset(f, 0, sizeof *f);
      size_t klen;
      if (parse_string(&ps, f->key, sizeof f->key, &klen) < 0) return -1;
      if (jl_get(req, f->key)) return fail(&ps, "duplicate field \"%s\"", f->key);
      skip_ws(&ps);
      if (ps.p >= ps.end || *ps.p != ':') return fail(&ps, "expected :");
      ps.p++;
      skip_ws(&ps);
      if (parse_value(&ps, f) < 0) return -1;
      req->n++;
      skip_ws(&ps);
      if (ps.p < ps.end && *ps.p == ',') {
        ps.p++;
        continue;
      }
      if (ps.p < ps.end && *ps.p == '}') {
        ps.p++;
        break;
      }
      return fail(&ps, "expected , or }");
    }
  }
  skip_ws(&ps);
  if (ps.p != ps.end) return fail(&ps, "text after the object");
  return 0;
}

const jl_field *jl_get(const jl_request *req, const char *key) {
  for (size_t i = 0; i < req->n; i++)
    if (strcmp(req->fields[i].key, key) == 0) return &req->fields[i];
  return NULL;
}

int jl_get_uint(const jl_request *req, const char *key, uint64_t max, uint64_t *value) {
  const jl_field *f = jl_get(req, key);
  if (!f || f->type == JL_NULL) return 0;
  if (f->type != JL_NUMBER || f->num < 0 || f->num != floor(f->num) || f->num > (double)max) return -1;
  *value = (uint64_t)f->num;
  return 1;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64_encode(const uint8_t *in, size_t len, char *out) {
  size_t o = 0, i = 0;
  for (; i + 2 < len; i += 3) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = B64[(v >> 6) & 63];
    out[o++] = B64[v & 63];
  }
  if (i < len) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = i + 1 < len ? B64[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  out[o] = '\0';
  return o;
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

long b64_decode(const char *in, size_t len, uint8_t *out, size_t out_cap) {
  if (len % 4 != 0) return -1;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    int last = i + 4 == len;
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      char c = in[i + k];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        pad++;
        continue;
      }
      if (pad) return -1; /* data after padding */
      v[k] = b64_value(c);
      if (v[k] < 0) return -1;
    }
    uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) | (uint32_t)v[3];
    size_t take = 3 - (size_t)pad;
    /* Canonical form only: the bits that padding drops must be zero. */
    if (pad == 1 && (w & 0xFF)) return -1;
    if (pad == 2 && (w & 0xFFFF)) return -1;
    if (o + take > out_cap) return -1;
    out[o++] = (uint8_t)(w >> 16);
    if (take > 1) out[o++] = (uint8_t)(w >> 8);
    if (take > 2) out[o++] = (uint8_t)w;
  }
  return (long)o;
}

static void put(jl_answer *a, const char *s, size_t n) {
  if (a->failed) return;
  if (a->len + n + 2 > a->cap) {
    size_t cap = a->cap ? a->cap : 1024;
    while (a->len + n + 2 > cap) cap *= 2;
    char *b = realloc(a->buf, cap);
    if (!b) {
      a->failed = 1;
      return;
    }
    a->buf = b;
    a->cap = cap;
  }
  memcpy(a->buf + a->len, s, n);
  a->len += n;
}

static void puts_(jl_answer *a, const char *s) { put(a, s, strlen(s)); }

static void put_json_string(jl_answer *a, const char *s) {
  puts_(a, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*p;
      put(a, esc, 2);
    } else if (*p < 0x20 || *p >= 0x7f) {
      /* ASCII only out: TPM strings are ASCII, and anything else is shown escaped, byte by byte. */
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      puts_(a, esc);
    } else {
      put(a, (const char *)p, 1);
    }
  }
  puts_(a, "\"");
}

static void key(jl_answer *a, const char *k) {
  puts_(a, ",");
  put_json_string(a, k);
  puts_(a, ":");
}

void jl_begin(jl_answer *a, int has_id, uint64_t id, int ok) {
  a->len = 0;
  a->failed = 0;
  char tmp[48];
  if (has_id)
    snprintf(tmp, sizeof tmp, "{\"id\":%llu", (unsigned long long)id);
  else
    snprintf(tmp, sizeof tmp, "{\"id\":null");
  puts_(a, tmp);
  puts_(a, ok ? ",\"ok\":true" : ",\"ok\":false");
}

void jl_add_string(jl_answer *a, const char *k, const char *value) {
  key(a, k);
  put_json_string(a, value);
}

void jl_add_uint(jl_answer *a, const char *k, uint64_t value) {
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)value);
  key(a, k);
  puts_(a, tmp);
}

void jl_add_double(jl_answer *a, const char *k, double value) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%.3f", isfinite(value) ? value : 0.0);
  key(a, k);
  puts_(a, tmp);
}

void jl_add_b64(jl_answer *a, const char *k, const uint8_t *bytes, size_t len) {
  char *tmp = malloc(((len + 2) / 3) * 4 + 1);
  if (!tmp) {
    a->failed = 1;
    return;
  }
  size_t n = b64_encode(bytes, len, tmp);
  key(a, k);
  puts_(a, "\"");
  put(a, tmp, n);
  puts_(a, "\"");
  free(tmp);
}

void jl_error(jl_answer *a, int has_id, uint64_t id, const char *kind, int has_rc, uint32_t rc,
              const char *message) {
  jl_begin(a, has_id, id, 0);
  puts_(a, ",\"error\":{\"kind\":");
  put_json_string(a, kind);
  if (has_rc) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, ",\"rc\":%u", rc);
    puts_(a, tmp);
  }
  puts_(a, ",\"message\":");
  put_json_string(a, message);
  puts_(a, "}");
}

int jl_send(jl_answer *a) {
  puts_(a, "}\n");
  if (a->failed) {
    static const char oom[] = "{\"id\":null,\"ok\":false,\"error\":{\"kind\":\"internal\",\"message\":\"out of memory\"}}\n";
    fwrite(oom, 1, sizeof oom - 1, stdout);
  } else {
    fwrite(a->buf, 1, a->len, stdout);
  }
  return fflush(stdout) == 0 ? 0 : -1;
}

void jl_free(jl_answer *a) {
  free(a->buf);
  a->buf = NULL;
  a->cap = a->len = 0;
}
