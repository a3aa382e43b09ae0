/* The native lane's parser: lists of flat objects (the spans of `spot_prices`) straight into
 * column buffers, without the GIL.
 *
 * parse(lines, starts, ends, keys, kinds) -> (taken, counts, columns)
 *   lines: list of bytes; span i is lines[i][starts[i]:ends[i]] (read in place, not copied);
 *   keys: the item's keys in their one order; kinds: bytes, per key 't' (an instant) or 'f' (a float).
 *   taken: bytes, 1 per span read, 0 per span handed back; counts: the item count of each taken span;
 *   columns: per key, a Values object (below) of int64 microseconds ('t') or float64 values ('f'),
 *   the items of the taken spans in order.
 *
 * A span is taken only in the grammar the object lane is proven to read alike:
 *   [{"k1":v1,"k2":v2,...},...] with the keys in their order, each once, at least one item, in one of
 *   two forms per span: compact (no blank) or as Python's json.dumps writes by default (one blank
 *   after each ',' and ':', none elsewhere).
 *   - 't' values: "YYYY-MM-DDTHH:MM:SS" with an optional fraction of 1-6 digits, then "Z" or
 *     "+00:00", a real date and time in the years 0001-9999: the microseconds since 1970 in UTC.
 *     Any other text (another offset, no seconds, a space, escapes) hands the span back.
 *   - 'f' values: a JSON number (RFC 8259), correctly rounded to the nearest double (ties to even),
 *     as Python's float() reads its text. A value of 2**53 or more in magnitude (an integer there
 *     is not a float field's value; an infinity), or -0.0 (orjson reads "-0" as the integer 0), hands
 *     the span back.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 16

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t more) {
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap * 2 : 1 << 16;
    while (cap < b->len + more) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static locale_t c_locale;

/* Values: a parsed column handed to Python as it was filled, without a copy (a copy into a bytes
 * object cost a second pass over every value and a fresh block's page faults). It owns the malloc'd
 * block (freed with the object), exposes it read-only through the buffer protocol (pyarrow.py_buffer,
 * memoryview, struct and bytes() read it in place; a view holds a reference, so the block outlives
 * every array built on it), and len() is its size in bytes. */
typedef struct {
    PyObject_HEAD
    char *data; /* malloc'd, or NULL when empty */
    Py_ssize_t len;
} Values;

#ifndef SHRINK
#define SHRINK 1 /* cut each block to its used length (values_from); 0 only to measure without it */
#endif

static char EMPTY[8]; /* what an empty Values exposes: a valid address, 0 bytes */

static void values_dealloc(Values *self) {
    free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int values_getbuffer(Values *self, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)self, self->data ? self->data : EMPTY, self->len, 1, flags);
}

static Py_ssize_t values_length(Values *self) { return self->len; }

static PyBufferProcs values_as_buffer = {.bf_getbuffer = (getbufferproc)values_getbuffer};
static PySequenceMethods values_as_sequence = {.sq_length = (lenfunc)values_length};

static PyTypeObject ValuesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "instrumetriq_polars.read._spans.Values",
    .tp_basicsize = sizeof(Values),
    .tp_dealloc = (destructor)values_dealloc,
    .tp_as_sequence = &values_as_sequence,
    .tp_as_buffer = &values_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A parsed column's values (read-only buffer; len() in bytes), owned without a copy.",
};

/* A Values taking b's block (b is emptied: on success and on failure alike, the block is the new
 * object's or freed). The block is first cut to its used length: realloc shrinks in place (glibc
 * unmaps an mmap'd block's tail with mremap; a heap chunk is split), no byte is copied. */
