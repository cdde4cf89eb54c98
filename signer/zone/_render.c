/* The signed zone text of a range of names, in C: signer.zone.output.names_text's hot path.
 *
 * Built by `make accel` with the mypyc modules (signer/zone/_accel_build.py) and used only
 * with them (the same source-hash guard). The Python renderer in output.py is the
 * specification: this one must produce the same bytes, and the tests compare them
 * (tests/test_render.py, tests/test_accel.py).
 *
 * render(nodes, names, origin, apex, lengths, rdata_line, type_name) -> bytes
 *   nodes       dict: name (canonical wire) -> list of RRset tuples
 *               (owner, rtype, ttl, rdatas, sigs)
 *   names       list of names (a slice of Zone.order)
 *   origin      the zone's apex (canonical wire)
 *   apex        the apex's RRsets in output order (used for the origin), or None (the
 *               origin is then not expected among the names)
 *   lengths     a list or array that gets the byte length of each name's text (extend),
 *               or None
 *   rdata_line  callable(rtype, rdata) -> bytes: the RDATA text and a newline, for the
 *               types rendered here only in their common form
 *   type_name   callable(rtype) -> bytes: the type mnemonic
 *
 * Names, NS/CNAME/PTR/DNAME targets, NSEC, NSEC3, RRSIG, A and DS are formatted here; every other
 * type goes through rdata_line. Anything unusual here (a malformed name, bitmap or RRSIG, a
 * TTL outside 32 bits, a structure not as described) raises Unsupported before anything
 * is appended to lengths: the caller then renders the batch in Python, which gives the
 * output or the exact error the pure renderer gives.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *Unsupported; /* the exception class */
/* rtype -> bytes mnemonic (owned), filled on demand from the type_name callback, which must
 * be a pure function of the type (output._type_bytes is) */
static PyObject *type_names[65536];

typedef struct {
    char *p;
    Py_ssize_t len, cap;
    PyObject *rdata_line, *type_name; /* the callbacks of this call (borrowed) */
} Buf;

