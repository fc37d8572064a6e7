/* HelmRelease watch lines and list pages read in one pass, in C: fluxwatch's native wire
 * reader.
 *
 * helmrelease.py's wire reader (msgspec's typed decode, then _from_wire) cost about
 * 70,000 instructions a watch event, two thirds of what fluxwatch spent on one; at the
 * rate a cluster of 10,000 releases can send them that is most of a core. This module does
 * the same work for the shapes the API server sends every day: it scans the line once,
 * keeps only the spans of the fields a view reads, and builds the very HRView
 * _from_wire builds, sharing what did not change with the object's previous view as
 * _from_wire does (about 29,000 instructions; README, "Performance"). A list page's items
 * are read the same way, each as it is scanned.
 *
 * It takes a line or a page whole or not at all. Anything it is not sure to read exactly
 * as the Python reader does, it leaves to it ("defers"): an escape or a non-ASCII byte in
 * a declared string, a time other than metav1.Time's "YYYY-MM-DDTHH:MM:SSZ", an integer
 * of more than 18 digits, a declared key given twice, a release name to shorten, a field
 * of another JSON type, any JSON it does not judge valid, nesting deeper than MAX_DEPTH.
 * A label set or dependsOn list it has not seen it reads with the Python reader's own
 * readers, as _from_wire does. So the Python reader stays the one that defines a view and
 * names what is wrong; this one is a faster way to the same result, and tests hold the
 * two to it on generated and mutated lines and pages (tests/unit/test_hrwire_native.py),
 * also under AddressSanitizer and UBSan (tests/unit/test_hrwire_asan.py).
 *
 * helmrelease.py hands it, once, what a view is made of (configure()): the view types,
 * the canonical strings, the caches and their readers, and the Python readers as the
 * fallbacks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define DEFER 1
#define MAX_DEPTH 512
#define MAX_INT_DIGITS 18
#define MAX_RELEASE_NAME 53
#define INTERN_MESSAGE_MAX 64

/* ------------------------------------------------------------------ configuration */

static PyObject *HRView_t, *Condition_t, *Snapshot_t;
static PyObject *EMPTY_LABELS, *LABEL_BYTES, *DEPENDENCY_BYTES, *FALLBACK, *NO_VIEWS;
/* The Python reader's own readers of a label set and a dependsOn list it has not seen. */
static PyObject *LABELS_READER, *DEPENDENCIES_READER;
/* List pages: the page type, and the Python reader of a page this one leaves. */
static PyObject *Page_t, *PAGE_FALLBACK;
static PyObject *S_TRUE, *S_FALSE, *S_UNKNOWN, *S_EMPTY;
static PyObject *C_READY, *C_RELEASED, *C_RECONCILING, *C_STALLED;
static PyObject *E_ADDED, *E_MODIFIED, *E_DELETED;

/* Offsets of the struct fields read from a previous view (msgspec fields are slots). */
enum {
    V_NAMESPACE, V_NAME, V_RELEASE_NAME, V_READY, V_RECONCILING, V_RELEASED, V_STALLED,
    V_LAST_RELEASE, V_TARGET, V_STORAGE, V_ACTION, V_COUNT
};
static const char *V_NAMES[V_COUNT] = {
    "namespace", "name", "release_name", "ready", "reconciling", "released", "stalled",
    "last_release", "target_namespace", "storage_namespace", "last_attempted_release_action",
};
static Py_ssize_t V_OFF[V_COUNT];

enum { C_STATUS, C_LAST_TRANSITION, C_OBSERVED, C_REASON, C_MESSAGE, C_COUNT };
static const char *C_NAMES[C_COUNT] = {
    "status", "last_transition", "observed_generation", "reason", "message",
};
static Py_ssize_t C_OFF[C_COUNT];

enum { S_NAME, S_NAMESPACE, S_VERSION, S_STATUS, S_ACTION, S_CHART, S_CHART_VERSION, S_COUNT };
static const char *S_NAMES[S_COUNT] = {
    "name", "namespace", "version", "status", "action", "chart_name", "chart_version",
};
static Py_ssize_t S_OFF[S_COUNT];

static int configured = 0;

#define FIELD(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* ------------------------------------------------------------------ scanning */

typedef struct {
    const char *p;
    const char *end;
} Cur;

enum { K_ABSENT = 0, K_NULL, K_STR, K_INT, K_TRUE, K_FALSE, K_RAW };

typedef struct {
    int kind;
    int plain;    /* a string with neither escapes nor non-ASCII bytes */
    int nonascii; /* a string with a byte over 0x7F: UTF-8 that msgspec would check */
    const char *s;
    Py_ssize_t n;
    long long i;
} Val;

/* 1 for the bytes that end the quick run through a string: '"', '\\', controls, non-ASCII. */
static unsigned char STOP[256];


/* Whitespace between tokens; the API server sends none, so the first test usually ends it. */
static inline void ws(Cur *c) {
    while (c->p < c->end && (unsigned char)*c->p <= ' ') {
        char ch = *c->p;
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
            c->p++;
        else
            return;
    }
}

static inline int hexval(unsigned char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* The first byte at or after p that ends a quick scan through a string: '"', '\\', a control
 * character or a non-ASCII byte. Sixteen bytes a step with SSE2 (every x86-64 has it): as
 * signed bytes, controls and non-ASCII bytes are exactly those below 0x20. Elsewhere eight
 * bytes a step in a 64-bit word (SWAR: each test sets a byte's high bit, and a borrow can
 * only set one after the first true hit), then a byte at a time. */
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
#define SWAR 1
static inline uint64_t stop_bits(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t hits = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x;
    return hits & highs;
}
#endif

static inline __attribute__((always_inline)) const unsigned char *run(const unsigned char *p,
                                                                      const unsigned char *end) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (p + 16 <= end) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                _mm_cmpeq_epi8(x, backslash)),
                                   _mm_cmplt_epi8(x, space));
        int mask = _mm_movemask_epi8(hit);
        if (mask)
            return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
#ifdef SWAR
    while (p + 8 <= end) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t bits = stop_bits(x);
        if (bits)
            return p + (__builtin_ctzll(bits) >> 3);
        p += 8;
    }
#endif
    while (p < end && !STOP[*p])
        p++;
    return p;
}

/* One escape at p ('\\'): the byte after it, or NULL where the Python reader must judge. A
 * \u escape of a UTF-16 surrogate defers (msgspec refuses a lone one). */
static const unsigned char *escape(const unsigned char *p, const unsigned char *end) {
    if (p + 1 >= end)
        return NULL;
    unsigned char ch = p[1];
    if (ch == 'u') {
        if (p + 6 > end)
            return NULL;
        int code = 0;
        for (int k = 2; k < 6; k++) {
            int h = hexval(p[k]);
            if (h < 0)
                return NULL;
            code = code * 16 + h;
        }
        if (code >= 0xD800 && code <= 0xDFFF)
            return NULL;
        return p + 6;
    }
    if (ch == '"' || ch == '\\' || ch == '/' || ch == 'b' || ch == 'f' || ch == 'n' ||
        ch == 'r' || ch == 't')
        return p + 2;
    return NULL;
}

/* A string at p ('"'): the byte after its closing quote, or NULL. *flags gets ESCAPED for
 * an escape (checked, not decoded) and NONASCII for a byte over 0x7F (not checked). */
#define ESCAPED 1
#define NONASCII 2
static inline __attribute__((always_inline)) const unsigned char *string_end(const unsigned char *p, const unsigned char *end,
                                              int *flags) {
    p++;
    for (;;) {
        p = run(p, end);
        if (p >= end)
            return NULL;
        unsigned char ch = *p;
        if (ch == '"')
            return p + 1;
        if (ch < 0x20)
            return NULL; /* a raw control character: no JSON */
        if (ch >= 0x80) {
            *flags |= NONASCII;
            p++;
            continue;
        }
        *flags |= ESCAPED;
        p = escape(p, end);
        if (p == NULL)
            return NULL;
    }
}