static PyObject *values_from(Buf *b) {
    char *data = b->data;
    Py_ssize_t len = (Py_ssize_t)b->len;
    size_t cap = b->cap;
    b->data = NULL;
    b->len = b->cap = 0;
    if (len == 0) {
        free(data);
        data = NULL;
    } else if (SHRINK && (size_t)len < cap) {
        char *shrunk = realloc(data, (size_t)len);
        if (shrunk) data = shrunk;
    }
    Values *v = PyObject_New(Values, &ValuesType);
    if (!v) {
        free(data);
        return NULL;
    }
    v->data = data;
    v->len = len;
    return (PyObject *)v;
}

static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The fast path for the mantissas Clinger's cannot take (2**53 to 10**19: 16-19 significant digits,
 * about one float in four on a real day) and powers of ten up to 10**27, on x87's 80-bit long double
 * (a 64-bit significand); compiled only where long double is that format.
 *
 * Why its result is the correctly rounded double of x = m * 10**s (m < 10**19 < 2**64, |s| <= 27):
 * - m and 10**|s| (= 2**|s| * 5**|s|, 5**27 < 2**64) are exact long doubles, so r = m * 10**s or
 *   m / 10**-s is one correctly rounded operation: r = RN64(x), the nearest 64-bit-significand
 *   number (ties to even), given the x87 precision control is at 64 bits (checked, see
 *   extended_precision) and the rounding mode is to nearest (as strtod and float() assume too).
 * - Every double halfway point h (a 54-bit significand) is a long double, and RN64 is monotone: if
 *   x lies strictly between two neighbouring halfway points h1 < x < h2, then h1 <= r <= h2. When r
 *   is neither, r and x lie in the same open interval (h1, h2), which holds exactly one double, so
 *   (double)r (a store: RN53, ties to even) is RN53(x). When x is itself a halfway point, r = x
 *   exactly, and (double)r rounds the tie as RN53(x) does.
 * - So the one case where (double)r can be wrong is r == a halfway point while x is not one: r's low
 *   11 significand bits (the bits below a double's 53) are exactly 10000000000. That case (and the
 *   exact ties, which it cannot tell apart: ~1 text in 2048 on this path) goes to strtod.
 * - 1 <= m < 10**19 and |s| <= 27 keep x within [1e-27, 1e46]: far inside the normal doubles, so no
 *   subnormal (fewer significand bits) or overflow case arises.
 * 0 and *out set, or -1: the caller reads the text with strtod. */
#if LDBL_MANT_DIG == 64 && (defined(__x86_64__) || defined(__i386__))
#define EXTENDED_PATH 1
static const long double POW10L[] = {1e0L, 1e1L, 1e2L, 1e3L, 1e4L, 1e5L, 1e6L, 1e7L, 1e8L, 1e9L,
                                      1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L,
                                      1e19L, 1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};

static int extended_number(uint64_t mantissa, int scale, double *out) {
    long double r = (long double)mantissa;
    r = scale < 0 ? r / POW10L[-scale] : r * POW10L[scale];
    uint64_t significand; /* the first 8 bytes of the 80-bit format (little-endian) */
    memcpy(&significand, &r, 8);
    if ((significand & 0x7FF) == 0x400) return -1;
    *out = (double)r;
    return 0;
}

/* Whether this thread's x87 precision control gives long double its 64 bits (Linux's default; a
 * 53-bit setting rounds 1 + 2**-63 to 1). */
static int extended_precision(void) {
    volatile long double one = 1.0L, tiny = LDBL_EPSILON;
    return one + tiny != one;
}
#else
#define EXTENDED_PATH 0
static int extended_number(uint64_t mantissa, int scale, double *out) { return -1; }
static int extended_precision(void) { return 0; }
#endif

/* A JSON number at p (end: q); 0 and *out set, or -1 when the text is no JSON number or its value
 * is refused. *next: the byte after it. Exact: a fast path only where the result is provably the
 * correctly rounded one (an integer mantissa below 2**53 times or divided by an exact power of ten,
 * Clinger; else, when `extended`, extended_number above), strtod (correctly rounded in glibc)
 * otherwise. */