static int buf_grow(Buf *b, Py_ssize_t need) {
    if (b->len + need <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + need)
        cap *= 2;
    char *p = PyMem_Realloc(b->p, (size_t)cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static int put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_grow(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static int put_u(Buf *b, unsigned long long v) {
    char tmp[24];
    int i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(b, tmp + i, 24 - i);
}

static int unsupported(const char *why) {
    PyErr_SetString(Unsupported, why);
    return -1;
}

/* The wire name at data[i:end] in presentation form (as name_to_text); *next: the offset
 * after it. RFC 1035 escapes: '.\"();@$ ' and space as \c, other non-printables as \DDD. */
static int put_name(Buf *b, const unsigned char *data, Py_ssize_t i, Py_ssize_t end,
                    Py_ssize_t *next) {
    if (i >= end)
        return unsupported("name overruns its data");
    if (data[i] == 0) {
        *next = i + 1;
        return put(b, ".", 1);
    }
    while (1) {
        if (i >= end)
            return unsupported("name overruns its data");
        unsigned n = data[i];
        if (n == 0)
            break;
        if (n > 63 || i + 1 + (Py_ssize_t)n > end)
            return unsupported("bad label length");
        if (buf_grow(b, 4 * (Py_ssize_t)n + 1) < 0)
            return -1;
        char *o = b->p + b->len;
        for (unsigned k = 0; k < n; k++) {
            unsigned char c = data[i + 1 + k];
            switch (c) {
            case '.': case '\\': case '"': case '(': case ')': case ';': case '@': case '$':
            case ' ':
                *o++ = '\\';
                *o++ = (char)c;
                break;
            default:
                if (c >= 0x21 && c <= 0x7E) {
                    *o++ = (char)c;
                } else {
                    *o++ = '\\';
                    *o++ = (char)('0' + c / 100);
                    *o++ = (char)('0' + c / 10 % 10);
                    *o++ = (char)('0' + c % 10);
                }
            }
        }
        *o++ = '.';
        b->len = o - b->p;
        i += 1 + n;
    }
    *next = i + 1;
    return 0;
}

/* fn(rtype) or fn(rtype, rd): a new reference to the bytes it returns, or NULL (raised) */
static PyObject *call_bytes(PyObject *fn, unsigned rtype, PyObject *rd) {
    PyObject *num = PyLong_FromUnsignedLong(rtype);
    if (num == NULL)
        return NULL;
    PyObject *r = PyObject_CallFunctionObjArgs(fn, num, rd, NULL); /* rd NULL: one arg */
    Py_DECREF(num);
    if (r != NULL && !PyBytes_Check(r)) {
        Py_DECREF(r);
        unsupported("a callback did not return bytes");
        return NULL;
    }
    return r;
}

static int put_type(Buf *b, unsigned t) {
    PyObject *s = type_names[t];
    if (s == NULL) {
        s = call_bytes(b->type_name, t, NULL);
        if (s == NULL)
            return -1;
        type_names[t] = s; /* keeps the reference */
    }
    return put(b, PyBytes_AS_STRING(s), PyBytes_GET_SIZE(s));
}

/* "YYYYMMDDHHMMSS" of a time in seconds since the epoch (UTC), as time.strftime does. */
static int put_time(Buf *b, uint32_t t) {
    int64_t days = t / 86400, secs = t % 86400;
    /* civil_from_days (H. Hinnant) */
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y += 1;
    char s[14];
    int64_t parts[6] = {y, m, d, secs / 3600, secs / 60 % 60, secs % 60};
    s[0] = (char)('0' + y / 1000 % 10);
    s[1] = (char)('0' + y / 100 % 10);
    s[2] = (char)('0' + y / 10 % 10);
    s[3] = (char)('0' + y % 10);
    for (int k = 1; k < 6; k++) {
        s[2 + 2 * k] = (char)('0' + parts[k] / 10);
        s[3 + 2 * k] = (char)('0' + parts[k] % 10);
    }
    return put(b, s, 14);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 (with padding) and a newline, as binascii.b2a_base64 */
static int put_b64(Buf *b, const unsigned char *d, Py_ssize_t n) {
    if (buf_grow(b, (n + 2) / 3 * 4 + 1) < 0)
        return -1;
    char *o = b->p + b->len;
    Py_ssize_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[v >> 12 & 63];
        *o++ = B64[v >> 6 & 63];
        *o++ = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)d[i] << 16;
        *o++ = B64[v >> 18];
        *o++ = B64[v >> 12 & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
        *o++ = B64[v >> 18];
        *o++ = B64[v >> 12 & 63];
        *o++ = B64[v >> 6 & 63];
        *o++ = '=';
    }
    *o++ = '\n';
    b->len = o - b->p;
    return 0;
}

static const char HEX[] = "0123456789ABCDEF";
static const char B32HEX[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

/* the RRSIG RDATA text and a newline (output._add_rrsig) */
static int put_rrsig(Buf *b, const unsigned char *d, Py_ssize_t n) {
    if (n < 19)
        return unsupported("short RRSIG");
    unsigned tc = (unsigned)d[0] << 8 | d[1];
    if (put_type(b, tc) < 0 || put(b, " ", 1) < 0 || put_u(b, d[2]) < 0 ||
        put(b, " ", 1) < 0 || put_u(b, d[3]) < 0 || put(b, " ", 1) < 0)
        return -1;
    uint32_t ottl = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
    uint32_t exp = (uint32_t)d[8] << 24 | (uint32_t)d[9] << 16 | (uint32_t)d[10] << 8 | d[11];
    uint32_t inc = (uint32_t)d[12] << 24 | (uint32_t)d[13] << 16 | (uint32_t)d[14] << 8 | d[15];
    Py_ssize_t next;
    if (put_u(b, ottl) < 0 || put(b, " ", 1) < 0 || put_time(b, exp) < 0 ||
        put(b, " ", 1) < 0 || put_time(b, inc) < 0 || put(b, " ", 1) < 0 ||
        put_u(b, (unsigned)d[16] << 8 | d[17]) < 0 || put(b, " ", 1) < 0 ||
        put_name(b, d, 18, n, &next) < 0 || put(b, " ", 1) < 0)
        return -1;
    return put_b64(b, d + next, n - next);
}

/* the type bitmap's mnemonics, each after a space (output._bitmap_text) */
static int put_bitmap(Buf *b, const unsigned char *d, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 2 > n)
            return unsupported("truncated bitmap");
        unsigned w = d[i], len = d[i + 1];
        if (i + 2 + (Py_ssize_t)len > n)
            return unsupported("truncated bitmap");
        for (unsigned j = 0; j < len; j++) {
            unsigned byte = d[i + 2 + j];
            for (unsigned k = 0; k < 8; k++) {
                if (byte & (0x80u >> k)) {
                    if (put(b, " ", 1) < 0 || put_type(b, w * 256 + j * 8 + k) < 0)
                        return -1;
                }
            }
        }
        i += 2 + len;
    }
    return 0;
}

static int put_rdata(Buf *b, unsigned rtype, PyObject *rd) {
    if (!PyBytes_Check(rd))
        return unsupported("rdata is not bytes");
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(rd);
    Py_ssize_t n = PyBytes_GET_SIZE(rd), next;
    switch (rtype) {
    case 2: case 5: case 12: case 39: /* NS CNAME PTR DNAME */
        if (put_name(b, d, 0, n, &next) < 0)
            return -1;
        if (next != n)
            return unsupported("data after the name");
        return put(b, "\n", 1);
    case 47: /* NSEC */
        if (put_name(b, d, 0, n, &next) < 0 || put_bitmap(b, d + next, n - next) < 0)
            return -1;
        return put(b, "\n", 1);
    case 46: /* RRSIG */
        return put_rrsig(b, d, n);
    case 50: /* NSEC3 (output.rdata_text): the hash in base32hex, no padding */
        if (n >= 6) {
            Py_ssize_t sl = d[4];
            Py_ssize_t hl = 6 + sl <= n ? d[5 + sl] : 0;
            if (hl > 0 && 6 + sl + hl <= n) { /* an empty hash: Python's spacing */
                if (put_u(b, d[0]) < 0 || put(b, " ", 1) < 0 || put_u(b, d[1]) < 0 ||
                    put(b, " ", 1) < 0 || put_u(b, (unsigned)d[2] << 8 | d[3]) < 0 ||
                    put(b, " ", 1) < 0 || buf_grow(b, 2 * sl + 2 + (hl * 8 + 4) / 5) < 0)
                    return -1;
                char *o = b->p + b->len;
                if (sl == 0)
                    *o++ = '-';
                for (Py_ssize_t k = 5; k < 5 + sl; k++) {
                    *o++ = HEX[d[k] >> 4];
                    *o++ = HEX[d[k] & 15];
                }
                *o++ = ' ';
                const unsigned char *h = d + 6 + sl;
                unsigned acc = 0, bits = 0;
                for (Py_ssize_t k = 0; k < hl; k++) {
                    acc = (acc << 8 | h[k]) & 0xFFFFu;
                    bits += 8;
                    while (bits >= 5) {
                        bits -= 5;
                        *o++ = B32HEX[(acc >> bits) & 31];
                    }
                }
                if (bits)
                    *o++ = B32HEX[(acc << (5 - bits)) & 31];
                b->len = o - b->p;
                if (put_bitmap(b, h + hl, n - 6 - sl - hl) < 0)
                    return -1;
                return put(b, "\n", 1);
            }
        }
        break;
    case 1: /* A */
        if (n == 4) {
            for (int k = 0; k < 4; k++)
                if (put_u(b, d[k]) < 0 || put(b, k < 3 ? "." : "\n", 1) < 0)
                    return -1;
            return 0;
        }
        break;
    case 43: /* DS */
        if (n > 4) {
            if (put_u(b, (unsigned)d[0] << 8 | d[1]) < 0 || put(b, " ", 1) < 0 ||
                put_u(b, d[2]) < 0 || put(b, " ", 1) < 0 || put_u(b, d[3]) < 0 ||
                put(b, " ", 1) < 0 || buf_grow(b, 2 * (n - 4) + 1) < 0)
                return -1;
            char *o = b->p + b->len;
            for (Py_ssize_t k = 4; k < n; k++) {
                *o++ = HEX[d[k] >> 4];
                *o++ = HEX[d[k] & 15];
            }
            *o++ = '\n';
            b->len = o - b->p;
            return 0;
        }
        break;
    }
    PyObject *line = call_bytes(b->rdata_line, rtype, rd);
    if (line == NULL)
        return -1;
    int r = put(b, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line));
    Py_DECREF(line);
    return r;
}

/* "\tTTL\tIN\tTYPE\t" */
static int put_mid(Buf *b, unsigned long long ttl, unsigned rtype) {
    if (put(b, "\t", 1) < 0 || put_u(b, ttl) < 0 || put(b, "\tIN\t", 4) < 0 ||
        put_type(b, rtype) < 0)
        return -1;
    return put(b, "\t", 1);
}

static int u16_of(PyObject *o, unsigned *out) {
    if (!PyLong_Check(o))
        return unsupported("type is not an int");
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return unsupported("type out of range");
    }
    if (v < 0 || v > 65535)
        return unsupported("type out of range");
    *out = (unsigned)v;
    return 0;
}