/* A string at c->p ('"'): its span inside the quotes. */
static int scan_string(Cur *c, Val *out) {
    const unsigned char *start = (const unsigned char *)c->p + 1;
    int flags = 0;
    const unsigned char *after = string_end((const unsigned char *)c->p,
                                            (const unsigned char *)c->end, &flags);
    if (after == NULL)
        return DEFER;
    out->kind = K_STR;
    out->plain = flags == 0;
    out->nonascii = (flags & NONASCII) != 0;
    out->s = (const char *)start;
    out->n = (Py_ssize_t)(after - 1 - start);
    c->p = (const char *)after;
    return 0;
}

static int skip_value(Cur *c, int depth);
static int skip_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth);

static int skip_number(Cur *c) {
    const char *p = c->p, *end = c->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return DEFER;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return DEFER;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return DEFER;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return DEFER;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    c->p = p;
    return 0;
}

static int literal(Cur *c, const char *word, Py_ssize_t n) {
    if (c->end - c->p < n || memcmp(c->p, word, (size_t)n) != 0)
        return DEFER;
    c->p += n;
    return 0;
}

/* After a member or an item: 1 for a ',' (another follows), 0 for the closing bracket, -1
 * for anything else. */
static inline int next_member(Cur *c, char close) {
    ws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == ',') {
        c->p++;
        ws(c);
        return 1;
    }
    if (*c->p == close) {
        c->p++;
        return 0;
    }
    return -1;
}

/* Object members, one callback per key; the callback reads or skips the value. */
typedef int (*member_fn)(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth);

static inline __attribute__((always_inline)) int parse_object(Cur *c, int depth, member_fn fn,
                                                           void *ctx) {
    if (depth > MAX_DEPTH)
        return DEFER;
    c->p++; /* '{' */
    ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        if (c->p >= c->end || *c->p != '"')
            return DEFER;
        Val key;
        if (scan_string(c, &key))
            return DEFER;
        /* An escaped key of a struct may decode to a declared name: leave it to the Python
         * reader. Skipped objects' keys need no decoding (managedFields' "v:\"...\"" keys). */
        if (fn != skip_member && !key.plain && memchr(key.s, '\\', (size_t)key.n) != NULL)
            return DEFER;
        ws(c);
        if (c->p >= c->end || *c->p != ':')
            return DEFER;
        c->p++;
        ws(c);
        if (c->p >= c->end)
            return DEFER;
        if (fn(c, key.s, key.n, ctx, depth + 1))
            return DEFER;
        int more = next_member(c, '}');
        if (more <= 0)
            return more < 0 ? DEFER : 0;
    }
}

static int skip_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    (void)key, (void)n, (void)ctx;
    return skip_value(c, depth);
}

/* Array items, one callback per item. */
typedef int (*item_fn)(Cur *c, Py_ssize_t index, void *ctx, int depth);

static inline __attribute__((always_inline)) int parse_array(Cur *c, int depth, item_fn fn,
                                                          void *ctx) {
    if (depth > MAX_DEPTH)
        return DEFER;
    c->p++; /* '[' */
    ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for (Py_ssize_t i = 0;; i++) {
        if (c->p >= c->end)
            return DEFER;
        if (fn(c, i, ctx, depth + 1))
            return DEFER;
        int more = next_member(c, ']');
        if (more <= 0)
            return more < 0 ? DEFER : 0;
    }
}

/* Any JSON value at c->p, checked and passed over without a call per token: containers
 * are followed with a stack of their kinds, not by recursion. */
static int skip_value(Cur *c, int depth) {
    const unsigned char *p = (const unsigned char *)c->p, *end = (const unsigned char *)c->end;
    char stack[MAX_DEPTH + 1]; /* 1 for an object, 0 for an array */
    int top = 0;
    int flags; /* a skipped string's bytes are not decoded: msgspec checks no UTF-8 there */
#define WS()                                                                        \
    while (p < end && *p <= ' ' && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) \
        p++
value:
    if (p >= end)
        return DEFER;
    switch (*p) {
    case '"':
        p = string_end(p, end, &flags);
        if (p == NULL)
            return DEFER;
        goto after;
    case '{':
    case '[': {
        char object = *p == '{';
        if (depth + top >= MAX_DEPTH)
            return DEFER;
        stack[top++] = object;
        p++;
        WS();
        if (p < end && *p == (object ? '}' : ']')) {
            p++;
            top--;
            goto after;
        }
        if (object)
            goto key;
        goto value;
    }
    case 't':
    case 'f':
    case 'n': {
        Cur word = {(const char *)p, (const char *)end};
        if (*p == 't' ? literal(&word, "true", 4)
                      : *p == 'f' ? literal(&word, "false", 5) : literal(&word, "null", 4))
            return DEFER;
        p = (const unsigned char *)word.p;
        goto after;
    }
    default: {
        Cur n = {(const char *)p, (const char *)end};
        if (skip_number(&n))
            return DEFER;
        p = (const unsigned char *)n.p;
        goto after;
    }
    }
key:
    if (p >= end || *p != '"')
        return DEFER;
    p = string_end(p, end, &flags);
    if (p == NULL)
        return DEFER;
    WS();
    if (p >= end || *p != ':')
        return DEFER;
    p++;
    WS();
    goto value;
after:
    if (top == 0) {
        c->p = (const char *)p;
        return 0;
    }
    WS();
    if (p >= end)
        return DEFER;
    if (*p == ',') {
        p++;
        WS();
        if (stack[top - 1])
            goto key;
        goto value;
    }
    if ((*p == '}' && stack[top - 1]) || (*p == ']' && !stack[top - 1])) {
        p++;
        top--;
        goto after;
    }
    return DEFER;
#undef WS
}

/* Typed reads of a declared field, as msgspec checks them. */

/* A declared ``str | None``. msgspec decodes every declared string, read or not, and a
 * byte over 0x7F may be invalid UTF-8 there (UnicodeDecodeError, the Python reader's None):
 * such a string is the Python reader's to judge. */
static int read_str_or_null(Cur *c, Val *out) {
    if (*c->p == '"')
        return scan_string(c, out) || out->nonascii ? DEFER : 0;
    if (*c->p == 'n' && literal(c, "null", 4) == 0) {
        out->kind = K_NULL;
        return 0;
    }
    return DEFER;
}

static int read_int_or_null(Cur *c, Val *out) {
    if (*c->p == 'n') {
        if (literal(c, "null", 4))
            return DEFER;
        out->kind = K_NULL;
        return 0;
    }
    const char *p = c->p, *end = c->end;
    int negative = 0;
    if (*p == '-') {
        negative = 1;
        p++;
    }
    const char *digits = p;
    long long value = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - digits == MAX_INT_DIGITS)
            return DEFER; /* before it could overflow: the Python reader takes big ints */
        value = value * 10 + (*p - '0');
        p++;
    }
    if (p == digits || (*digits == '0' && p - digits > 1))
        return DEFER;
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
        return DEFER; /* a float where an integer is declared */
    out->kind = K_INT;
    out->i = negative ? -value : value;
    c->p = p;
    return 0;
}

static int read_bool_or_null(Cur *c, Val *out) {
    if (*c->p == 't' && literal(c, "true", 4) == 0) {
        out->kind = K_TRUE;
        return 0;
    }
    if (*c->p == 'f' && literal(c, "false", 5) == 0) {
        out->kind = K_FALSE;
        return 0;
    }
    if (*c->p == 'n' && literal(c, "null", 4) == 0) {
        out->kind = K_NULL;
        return 0;
    }
    return DEFER;
}

/* Any JSON value, kept as its bytes (msgspec.Raw). */
static int read_raw(Cur *c, Val *out, int depth) {
    const char *start = c->p;
    if (skip_value(c, depth))
        return DEFER;
    out->kind = K_RAW;
    out->s = start;
    out->n = (Py_ssize_t)(c->p - start);
    return 0;
}

#define KEY(lit) (n == (Py_ssize_t)(sizeof(lit) - 1) && memcmp(key, lit, sizeof(lit) - 1) == 0)
/* A declared key seen twice: msgspec keeps the last, this reader leaves it to Python. */
#define ONCE(seen, bit)          \
    do {                         \
        if ((seen) & (bit))      \
            return DEFER;        \
        (seen) |= (bit);         \
    } while (0)

/* ------------------------------------------------------------------ the wire event */

typedef struct {
    unsigned seen;
    Val type, status, reason, message, observed, ltt;
} WCond;

typedef struct {
    unsigned seen;
    Val name, version, status, namespace, action, chart_name, chart_version;
} WSnap;