static int parse_number(const char *p, const char *q, const char **next, double *out, int extended) {
    const char *start = p;
    int negative = 0;
    if (p < q && *p == '-') { negative = 1; p++; }
    if (p >= q) return -1;
    uint64_t mantissa = 0;
    int digits = 0, exact = 1;
    int scale = 0; /* the decimal exponent of the mantissa's last digit */
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < q && *p >= '0' && *p <= '9') {
            if (digits < 19) mantissa = mantissa * 10 + (uint64_t)(*p - '0'), digits++;
            else { exact = 0; scale++; }
            p++;
        }
    } else {
        return -1;
    }
    if (p < q && *p == '.') {
        p++;
        if (p >= q || *p < '0' || *p > '9') return -1;
        while (p < q && *p >= '0' && *p <= '9') {
            if (mantissa == 0 && *p == '0') { scale--; }
            else if (digits < 19) { mantissa = mantissa * 10 + (uint64_t)(*p - '0'); digits++; scale--; }
            else if (*p != '0') exact = 0;
            p++;
        }
    }
    if (p < q && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < q && (*p == '+' || *p == '-')) { eneg = *p == '-'; p++; }
        if (p >= q || *p < '0' || *p > '9') return -1;
        long e = 0;
        while (p < q && *p >= '0' && *p <= '9') {
            if (e < 100000) e = e * 10 + (*p - '0');
            p++;
        }
        scale += (int)(eneg ? -e : e);
        exact = exact && e < 100000;
    }
    *next = p;
    double value;
    if (exact && mantissa < (1ULL << 53) && scale >= -22 && scale <= 22) {
        value = (double)mantissa;
        value = scale < 0 ? value / POW10[-scale] : value * POW10[scale];
    } else if (exact && mantissa == 0) {
        value = 0.0;
    } else if (!(extended && exact && scale >= -27 && scale <= 27 && extended_number(mantissa, scale, &value) == 0)) {
        size_t n = (size_t)(p - start);
        char small[128];
        char *text = n < sizeof small ? small : malloc(n + 1);
        if (!text) return -1;
        memcpy(text, start, n);
        text[n] = '\0';
        value = strtod_l(text, NULL, c_locale);
        if (text != small) free(text);
        negative = 0; /* the sign is in the text */
    }
    if (negative) value = -value;
    if (value == 0.0 && (negative || *start == '-')) return -1;  /* -0.0: refused (see above) */
    if (value >= 9007199254740992.0 || value <= -9007199254740992.0 || value != value) return -1;
    *out = value;
    return 0;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return days[m - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int two(const char *p, int *out) {
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return -1;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return 0;
}

/* A quoted canonical instant at p ("...") : 0 and *out (microseconds), *next after the quote. */
static int parse_instant(const char *p, const char *q, const char **next, int64_t *out) {
    if (q - p < 22 || *p != '"') return -1;
    p++;
    int y1, y2, mo, d, h, mi, s;
    if (two(p, &y1) || two(p + 2, &y2) || p[4] != '-' || two(p + 5, &mo) || p[7] != '-' || two(p + 8, &d) ||
        p[10] != 'T' || two(p + 11, &h) || p[13] != ':' || two(p + 14, &mi) || p[16] != ':' || two(p + 17, &s))
        return -1;
    int y = y1 * 100 + y2;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59) return -1;
    p += 19;
    int64_t micros = 0;
    if (p < q && *p == '.') {
        p++;
        int n = 0;
        while (p < q && *p >= '0' && *p <= '9' && n < 7) { micros = micros * 10 + (*p - '0'); n++; p++; }
        if (n < 1 || n > 6) return -1;
        while (n++ < 6) micros *= 10;
    }
    if (p < q && *p == 'Z') {
        p++;
    } else if (q - p >= 6 && memcmp(p, "+00:00", 6) == 0) {
        p += 6;
    } else {
        return -1;
    }
    if (p >= q || *p != '"') return -1;
    *next = p + 1;
    *out = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000000) + micros;
    return 0;
}