static int u32_of(PyObject *o, unsigned long long *out) {
    if (!PyLong_Check(o))
        return unsupported("TTL is not an int");
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return unsupported("TTL out of range");
    }
    if (v > 0xFFFFFFFFull)
        return unsupported("TTL out of range");
    *out = v;
    return 0;
}

/* one RRset: each RR, then its RRSIGs; the owner's text is at b->p[owner_at:+owner_len] */
static int put_rrset(Buf *b, PyObject *rs, Py_ssize_t owner_at, Py_ssize_t owner_len) {
    if (!PyTuple_Check(rs) || PyTuple_GET_SIZE(rs) != 5)
        return unsupported("RRset is not a 5-tuple");
    unsigned rtype;
    unsigned long long ttl;
    if (u16_of(PyTuple_GET_ITEM(rs, 1), &rtype) < 0 || u32_of(PyTuple_GET_ITEM(rs, 2), &ttl) < 0)
        return -1;
    PyObject *rdatas = PyTuple_GET_ITEM(rs, 3), *sigs = PyTuple_GET_ITEM(rs, 4);
    if (!PyTuple_Check(rdatas) || !PyTuple_Check(sigs))
        return unsupported("rdatas or sigs not a tuple");
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(rdatas); k++) {
        if (buf_grow(b, owner_len) < 0)
            return -1;
        memmove(b->p + b->len, b->p + owner_at, (size_t)owner_len);
        b->len += owner_len;
        if (put_mid(b, ttl, rtype) < 0 || put_rdata(b, rtype, PyTuple_GET_ITEM(rdatas, k)) < 0)
            return -1;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(sigs); k++) {
        PyObject *sig = PyTuple_GET_ITEM(sigs, k);
        if (!PyBytes_Check(sig))
            return unsupported("RRSIG is not bytes");
        if (buf_grow(b, owner_len) < 0)
            return -1;
        memmove(b->p + b->len, b->p + owner_at, (size_t)owner_len);
        b->len += owner_len;
        if (put_mid(b, ttl, 46) < 0 ||
            put_rrsig(b, (const unsigned char *)PyBytes_AS_STRING(sig), PyBytes_GET_SIZE(sig)) < 0)
            return -1;
    }
    return 0;
}