#define KEPT 4

typedef struct {
    unsigned seen, seen_object, seen_meta, seen_ann, seen_spec, seen_status;
    Val etype;
    int has_object, has_meta;
    Val name, namespace, uid, rv, generation, labels, deletion;
    Val ignore, suspended_at, requested_at, force_at;
    Val suspend, target_ns, release_name, spec_storage, kube_config, depends_on;
    Val observed, status_storage, handled_reconcile, handled_force, action, handled_reset;
    Val install_failures, upgrade_failures;
    int nkept;
    WCond kept[KEPT];
    PyObject *kept_type[KEPT];
    int nhistory;
    WSnap first;
} Wire;

static int cond_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    WCond *w = (WCond *)ctx;
    if (KEY("type")) { ONCE(w->seen, 1); return read_str_or_null(c, &w->type); }
    if (KEY("status")) { ONCE(w->seen, 2); return read_str_or_null(c, &w->status); }
    if (KEY("reason")) { ONCE(w->seen, 4); return read_str_or_null(c, &w->reason); }
    if (KEY("message")) { ONCE(w->seen, 8); return read_str_or_null(c, &w->message); }
    if (KEY("observedGeneration")) { ONCE(w->seen, 16); return read_int_or_null(c, &w->observed); }
    if (KEY("lastTransitionTime")) { ONCE(w->seen, 32); return read_str_or_null(c, &w->ltt); }
    return skip_value(c, depth);
}

static int span_is(const Val *v, const char *lit, Py_ssize_t n) {
    return v->kind == K_STR && v->plain && v->n == n && memcmp(v->s, lit, (size_t)n) == 0;
}

static int cond_item(Cur *c, Py_ssize_t i, void *ctx, int depth) {
    (void)i;
    Wire *wire = (Wire *)ctx;
    if (*c->p != '{')
        return DEFER;
    WCond w;
    memset(&w, 0, sizeof w);
    if (parse_object(c, depth, cond_member, &w))
        return DEFER;
    /* _from_wire gives up on any condition without a type. */
    if (w.type.kind != K_STR || w.type.n == 0 || !w.type.plain)
        return DEFER;
    PyObject *ctype = NULL;
    if (span_is(&w.type, "Ready", 5))
        ctype = C_READY;
    else if (span_is(&w.type, "Released", 8))
        ctype = C_RELEASED;
    else if (span_is(&w.type, "Reconciling", 11))
        ctype = C_RECONCILING;
    else if (span_is(&w.type, "Stalled", 7))
        ctype = C_STALLED;
    if (ctype == NULL)
        return 0;
    for (int k = 0; k < wire->nkept; k++)
        if (wire->kept_type[k] == ctype)
            return 0; /* conditions are a list-map keyed by type: the first one counts */
    wire->kept[wire->nkept] = w;
    wire->kept_type[wire->nkept] = ctype;
    wire->nkept++;
    return 0;
}

static int snap_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    WSnap *w = (WSnap *)ctx;
    if (KEY("name")) { ONCE(w->seen, 1); return read_str_or_null(c, &w->name); }
    if (KEY("version")) { ONCE(w->seen, 2); return read_int_or_null(c, &w->version); }
    if (KEY("status")) { ONCE(w->seen, 4); return read_str_or_null(c, &w->status); }
    if (KEY("namespace")) { ONCE(w->seen, 8); return read_str_or_null(c, &w->namespace); }
    if (KEY("action")) { ONCE(w->seen, 16); return read_str_or_null(c, &w->action); }
    if (KEY("chartName")) { ONCE(w->seen, 32); return read_str_or_null(c, &w->chart_name); }
    if (KEY("chartVersion")) { ONCE(w->seen, 64); return read_str_or_null(c, &w->chart_version); }
    return skip_value(c, depth);
}

static int history_item(Cur *c, Py_ssize_t i, void *ctx, int depth) {
    Wire *wire = (Wire *)ctx;
    if (*c->p != '{')
        return DEFER;
    WSnap w;
    memset(&w, 0, sizeof w);
    if (parse_object(c, depth, snap_member, &w))
        return DEFER;
    if (i == 0)
        wire->first = w;
    wire->nhistory++;
    return 0;
}

static int ann_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    Wire *wire = (Wire *)ctx;
    if (KEY("fluxwatch.io/ignore")) { ONCE(wire->seen_ann, 1); return read_str_or_null(c, &wire->ignore); }
    if (KEY("fluxwatch.io/suspended-at")) { ONCE(wire->seen_ann, 2); return read_str_or_null(c, &wire->suspended_at); }
    if (KEY("reconcile.fluxcd.io/requestedAt")) { ONCE(wire->seen_ann, 4); return read_str_or_null(c, &wire->requested_at); }
    if (KEY("reconcile.fluxcd.io/forceAt")) { ONCE(wire->seen_ann, 8); return read_str_or_null(c, &wire->force_at); }
    return skip_value(c, depth);
}

static int meta_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    Wire *wire = (Wire *)ctx;
    if (KEY("name")) { ONCE(wire->seen_meta, 1); return read_str_or_null(c, &wire->name); }
    if (KEY("namespace")) { ONCE(wire->seen_meta, 2); return read_str_or_null(c, &wire->namespace); }
    if (KEY("uid")) { ONCE(wire->seen_meta, 4); return read_str_or_null(c, &wire->uid); }
    if (KEY("resourceVersion")) { ONCE(wire->seen_meta, 8); return read_str_or_null(c, &wire->rv); }
    if (KEY("generation")) { ONCE(wire->seen_meta, 16); return read_int_or_null(c, &wire->generation); }
    if (KEY("labels")) { ONCE(wire->seen_meta, 32); return read_raw(c, &wire->labels, depth); }
    if (KEY("annotations")) {
        ONCE(wire->seen_meta, 64);
        if (*c->p == '{')
            return parse_object(c, depth, ann_member, wire);
        return literal(c, "null", 4);
    }
    if (KEY("deletionTimestamp")) {
        ONCE(wire->seen_meta, 128);
        /* Declared Any: only null and a plain string are taken here. */
        return read_str_or_null(c, &wire->deletion);
    }
    return skip_value(c, depth);
}

static int spec_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    Wire *wire = (Wire *)ctx;
    if (KEY("suspend")) { ONCE(wire->seen_spec, 1); return read_bool_or_null(c, &wire->suspend); }
    if (KEY("targetNamespace")) { ONCE(wire->seen_spec, 2); return read_str_or_null(c, &wire->target_ns); }
    if (KEY("releaseName")) { ONCE(wire->seen_spec, 4); return read_str_or_null(c, &wire->release_name); }
    if (KEY("storageNamespace")) { ONCE(wire->seen_spec, 8); return read_str_or_null(c, &wire->spec_storage); }
    if (KEY("kubeConfig")) { ONCE(wire->seen_spec, 16); return read_raw(c, &wire->kube_config, depth); }
    if (KEY("dependsOn")) { ONCE(wire->seen_spec, 32); return read_raw(c, &wire->depends_on, depth); }
    return skip_value(c, depth);
}

static int status_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    Wire *wire = (Wire *)ctx;
    if (KEY("conditions")) {
        ONCE(wire->seen_status, 1);
        if (*c->p == '[')
            return parse_array(c, depth, cond_item, wire);
        return literal(c, "null", 4);
    }
    if (KEY("history")) {
        ONCE(wire->seen_status, 2);
        if (*c->p == '[')
            return parse_array(c, depth, history_item, wire);
        return literal(c, "null", 4);
    }
    if (KEY("observedGeneration")) { ONCE(wire->seen_status, 4); return read_int_or_null(c, &wire->observed); }
    if (KEY("storageNamespace")) { ONCE(wire->seen_status, 8); return read_str_or_null(c, &wire->status_storage); }
    if (KEY("lastHandledReconcileAt")) { ONCE(wire->seen_status, 16); return read_str_or_null(c, &wire->handled_reconcile); }
    if (KEY("lastHandledForceAt")) { ONCE(wire->seen_status, 32); return read_str_or_null(c, &wire->handled_force); }
    if (KEY("lastAttemptedReleaseAction")) { ONCE(wire->seen_status, 64); return read_str_or_null(c, &wire->action); }
    if (KEY("lastHandledResetAt")) { ONCE(wire->seen_status, 128); return read_str_or_null(c, &wire->handled_reset); }
    if (KEY("installFailures")) { ONCE(wire->seen_status, 256); return read_int_or_null(c, &wire->install_failures); }
    if (KEY("upgradeFailures")) { ONCE(wire->seen_status, 512); return read_int_or_null(c, &wire->upgrade_failures); }
    return skip_value(c, depth);
}