typedef struct {
    int nkeys;
    int extended; /* extended_number may be used (this thread's x87 precision checked) */
    const char *keys[MAX_KEYS];
    Py_ssize_t key_lens[MAX_KEYS];
    char kinds[MAX_KEYS];
} Grammar;

/* One span in one form (spaced: a blank after each ',' and ':'); -1 when it is not in it. Values
 * are appended to cols; the caller rolls them back on failure. */
static int parse_span(const Grammar *g, const char *p, const char *q, int spaced, Buf *cols, int64_t *count) {
    int64_t items = 0;
    if (p >= q || *p++ != '[') return -1;
    for (;;) {
        if (p >= q || *p++ != '{') return -1;
        for (int k = 0; k < g->nkeys; k++) {
            if (k > 0) {
                if (p >= q || *p++ != ',') return -1;
                if (spaced && (p >= q || *p++ != ' ')) return -1;
            }
            Py_ssize_t n = g->key_lens[k];
            if (q - p < n + 3 || p[0] != '"' || memcmp(p + 1, g->keys[k], n) != 0 || p[n + 1] != '"' || p[n + 2] != ':')
                return -1;
            p += n + 3;
            if (spaced && (p >= q || *p++ != ' ')) return -1;
            if (buf_reserve(&cols[k], 8)) return -2;
            if (g->kinds[k] == 't') {
                int64_t v;
                if (parse_instant(p, q, &p, &v)) return -1;
                memcpy(cols[k].data + cols[k].len, &v, 8);
            } else {
                double v;
                if (parse_number(p, q, &p, &v, g->extended)) return -1;
                memcpy(cols[k].data + cols[k].len, &v, 8);
            }
            cols[k].len += 8;
        }
        if (p >= q || *p++ != '}') return -1;
        items++;
        if (p >= q) return -1;
        if (*p == ']') { p++; break; }
        if (*p++ != ',') return -1;
        if (spaced && (p >= q || *p++ != ' ')) return -1;
    }
    if (p != q) return -1;
    *count = items;
    return 0;
}