/* one name's records: RRsets in order. The callbacks run Python code, so what is read from
 * the zone's lists is held (a reference of our own) while it is in use. */
static int put_node(Buf *b, PyObject *name, PyObject *rrsets) {
    if (!PyBytes_Check(name))
        return unsupported("name is not bytes");
    Py_ssize_t owner_at = b->len, next;
    const unsigned char *nd = (const unsigned char *)PyBytes_AS_STRING(name);
    Py_ssize_t nn = PyBytes_GET_SIZE(name);
    if (put_name(b, nd, 0, nn, &next) < 0)
        return -1;
    if (next != nn)
        return unsupported("data after the owner name");
    Py_ssize_t owner_len = b->len - owner_at;
    b->len = owner_at; /* written again before each record */
    if (!PyList_Check(rrsets))
        return unsupported("node is not a list");
    for (Py_ssize_t r = 0; r < PyList_GET_SIZE(rrsets); r++) {
        PyObject *rs = PyList_GET_ITEM(rrsets, r);
        Py_INCREF(rs);
        int rc = put_rrset(b, rs, owner_at, owner_len);
        Py_DECREF(rs);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static PyObject *render(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *nodes, *names, *origin, *apex, *lengths, *rdata_line, *type_name;
    if (!PyArg_ParseTuple(args, "O!O!O!OOOO:render", &PyDict_Type, &nodes, &PyList_Type,
                          &names, &PyBytes_Type, &origin, &apex, &lengths, &rdata_line,
                          &type_name))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(names);
    Buf b = {NULL, 0, 0, rdata_line, type_name};
    Py_ssize_t *sizes = NULL;
    PyObject *result = NULL;
    if (lengths != Py_None) {
        sizes = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(count ? count : 1));
        if (sizes == NULL)
            return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i >= PyList_GET_SIZE(names)) { /* a callback shortened it */
            unsupported("the names changed while they were rendered");
            goto done;
        }
        PyObject *name = PyList_GET_ITEM(names, i);
        PyObject *rrsets;
        if (PyBytes_Check(name) && PyBytes_GET_SIZE(name) == PyBytes_GET_SIZE(origin) &&
            memcmp(PyBytes_AS_STRING(name), PyBytes_AS_STRING(origin),
                   (size_t)PyBytes_GET_SIZE(origin)) == 0) {
            if (apex == Py_None) {
                unsupported("the apex without its RRsets in order");
                goto done;
            }
            rrsets = apex;
        } else {
            rrsets = PyDict_GetItemWithError(nodes, name); /* borrowed */
            if (rrsets == NULL) {
                if (!PyErr_Occurred())
                    unsupported("name not in the zone");
                goto done;
            }
        }
        Py_ssize_t before = b.len;
        Py_INCREF(rrsets); /* the callbacks could drop the node or the name meanwhile */
        Py_INCREF(name);
        int r = put_node(&b, name, rrsets);
        Py_DECREF(name);
        Py_DECREF(rrsets);
        if (r < 0)
            goto done;
        if (sizes != NULL)
            sizes[i] = b.len - before;
    }
    if (sizes != NULL) {
        PyObject *lst = PyList_New(count);
        if (lst == NULL)
            goto done;
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *v = PyLong_FromSsize_t(sizes[i]);
            if (v == NULL) {
                Py_DECREF(lst);
                goto done;
            }
            PyList_SET_ITEM(lst, i, v);
        }
        PyObject *r = PyObject_CallMethod(lengths, "extend", "O", lst);
        Py_DECREF(lst);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    result = PyBytes_FromStringAndSize(b.p ? b.p : "", b.len);
done:
    PyMem_Free(b.p);
    PyMem_Free(sizes);
    return result;
}

static PyMethodDef methods[] = {
    {"render", render, METH_VARARGS, "The signed zone text of a range of names (see the module)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_render", "Signed zone text in C (see output.names_text).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__render(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Unsupported = PyErr_NewException("_render.Unsupported", PyExc_ValueError, NULL);
    if (Unsupported == NULL || PyModule_AddObjectRef(m, "Unsupported", Unsupported) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