static int object_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    Wire *wire = (Wire *)ctx;
    if (KEY("metadata")) {
        ONCE(wire->seen_object, 1);
        if (*c->p == '{') {
            wire->has_meta = 1;
            return parse_object(c, depth, meta_member, wire);
        }
        return literal(c, "null", 4);
    }
    if (KEY("spec")) {
        ONCE(wire->seen_object, 2);
        if (*c->p == '{')
            return parse_object(c, depth, spec_member, wire);
        return literal(c, "null", 4);
    }
    if (KEY("status")) {
        ONCE(wire->seen_object, 4);
        if (*c->p == '{')
            return parse_object(c, depth, status_member, wire);
        return literal(c, "null", 4);
    }
    return skip_value(c, depth);
}

static int event_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    Wire *wire = (Wire *)ctx;
    if (KEY("type")) {
        ONCE(wire->seen, 1);
        if (*c->p != '"')
            return DEFER;
        return scan_string(c, &wire->etype);
    }
    if (KEY("object")) {
        ONCE(wire->seen, 2);
        if (*c->p != '{')
            return DEFER;
        wire->has_object = 1;
        return parse_object(c, depth, object_member, wire);
    }
    return skip_value(c, depth);
}

/* ------------------------------------------------------------------ building the view */

/* A new str of a plain span (ASCII: one byte a character). */
static PyObject *ascii(const char *s, Py_ssize_t n) {
    PyObject *u = PyUnicode_New(n, 127);
    if (u != NULL && n)
        memcpy(PyUnicode_1BYTE_DATA(u), s, (size_t)n);
    return u;
}

/* A declared ``str | None``: *out is a new reference or NULL for None; 1 defers, -1 errs. */
static int opt_str(const Val *v, PyObject **out) {
    *out = NULL;
    if (v->kind == K_ABSENT || v->kind == K_NULL)
        return 0;
    if (v->kind != K_STR || !v->plain)
        return DEFER;
    *out = ascii(v->s, v->n);
    return *out == NULL ? -1 : 0;
}

static inline int truthy_str(const Val *v) { return v->kind == K_STR && v->n > 0; }

/* ``value or ""`` of a plain declared string, a new reference. */
static PyObject *str_or_empty(const Val *v) {
    if (truthy_str(v))
        return ascii(v->s, v->n);
    Py_INCREF(S_EMPTY);
    return S_EMPTY;
}

/* str == span, for a str from a view (ASCII strs are always stored one byte a character). */
static int str_is_span(PyObject *s, const char *p, Py_ssize_t n) {
    if (!PyUnicode_Check(s) || !PyUnicode_IS_ASCII(s) || PyUnicode_GET_LENGTH(s) != n)
        return 0;
    return n == 0 || memcmp(PyUnicode_1BYTE_DATA(s), p, (size_t)n) == 0;
}

/* ``value or ""`` == s, for a declared optional string field. */
static int str_is_or_empty(PyObject *s, const Val *v) {
    if (v->kind == K_STR)
        return str_is_span(s, v->s, v->n);
    return str_is_span(s, "", 0);
}

static PyObject *interned(PyObject *s) {
    /* Takes a new reference; returns a new reference to the interned string. */
    if (s != NULL)
        PyUnicode_InternInPlace(&s);
    return s;
}

static PyObject *interned_span(const Val *v) {
    return interned(ascii(v->s, v->n));
}

/* ``_intern(value or "")`` of a plain declared string, a new reference. */
static PyObject *interned_or_empty(const Val *v) {
    if (v->kind == K_STR && v->n > 0)
        return interned_span(v);
    Py_INCREF(S_EMPTY);
    return S_EMPTY;
}