static PyObject *parse(PyObject *self, PyObject *args) {
    PyObject *lines, *starts, *ends, *keys;
    const char *kinds;
    Py_ssize_t nkinds;
    if (!PyArg_ParseTuple(args, "O!O!O!O!y#", &PyList_Type, &lines, &PyList_Type, &starts, &PyList_Type, &ends,
                          &PyList_Type, &keys, &kinds, &nkinds))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(lines);
    if (PyList_GET_SIZE(starts) != n || PyList_GET_SIZE(ends) != n) {
        PyErr_SetString(PyExc_ValueError, "lines, starts and ends differ in length");
        return NULL;
    }
    Grammar g;
    g.nkeys = (int)PyList_GET_SIZE(keys);
    g.extended = EXTENDED_PATH && extended_precision();
    if (g.nkeys < 1 || g.nkeys > MAX_KEYS || nkinds != g.nkeys) {
        PyErr_SetString(PyExc_ValueError, "1 to 16 keys, one kind each");
        return NULL;
    }
    for (int k = 0; k < g.nkeys; k++) {
        PyObject *key = PyList_GET_ITEM(keys, k);
        if (!PyBytes_Check(key) || (kinds[k] != 't' && kinds[k] != 'f')) {
            PyErr_SetString(PyExc_TypeError, "keys are bytes, kinds 't' or 'f'");
            return NULL;
        }
        g.keys[k] = PyBytes_AS_STRING(key);
        g.key_lens[k] = PyBytes_GET_SIZE(key);
        g.kinds[k] = kinds[k];
    }
    const char **from = PyMem_Malloc(sizeof(char *) * (n ? n : 1));
    const char **to = PyMem_Malloc(sizeof(char *) * (n ? n : 1));
    PyObject *taken = PyBytes_FromStringAndSize(NULL, n);
    PyObject *counts = PyBytes_FromStringAndSize(NULL, n * 8);
    if (!from || !to || !taken || !counts) goto fail_early;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (!PyBytes_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "lines must be bytes");
            goto fail_early;
        }
        Py_ssize_t a = PyLong_AsSsize_t(PyList_GET_ITEM(starts, i)), b = PyLong_AsSsize_t(PyList_GET_ITEM(ends, i));
        if (PyErr_Occurred()) goto fail_early;
        if (a < 0 || b < a || b > PyBytes_GET_SIZE(line)) {
            PyErr_SetString(PyExc_ValueError, "a span outside its line");
            goto fail_early;
        }
        from[i] = PyBytes_AS_STRING(line) + a;
        to[i] = PyBytes_AS_STRING(line) + b;
    }
    Buf cols[MAX_KEYS];
    memset(cols, 0, sizeof cols);
    char *took = PyBytes_AS_STRING(taken);
    int64_t *count = (int64_t *)PyBytes_AS_STRING(counts);
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        size_t mark[MAX_KEYS];
        for (int k = 0; k < g.nkeys; k++) mark[k] = cols[k].len;
        int64_t c = 0;
        int r = parse_span(&g, from[i], to[i], 0, cols, &c);
        if (r == -1) {
            for (int k = 0; k < g.nkeys; k++) cols[k].len = mark[k];
            r = parse_span(&g, from[i], to[i], 1, cols, &c);
        }
        if (r == -2) failed = 1;
        if (r != 0) {
            for (int k = 0; k < g.nkeys; k++) cols[k].len = mark[k];
            c = 0;
        }
        took[i] = r == 0;
        count[i] = c;
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(from);
    PyMem_Free(to);
    PyObject *columns = NULL, *result = NULL;
    if (failed) {
        PyErr_NoMemory();
    } else if ((columns = PyList_New(g.nkeys))) {
        for (int k = 0; k < g.nkeys; k++) {
            PyObject *col = values_from(&cols[k]);
            if (!col) { Py_CLEAR(columns); break; }
            PyList_SET_ITEM(columns, k, col);
        }
    }
    for (int k = 0; k < g.nkeys; k++) free(cols[k].data); /* the blocks not handed over */
    if (columns) result = Py_BuildValue("(NNN)", taken, counts, columns);
    else { Py_DECREF(taken); Py_DECREF(counts); }
    return result;

fail_early:
    PyMem_Free(from);
    PyMem_Free(to);
    Py_XDECREF(taken);
    Py_XDECREF(counts);
    if (!PyErr_Occurred()) PyErr_NoMemory();
    return NULL;
}

/* long_number(text, digits) -> whether text holds a run of at least `digits` bytes of [0-9.]. */
static PyObject *long_number(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t digits;
    if (!PyArg_ParseTuple(args, "y*n", &view, &digits)) return NULL;
    const unsigned char *p = view.buf, *end = p + view.len;
    Py_ssize_t run = 0;
    int found = 0;
    for (; p < end; p++) {
        if ((*p >= '0' && *p <= '9') || *p == '.') {
            if (++run >= digits) { found = 1; break; }
        } else {
            run = 0;
        }
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(found);
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS, "parse(lines, starts, ends, keys, kinds) -> (taken, counts, columns)"},
    {"long_number", long_number, METH_VARARGS, "long_number(text, digits) -> bool"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_spans", "The native lane's span parser.", -1, methods};

PyMODINIT_FUNC PyInit__spans(void) {
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c_locale) return PyErr_NoMemory();
    if (PyType_Ready(&ValuesType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ValuesType);
    if (PyModule_AddObject(m, "Values", (PyObject *)&ValuesType) < 0) {
        Py_DECREF(&ValuesType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