/* 1 if an int field of a view equals the wire's ``int | None``. */
static int int_matches(PyObject *have, const Val *v) {
    if (v->kind != K_INT)
        return have == Py_None;
    if (!PyLong_CheckExact(have))
        return 0;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(have, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    return x == v->i;
}

static PyObject *opt_int(const Val *v) {
    if (v->kind == K_INT)
        return PyLong_FromLongLong(v->i);
    Py_RETURN_NONE;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static long long days_from_civil(long long y, unsigned m, unsigned d) {
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static int two(const char *p) {
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* metav1.Time's own shape, "2026-11-26T10:00:00Z", to epoch seconds; 1 for anything else
 * (fractions, offsets, a leap second, an impossible date), which parse_rfc3339 reads. */
static int parse_time(const char *s, Py_ssize_t n, double *out) {
    static const unsigned char mdays[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != 'Z')
        return DEFER;
    int c = two(s), y2 = two(s + 2), mo = two(s + 5), d = two(s + 8);
    int h = two(s + 11), mi = two(s + 14), se = two(s + 17);
    if (c < 0 || y2 < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        se < 0 || se > 59)
        return DEFER;
    int year = c * 100 + y2;
    if (year < 1)
        return DEFER;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (d > mdays[mo] || (mo == 2 && d == 29 && !leap))
        return DEFER;
    long long days = days_from_civil(year, (unsigned)mo, (unsigned)d);
    *out = (double)(days * 86400 + h * 3600 + mi * 60 + se);
    return 0;
}

/* What one view's conditions share (_from_wire's ``messages`` and ``times``). */
typedef struct {
    int nmsg;
    PyObject *msg[KEPT * 2]; /* owned */
    int ntime;
    const char *time_at[KEPT];
    PyObject *time[KEPT]; /* owned */
} Shared;

/* messages.setdefault(m, m): a new reference to the first equal message seen. */
static PyObject *share_message(Shared *sh, PyObject *m) {
    for (int k = 0; k < sh->nmsg; k++) {
        PyObject *seen = sh->msg[k];
        if (seen == m)
            return m;
        int eq = PyUnicode_Compare(seen, m) == 0;
        if (eq) {
            Py_INCREF(seen);
            Py_DECREF(m);
            return seen;
        }
    }
    if (sh->nmsg < KEPT * 2) {
        Py_INCREF(m);
        sh->msg[sh->nmsg++] = m;
    }
    return m;
}

static void shared_clear(Shared *sh) {
    for (int k = 0; k < sh->nmsg; k++)
        Py_DECREF(sh->msg[k]);
    for (int k = 0; k < sh->ntime; k++)
        Py_DECREF(sh->time[k]);
    sh->nmsg = sh->ntime = 0;
}

/* _wire_condition: *out a new reference (the previous condition itself when unchanged). */
static int build_condition(const WCond *w, PyObject *ctype, Shared *sh, PyObject *was,
                           PyObject **out) {
    *out = NULL;
    PyObject *status;
    if (span_is(&w->status, "True", 4))
        status = S_TRUE;
    else if (span_is(&w->status, "False", 5))
        status = S_FALSE;
    else if (span_is(&w->status, "Unknown", 7))
        status = S_UNKNOWN;
    else
        return DEFER;
    PyObject *since = Py_None; /* borrowed: owned by sh */
    if (truthy_str(&w->ltt)) {
        if (!w->ltt.plain)
            return DEFER;
        since = NULL;
        for (int k = 0; k < sh->ntime && w->ltt.n == 20; k++)
            if (memcmp(sh->time_at[k], w->ltt.s, 20) == 0)
                since = sh->time[k];
        if (since == NULL) {
            double epoch;
            if (parse_time(w->ltt.s, w->ltt.n, &epoch))
                return DEFER;
            since = PyFloat_FromDouble(epoch);
            if (since == NULL)
                return -1;
            sh->time_at[sh->ntime] = w->ltt.s;
            sh->time[sh->ntime++] = since;
        }
    }
    if (w->reason.kind == K_STR && !w->reason.plain)
        return DEFER;
    if (status != S_TRUE && w->message.kind == K_STR && !w->message.plain)
        return DEFER;
    if (was != Py_None) {
        if (Py_TYPE(was) != (PyTypeObject *)Condition_t)
            return DEFER;
        PyObject *was_since = FIELD(was, C_OFF[C_LAST_TRANSITION]);
        int same_time;
        if (since == Py_None || was_since == Py_None)
            same_time = since == was_since;
        else
            same_time = PyFloat_CheckExact(was_since) &&
                        PyFloat_AS_DOUBLE(was_since) == PyFloat_AS_DOUBLE(since);
        if (FIELD(was, C_OFF[C_STATUS]) == status && same_time &&
            int_matches(FIELD(was, C_OFF[C_OBSERVED]), &w->observed) &&
            str_is_or_empty(FIELD(was, C_OFF[C_REASON]), &w->reason) &&
            (status == S_TRUE || str_is_or_empty(FIELD(was, C_OFF[C_MESSAGE]), &w->message))) {
            PyObject *m = FIELD(was, C_OFF[C_MESSAGE]);
            Py_INCREF(m);
            m = share_message(sh, m);
            Py_DECREF(m);
            Py_INCREF(was);
            *out = was;
            return 0;
        }
    }
    PyObject *message;
    if (status == S_TRUE) {
        message = S_EMPTY;
        Py_INCREF(message);
    } else if (w->message.kind == K_STR && w->message.n > 0) {
        message = ascii(w->message.s, w->message.n);
        if (message != NULL && w->message.n <= INTERN_MESSAGE_MAX)
            message = interned(message);
    } else {
        message = S_EMPTY;
        Py_INCREF(message);
    }
    if (message == NULL)
        return -1;
    message = share_message(sh, message);
    PyObject *reason;
    if (truthy_str(&w->reason)) {
        reason = interned_span(&w->reason);
    } else {
        reason = S_EMPTY;
        Py_INCREF(reason);
    }
    PyObject *observed = reason == NULL ? NULL : opt_int(&w->observed);
    if (observed == NULL) {
        Py_DECREF(message);
        Py_XDECREF(reason);
        return -1;
    }
    PyObject *args[6] = {ctype, status, reason, message, observed, since};
    *out = PyObject_Vectorcall(Condition_t, args, 6, NULL);
    Py_DECREF(reason);
    Py_DECREF(message);
    Py_DECREF(observed);
    return *out == NULL ? -1 : 0;
}

/* Looks a key up in a mapping: a borrowed... no, a new reference or NULL when missing. */
static int mapping_get(PyObject *map, PyObject *key, PyObject **out) {
    if (PyDict_CheckExact(map)) {
        *out = PyDict_GetItemWithError(map, key);
        if (*out == NULL)
            return PyErr_Occurred() ? -1 : 0;
        Py_INCREF(*out);
        return 0;
    }
    *out = PyObject_GetItem(map, key);
    if (*out == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError))
            return -1;
        PyErr_Clear();
    }
    return 0;
}

/* The shared (owned) reference to an equal string, or a new interned one. */
static PyObject *same_or_interned(PyObject *value, PyObject *before_value) {
    if (before_value != NULL && PyUnicode_CheckExact(before_value)) {
        int eq = PyUnicode_Compare(value, before_value) == 0;
        if (eq) {
            Py_DECREF(value);
            Py_INCREF(before_value);
            return before_value;
        }
    }
    return interned(value);
}

enum { A_NAMESPACE, A_NAME, A_UID, A_RV, A_GENERATION, A_LABELS, A_SUSPEND, A_DELETING,
       A_IGNORED, A_SUSPENDED_AT, A_REQUESTED_AT, A_FORCE_AT, A_READY, A_RECONCILING,
       A_RELEASED, A_LAST_RELEASE, A_RELEASE_NAME, A_TARGET, A_STORAGE, A_OBSERVED,
       A_HANDLED_RECONCILE, A_HANDLED_FORCE, A_ACTION, A_MALFORMED, A_REMOTE, A_DEPENDS_ON,
       A_STALLED, A_HANDLED_RESET, A_INSTALL_FAILURES, A_UPGRADE_FAILURES, A_COUNT };

static int ignored_is_true(const Val *v) {
    if (v->kind != K_STR)
        return 0;
    const char *s = v->s, *e = v->s + v->n;
    while (s < e && *s == ' ')
        s++;
    while (e > s && e[-1] == ' ')
        e--;
    return e - s == 4 && (s[0] | 0x20) == 't' && (s[1] | 0x20) == 'r' && (s[2] | 0x20) == 'u' &&
           (s[3] | 0x20) == 'e';
}

/* _from_wire. Returns a new reference to the view, Py_None (new) to defer, NULL on error. */
static PyObject *build_view(Wire *w, PyObject *known) {
    PyObject *a[A_COUNT] = {0};
    PyObject *before = NULL, *result = NULL, *key = NULL;
    PyObject *name = NULL, *namespace = NULL, *rel_name = NULL;
    Shared sh;
    sh.nmsg = sh.ntime = 0;
    int rc = DEFER;

#define TRY(expr)                  \
    do {                           \
        int r_ = (expr);           \
        if (r_) {                  \
            rc = r_;               \
            goto done;             \
        }                          \
    } while (0)
#define NEW(target, expr)          \
    do {                           \
        if (((target) = (expr)) == NULL) { \
            rc = -1;               \
            goto done;             \
        }                          \
    } while (0)

    if (!w->has_meta)
        goto done;
    if (!truthy_str(&w->name) || !truthy_str(&w->namespace) || !w->name.plain ||
        !w->namespace.plain)
        goto done;
    /* Every string the view keeps must be plain before anything is built. */
    const Val *strings[] = {&w->uid, &w->rv, &w->ignore, &w->suspended_at, &w->requested_at,
                            &w->force_at, &w->target_ns, &w->release_name, &w->spec_storage,
                            &w->status_storage, &w->handled_reconcile, &w->handled_force,
                            &w->action, &w->handled_reset, &w->deletion};
    for (size_t k = 0; k < sizeof strings / sizeof *strings; k++)
        if (strings[k]->kind == K_STR && !strings[k]->plain)
            goto done;

    NEW(name, ascii(w->name.s, w->name.n));
    NEW(namespace, ascii(w->namespace.s, w->namespace.n));
    NEW(key, PyTuple_Pack(2, namespace, name));
    if (known != NULL)
        TRY(mapping_get(known, key, &before));
    if (before != NULL && Py_TYPE(before) != (PyTypeObject *)HRView_t)
        goto done;
    if (before == NULL) {
        namespace = interned(namespace);
    } else {
        PyObject *ns = FIELD(before, V_OFF[V_NAMESPACE]), *nm = FIELD(before, V_OFF[V_NAME]);
        Py_INCREF(ns);
        Py_INCREF(nm);
        Py_SETREF(namespace, ns);
        Py_SETREF(name, nm);
    }

    /* release_name(), inlined as _from_wire has it. */
    if (truthy_str(&w->release_name)) {
        NEW(rel_name, ascii(w->release_name.s, w->release_name.n));
    } else if (truthy_str(&w->target_ns)) {
        Py_ssize_t nt = w->target_ns.n, nn = PyUnicode_GET_LENGTH(name);
        NEW(rel_name, PyUnicode_New(nt + 1 + nn, 127));
        char *out = (char *)PyUnicode_1BYTE_DATA(rel_name);
        memcpy(out, w->target_ns.s, (size_t)nt);
        out[nt] = '-';
        memcpy(out + nt + 1, PyUnicode_1BYTE_DATA(name), (size_t)nn);
    } else {
        rel_name = name;
        Py_INCREF(rel_name);
    }
    if (PyUnicode_GET_LENGTH(rel_name) > MAX_RELEASE_NAME)
        goto done; /* shortened by the Python reader */
    if (rel_name != name && PyUnicode_Compare(rel_name, name) == 0) {
        Py_INCREF(name);
        Py_SETREF(rel_name, name);
    } else if (before != NULL && rel_name != name) {
        PyObject *was = FIELD(before, V_OFF[V_RELEASE_NAME]);
        if (PyUnicode_Compare(rel_name, was) == 0) {
            Py_INCREF(was);
            Py_SETREF(rel_name, was);
        }
    }

    /* Labels: a label set seen before, by its bytes, else the Python reader's own reader of
     * a new one (_wire_labels, which keeps it for the next time), as _from_wire does. */
    if (w->labels.kind == K_RAW) {
        if ((w->labels.n == 4 && memcmp(w->labels.s, "null", 4) == 0) ||
            (w->labels.n == 2 && memcmp(w->labels.s, "{}", 2) == 0)) {
            a[A_LABELS] = EMPTY_LABELS;
            Py_INCREF(EMPTY_LABELS);
        } else {
            PyObject *raw;
            NEW(raw, PyBytes_FromStringAndSize(w->labels.s, w->labels.n));
            int r = mapping_get(LABEL_BYTES, raw, &a[A_LABELS]);
            if (r == 0 && a[A_LABELS] == NULL)
                a[A_LABELS] = PyObject_CallOneArg(LABELS_READER, raw);
            Py_DECREF(raw);
            if (r || a[A_LABELS] == NULL) {
                rc = -1;
                goto done;
            }
            if (a[A_LABELS] == Py_None)
                goto done; /* not a set of strings: the Python reader names it */
        }
    } else {
        a[A_LABELS] = EMPTY_LABELS;
        Py_INCREF(EMPTY_LABELS);
    }
    if (w->depends_on.kind == K_RAW) {
        /* A dependsOn list seen before in this namespace, by its bytes, else the Python
         * reader's own reader of a new one (_wire_dependencies), as _from_wire does. */
        PyObject *raw, *dkey;
        NEW(raw, PyBytes_FromStringAndSize(w->depends_on.s, w->depends_on.n));
        dkey = PyTuple_Pack(2, namespace, raw);
        int r = dkey == NULL ? -1 : mapping_get(DEPENDENCY_BYTES, dkey, &a[A_DEPENDS_ON]);
        Py_XDECREF(dkey);
        if (r == 0 && a[A_DEPENDS_ON] == NULL)
            a[A_DEPENDS_ON] = PyObject_CallFunctionObjArgs(DEPENDENCIES_READER, raw, namespace,
                                                           NULL);
        Py_DECREF(raw);
        if (r || a[A_DEPENDS_ON] == NULL) {
            rc = -1;
            goto done;
        }
        if (a[A_DEPENDS_ON] == Py_None)
            goto done; /* an entry without a name: the Python reader names it */
    } else {
        NEW(a[A_DEPENDS_ON], PyTuple_New(0));
    }

    /* Conditions, in the order the object lists them. */
    for (int k = 0; k < w->nkept; k++) {
        PyObject *ctype = w->kept_type[k];
        int slot = ctype == C_READY ? A_READY
                   : ctype == C_RELEASED ? A_RELEASED
                   : ctype == C_RECONCILING ? A_RECONCILING
                                            : A_STALLED;
        int vslot = ctype == C_READY ? V_READY
                    : ctype == C_RELEASED ? V_RELEASED
                    : ctype == C_RECONCILING ? V_RECONCILING
                                             : V_STALLED;
        PyObject *was = before == NULL ? Py_None : FIELD(before, V_OFF[vslot]);
        TRY(build_condition(&w->kept[k], ctype, &sh, was, &a[slot]));
    }

    /* history[0] */
    if (w->nhistory > 0) {
        const WSnap *f = &w->first;
        if (f->name.kind != K_STR || f->version.kind != K_INT || f->status.kind != K_STR)
            goto done;
        const Val *hs[] = {&f->name, &f->status, &f->namespace, &f->action, &f->chart_name,
                           &f->chart_version};
        for (size_t k = 0; k < sizeof hs / sizeof *hs; k++)
            if (hs[k]->kind == K_STR && !hs[k]->plain)
                goto done;
        PyObject *last = before == NULL ? Py_None : FIELD(before, V_OFF[V_LAST_RELEASE]);
        if (last != Py_None && Py_TYPE(last) != (PyTypeObject *)Snapshot_t)
            goto done;
        if (last != Py_None && int_matches(FIELD(last, S_OFF[S_VERSION]), &f->version) &&
            str_is_span(FIELD(last, S_OFF[S_NAME]), f->name.s, f->name.n) &&
            str_is_span(FIELD(last, S_OFF[S_STATUS]), f->status.s, f->status.n) &&
            str_is_or_empty(FIELD(last, S_OFF[S_NAMESPACE]), &f->namespace) &&
            str_is_or_empty(FIELD(last, S_OFF[S_ACTION]), &f->action) &&
            str_is_or_empty(FIELD(last, S_OFF[S_CHART]), &f->chart_name) &&
            str_is_or_empty(FIELD(last, S_OFF[S_CHART_VERSION]), &f->chart_version)) {
            Py_INCREF(last);
            a[A_LAST_RELEASE] = last;
        } else {
            PyObject *s[S_COUNT] = {0};
            int ok = 1;
            if (str_is_span(rel_name, f->name.s, f->name.n)) {
                s[0] = rel_name;
                Py_INCREF(rel_name);
            } else {
                ok = (s[0] = ascii(f->name.s, f->name.n)) != NULL;
            }
            /* Snapshot(name, namespace, version, status, action, chart_name, chart_version):
             * the strings interned, as _from_wire interns them, "" for a missing one. */
            const Val *strings_at[S_COUNT] = {NULL, &f->namespace, NULL, &f->status,
                                              &f->action, &f->chart_name, &f->chart_version};
            if (ok)
                ok = (s[S_VERSION] = PyLong_FromLongLong(f->version.i)) != NULL;
            for (int k = 1; ok && k < S_COUNT; k++)
                if (strings_at[k] != NULL)
                    ok = (s[k] = interned_or_empty(strings_at[k])) != NULL;
            if (ok)
                a[A_LAST_RELEASE] = PyObject_Vectorcall(Snapshot_t, s, S_COUNT, NULL);
            for (int k = 0; k < S_COUNT; k++)
                Py_XDECREF(s[k]);
            if (a[A_LAST_RELEASE] == NULL) {
                rc = -1;
                goto done;
            }
        }
    }

    /* Annotations and the handled tokens, shared with them when equal. */
    TRY(opt_str(&w->suspended_at, &a[A_SUSPENDED_AT]));
    TRY(opt_str(&w->requested_at, &a[A_REQUESTED_AT]));
    TRY(opt_str(&w->force_at, &a[A_FORCE_AT]));
    TRY(opt_str(&w->handled_reconcile, &a[A_HANDLED_RECONCILE]));
    TRY(opt_str(&w->handled_force, &a[A_HANDLED_FORCE]));
    if (a[A_HANDLED_RECONCILE] != NULL && a[A_REQUESTED_AT] != NULL &&
        PyUnicode_Compare(a[A_HANDLED_RECONCILE], a[A_REQUESTED_AT]) == 0) {
        Py_INCREF(a[A_REQUESTED_AT]);
        Py_SETREF(a[A_HANDLED_RECONCILE], a[A_REQUESTED_AT]);
    }
    if (a[A_HANDLED_FORCE] != NULL && a[A_FORCE_AT] != NULL &&
        PyUnicode_Compare(a[A_HANDLED_FORCE], a[A_FORCE_AT]) == 0) {
        Py_INCREF(a[A_FORCE_AT]);
        Py_SETREF(a[A_HANDLED_FORCE], a[A_FORCE_AT]);
    }
    TRY(opt_str(&w->handled_reset, &a[A_HANDLED_RESET]));

    /* Target and storage namespaces, the last attempted action. */
    PyObject *target, *storage, *action = NULL;
    if (truthy_str(&w->target_ns)) {
        NEW(target, ascii(w->target_ns.s, w->target_ns.n));
    } else {
        target = namespace;
        Py_INCREF(target);
    }
    const Val *sv = truthy_str(&w->status_storage) ? &w->status_storage
                    : truthy_str(&w->spec_storage) ? &w->spec_storage
                                                   : NULL;
    if (sv != NULL) {
        storage = ascii(sv->s, sv->n);
    } else {
        storage = namespace;
        Py_INCREF(storage);
    }
    if (storage == NULL) {
        Py_DECREF(target);
        rc = -1;
        goto done;
    }
    if (opt_str(&w->action, &action)) {
        Py_DECREF(target);
        Py_DECREF(storage);
        rc = -1;
        goto done;
    }
    if (before == NULL) {
        a[A_TARGET] = interned(target);
        a[A_STORAGE] = interned(storage);
        a[A_ACTION] = action == NULL ? NULL : interned(action);
    } else {
        a[A_TARGET] = same_or_interned(target, FIELD(before, V_OFF[V_TARGET]));
        a[A_STORAGE] = same_or_interned(storage, FIELD(before, V_OFF[V_STORAGE]));
        a[A_ACTION] = action == NULL ? NULL
                                     : same_or_interned(action, FIELD(before, V_OFF[V_ACTION]));
    }

    /* The rest, as _from_wire passes them. */
    Py_INCREF(namespace);
    a[A_NAMESPACE] = namespace;
    Py_INCREF(name);
    a[A_NAME] = name;
    Py_INCREF(rel_name);
    a[A_RELEASE_NAME] = rel_name;
    NEW(a[A_UID], str_or_empty(&w->uid));
    NEW(a[A_RV], str_or_empty(&w->rv));
    NEW(a[A_GENERATION], PyLong_FromLongLong(w->generation.kind == K_INT ? w->generation.i : 0));
    a[A_SUSPEND] = w->suspend.kind == K_TRUE ? Py_True : Py_False;
    Py_INCREF(a[A_SUSPEND]);
    a[A_DELETING] = w->deletion.kind == K_STR ? Py_True : Py_False;
    Py_INCREF(a[A_DELETING]);
    a[A_IGNORED] = ignored_is_true(&w->ignore) ? Py_True : Py_False;
    Py_INCREF(a[A_IGNORED]);
    NEW(a[A_OBSERVED], PyLong_FromLongLong(w->observed.kind == K_INT ? w->observed.i : -1));
    a[A_REMOTE] = w->kube_config.kind == K_RAW &&
                          !(w->kube_config.n == 4 && memcmp(w->kube_config.s, "null", 4) == 0)
                      ? Py_True
                      : Py_False;
    Py_INCREF(a[A_REMOTE]);
    NEW(a[A_INSTALL_FAILURES],
        PyLong_FromLongLong(w->install_failures.kind == K_INT ? w->install_failures.i : 0));
    NEW(a[A_UPGRADE_FAILURES],
        PyLong_FromLongLong(w->upgrade_failures.kind == K_INT ? w->upgrade_failures.i : 0));
    if (a[A_TARGET] == NULL || a[A_STORAGE] == NULL || (action != NULL && a[A_ACTION] == NULL)) {
        rc = -1;
        goto done;
    }
    for (int k = 0; k < A_COUNT; k++)
        if (a[k] == NULL) {
            a[k] = Py_None;
            Py_INCREF(Py_None);
        }
    result = PyObject_Vectorcall(HRView_t, a, A_COUNT, NULL);
    rc = result == NULL ? -1 : 0;

done:
    for (int k = 0; k < A_COUNT; k++)
        Py_XDECREF(a[k]);
    shared_clear(&sh);
    Py_XDECREF(before);
    Py_XDECREF(key);
    Py_XDECREF(name);
    Py_XDECREF(namespace);
    Py_XDECREF(rel_name);
    if (rc < 0)
        return NULL;
    if (rc == DEFER) {
        Py_XDECREF(result);
        Py_RETURN_NONE;
    }
    return result;
#undef TRY
#undef NEW
}

/* The native read of one line: (type, view), or None to leave it to the Python reader. */
static PyObject *read_line(PyObject *line, PyObject *known) {
    Py_buffer buf;
    if (PyObject_GetBuffer(line, &buf, PyBUF_SIMPLE) < 0)
        return NULL;
    Wire w;
    memset(&w, 0, sizeof w);
    Cur c = {(const char *)buf.buf, (const char *)buf.buf + buf.len};
    PyObject *result = NULL;
    ws(&c);
    if (c.p >= c.end || *c.p != '{' || parse_object(&c, 0, event_member, &w))
        goto defer;
    ws(&c);
    if (c.p != c.end || !w.has_object || w.etype.kind != K_STR)
        goto defer;
    PyObject *etype;
    if (span_is(&w.etype, "MODIFIED", 8))
        etype = E_MODIFIED;
    else if (span_is(&w.etype, "ADDED", 5))
        etype = E_ADDED;
    else if (span_is(&w.etype, "DELETED", 7))
        etype = E_DELETED;
    else
        goto defer;
    PyObject *view = build_view(&w, known);
    if (view == NULL)
        goto out;
    if (view == Py_None) {
        Py_DECREF(view);
        goto defer;
    }
    result = PyTuple_Pack(2, etype, view);
    Py_DECREF(view);
    goto out;
defer:
    result = Py_None;
    Py_INCREF(result);
out:
    PyBuffer_Release(&buf);
    return result;
}

/* ------------------------------------------------------------------ list pages */

typedef struct {
    unsigned seen, seen_meta;
    Val rv, cont;
    PyObject *views; /* the views built so far */
    int error;       /* a Python error is set */
} PageWire;

static int list_meta_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    PageWire *pw = (PageWire *)ctx;
    if (KEY("resourceVersion")) { ONCE(pw->seen_meta, 1); return read_str_or_null(c, &pw->rv); }
    if (KEY("continue")) { ONCE(pw->seen_meta, 2); return read_str_or_null(c, &pw->cont); }
    return skip_value(c, depth);
}

/* One item of a page: read and built at once (its spans are good while the body is). */
static int page_item(Cur *c, Py_ssize_t i, void *ctx, int depth) {
    (void)i;
    PageWire *pw = (PageWire *)ctx;
    if (*c->p != '{')
        return DEFER;
    Wire w;
    memset(&w, 0, sizeof w);
    if (parse_object(c, depth, object_member, &w))
        return DEFER;
    PyObject *view = build_view(&w, NULL);
    if (view == NULL) {
        pw->error = 1;
        return DEFER;
    }
    if (view == Py_None) {
        Py_DECREF(view);
        return DEFER;
    }
    int r = PyList_Append(pw->views, view);
    Py_DECREF(view);
    if (r < 0) {
        pw->error = 1;
        return DEFER;
    }
    return 0;
}

static int page_member(Cur *c, const char *key, Py_ssize_t n, void *ctx, int depth) {
    PageWire *pw = (PageWire *)ctx;
    if (KEY("metadata")) {
        ONCE(pw->seen, 1);
        if (*c->p == '{')
            return parse_object(c, depth, list_meta_member, pw);
        return literal(c, "null", 4);
    }
    if (KEY("items")) {
        ONCE(pw->seen, 2);
        if (*c->p == '[')
            return parse_array(c, depth, page_item, pw);
        return literal(c, "null", 4);
    }
    return skip_value(c, depth);
}

/* ``value or None`` of a list's token, a new reference; NULL on error. */
static PyObject *token(const Val *v) {
    if (v->kind == K_STR && v->n > 0)
        return ascii(v->s, v->n);
    Py_RETURN_NONE;
}

/* hr_page: the Page of a list body, or None where the Python reader must read it. */
static PyObject *read_page(PyObject *body) {
    Py_buffer buf;
    if (PyObject_GetBuffer(body, &buf, PyBUF_SIMPLE) < 0)
        return NULL;
    PageWire pw;
    memset(&pw, 0, sizeof pw);
    PyObject *result = NULL;
    pw.views = PyList_New(0);
    if (pw.views == NULL)
        goto out;
    Cur c = {(const char *)buf.buf, (const char *)buf.buf + buf.len};
    ws(&c);
    int deferred = c.p >= c.end || *c.p != '{' || parse_object(&c, 0, page_member, &pw);
    if (pw.error)
        goto out;
    if (!deferred) {
        ws(&c);
        deferred = c.p != c.end;
    }
    /* Every token the page keeps must be plain: the Python reader decodes the others. */
    if (deferred || (pw.rv.kind == K_STR && !pw.rv.plain) ||
        (pw.cont.kind == K_STR && !pw.cont.plain)) {
        result = Py_None;
        Py_INCREF(result);
        goto out;
    }
    PyObject *cont = token(&pw.cont), *rv = cont == NULL ? NULL : token(&pw.rv);
    if (rv != NULL) {
        PyObject *args[3] = {pw.views, cont, rv};
        result = PyObject_Vectorcall(Page_t, args, 3, NULL);
    }
    Py_XDECREF(cont);
    Py_XDECREF(rv);
out:
    Py_XDECREF(pw.views);
    PyBuffer_Release(&buf);
    return result;
}

static int check_configured(void) {
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "fluxwatch.kube._hrwire: configure() first");
        return -1;
    }
    return 0;
}

static PyObject *py_event(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "event(line, known=None)");
        return NULL;
    }
    if (check_configured())
        return NULL;
    PyObject *known = nargs == 2 && args[1] != Py_None ? args[1] : NULL;
    return read_line(args[0], known);
}

static PyObject *py_hr_event(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "hr_event(line, known=...)");
        return NULL;
    }
    if (check_configured())
        return NULL;
    PyObject *known = nargs == 2 ? args[1] : NO_VIEWS;
    PyObject *got = read_line(args[0], known == NO_VIEWS ? NULL : known);
    if (got != Py_None)
        return got;
    Py_DECREF(got);
    PyObject *call[2] = {args[0], known};
    return PyObject_Vectorcall(FALLBACK, call, 2, NULL);
}

/* The positional order the views are built in; configure() holds the types to it. */
static const char *VIEW_FIELDS[A_COUNT] = {
    "namespace", "name", "uid", "resource_version", "generation", "labels", "suspend",
    "deleting", "ignored", "suspended_at", "requested_at", "force_at", "ready", "reconciling",
    "released", "last_release", "release_name", "target_namespace", "storage_namespace",
    "observed_generation", "last_handled_reconcile_at", "last_handled_force_at",
    "last_attempted_release_action", "malformed", "remote", "depends_on", "stalled",
    "last_handled_reset_at", "install_failures", "upgrade_failures",
};
static const char *CONDITION_FIELDS[6] = {
    "type", "status", "reason", "message", "observed_generation", "last_transition",
};

static int same_fields(PyObject *type, const char **names, Py_ssize_t count) {
    PyObject *fields = PyObject_GetAttrString(type, "__struct_fields__");
    if (fields == NULL)
        return -1;
    int ok = PyTuple_Check(fields) && PyTuple_GET_SIZE(fields) == count;
    for (Py_ssize_t k = 0; ok && k < count; k++) {
        PyObject *f = PyTuple_GET_ITEM(fields, k);
        ok = PyUnicode_Check(f) && PyUnicode_CompareWithASCIIString(f, names[k]) == 0;
    }
    Py_DECREF(fields);
    if (!ok)
        PyErr_Format(PyExc_TypeError, "%R's fields are not the ones _hrwire builds", type);
    return ok ? 0 : -1;
}

static int offsets(PyObject *type, const char **names, Py_ssize_t *out, int count) {
    for (int k = 0; k < count; k++) {
        PyObject *d = PyDict_GetItemString(((PyTypeObject *)type)->tp_dict, names[k]);
        if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type) ||
            ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
            PyErr_Format(PyExc_TypeError, "%R.%s is not a struct field", type, names[k]);
            return -1;
        }
        out[k] = ((PyMemberDescrObject *)d)->d_member->offset;
    }
    return 0;
}

/* Replaces one configured reference (a new one is taken). */
static void keep(PyObject **slot, PyObject *value) {
    Py_INCREF(value);
    Py_XSETREF(*slot, value);
}

static PyObject *py_configure(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *names[] = {"view", "condition", "snapshot", "page", "empty_labels",
                            "label_bytes", "dependency_bytes", "labels_reader",
                            "dependencies_reader", "fallback", "page_fallback", "no_views",
                            "statuses", "conditions", "events", "empty", NULL};
    PyObject *view, *cond, *snap, *page, *empty_labels, *label_bytes, *dep_bytes, *labels_reader;
    PyObject *deps_reader, *fallback, *page_fallback, *no_views;
    PyObject *st[3], *ct[4], *ev[3], *empty;
    if (!PyArg_ParseTupleAndKeywords(
            args, kw, "$OOOOOO!O!OOOOO(UUU)(UUUU)(UUU)U", names, &view, &cond, &snap, &page,
            &empty_labels, &PyDict_Type, &label_bytes, &PyDict_Type, &dep_bytes, &labels_reader,
            &deps_reader, &fallback, &page_fallback, &no_views, &st[0], &st[1], &st[2], &ct[0],
            &ct[1], &ct[2], &ct[3], &ev[0], &ev[1], &ev[2], &empty))
        return NULL;
    if (!PyCallable_Check(labels_reader) || !PyCallable_Check(deps_reader) ||
        !PyCallable_Check(fallback) || !PyCallable_Check(page_fallback) ||
        !PyCallable_Check(page)) {
        PyErr_SetString(PyExc_TypeError, "the readers, fallbacks and page must be callable");
        return NULL;
    }
    if (!PyType_Check(view) || !PyType_Check(cond) || !PyType_Check(snap)) {
        PyErr_SetString(PyExc_TypeError, "view, condition and snapshot must be types");
        return NULL;
    }
    /* Checked whole before anything changes: a refused configuration leaves the last one. */
    Py_ssize_t v_off[V_COUNT], c_off[C_COUNT], s_off[S_COUNT];
    if (same_fields(view, VIEW_FIELDS, A_COUNT) || same_fields(cond, CONDITION_FIELDS, 6) ||
        same_fields(snap, S_NAMES, S_COUNT) || offsets(view, V_NAMES, v_off, V_COUNT) ||
        offsets(cond, C_NAMES, c_off, C_COUNT) || offsets(snap, S_NAMES, s_off, S_COUNT))
        return NULL;
    memcpy(V_OFF, v_off, sizeof v_off);
    memcpy(C_OFF, c_off, sizeof c_off);
    memcpy(S_OFF, s_off, sizeof s_off);
    keep(&S_TRUE, st[0]);
    keep(&S_FALSE, st[1]);
    keep(&S_UNKNOWN, st[2]);
    keep(&C_READY, ct[0]);
    keep(&C_RELEASED, ct[1]);
    keep(&C_RECONCILING, ct[2]);
    keep(&C_STALLED, ct[3]);
    keep(&E_ADDED, ev[0]);
    keep(&E_MODIFIED, ev[1]);
    keep(&E_DELETED, ev[2]);
    keep(&HRView_t, view);
    keep(&Condition_t, cond);
    keep(&Snapshot_t, snap);
    keep(&EMPTY_LABELS, empty_labels);
    keep(&LABEL_BYTES, label_bytes);
    keep(&DEPENDENCY_BYTES, dep_bytes);
    keep(&FALLBACK, fallback);
    keep(&PAGE_FALLBACK, page_fallback);
    keep(&Page_t, page);
    keep(&LABELS_READER, labels_reader);
    keep(&DEPENDENCIES_READER, deps_reader);
    keep(&NO_VIEWS, no_views);
    keep(&S_EMPTY, empty);
    configured = 1;
    Py_RETURN_NONE;
}

static PyObject *py_page(PyObject *self, PyObject *body) {
    (void)self;
    if (check_configured())
        return NULL;
    return read_page(body);
}

static PyObject *py_hr_page(PyObject *self, PyObject *body) {
    (void)self;
    if (check_configured())
        return NULL;
    PyObject *got = read_page(body);
    if (got != Py_None)
        return got;
    Py_DECREF(got);
    return PyObject_CallOneArg(PAGE_FALLBACK, body);
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))py_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, view, condition, snapshot, page, empty_labels, label_bytes, "
     "dependency_bytes, labels_reader, dependencies_reader, fallback, page_fallback, no_views, "
     "statuses, conditions, events, empty): what a view is made of."},
    {"event", (PyCFunction)(void (*)(void))py_event, METH_FASTCALL,
     "event(line, known=None): (type, view), or None where the Python reader must read it."},
    {"hr_event", (PyCFunction)(void (*)(void))py_hr_event, METH_FASTCALL,
     "hr_event(line, known=no views): event(), else the Python reader configured."},
    {"page", (PyCFunction)py_page, METH_O,
     "page(body): the Page of a list body, or None where the Python reader must read it."},
    {"hr_page", (PyCFunction)py_hr_page, METH_O,
     "hr_page(body): page(), else the Python page reader configured."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hrwire",
    "The HelmRelease watch line read in one pass, in C (see the source's opening comment).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hrwire(void) {
    for (int b = 0; b < 256; b++)
        STOP[b] = b == '"' || b == '\\' || b < 0x20 || b >= 0x80;
    return PyModule_Create(&module);
}
