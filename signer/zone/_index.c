/* The incremental signer's index of a signed zone, in C: locating a subtree among the
 * previous output's names, and the running sums of the index's lengths; and helpers of the
 * full sign: the NSEC3 owners merged into a shard's order, the NSEC3 chain sorted by hash,
 * the names' hashes looked up among the NSEC3 records (the chain check across shards), and
 * an input file's newlines, directives and $INCLUDE found in one pass without the GIL.
 *
 * Built by `make accel` with the mypyc modules (signer/zone/_accel_build.py) and used only
 * with them (the same source-hash guard). The Python code in incremental.py, nsec3.py,
 * chunkload.py and verify.py (_Find) is the specification: tests/test_index_c.py,
 * tests/test_nsec3.py and tests/test_chunkload.py compare the two.
 *
 * cumsum(values, initial) -> bytes
 *   values   a buffer of unsigned integers ("B" or "Q" items, an array.array)
 *   initial  true: the result starts with a 0 (n + 1 sums), else n sums
 *   The running sums as native uint64 (array("Q").frombytes takes them).
 *
 * merge_names(order, owners) -> list
 *   two lists of wire names, each in canonical order, merged into one (nsec3.insert_nsec3:
 *   the NSEC3 owners into a shard's order); an owner first when equal (as the Python
 *   loop; the caller has refused owners equal to names)
 *
 * common_prefix(a, i, b, j) -> int
 *   the length of the common prefix of a[i:] and b[j:] (incremental.diff's _common)
 *
 * input_scan(buf, lo, hi) -> (newlines, comments, directives, last_directive, include)
 *   within buf[lo:hi]: how often b"\n", b"\n;" and b"\n$" occur, the offset of the last
 *   b"\n$" (-1: none) and whether b"$include" occurs in any case (incremental's
 *   _input_scan: bytes.count, rfind and a regular expression in one pass over a mapped
 *   input)
 *
 * common_prefix and input_scan scan whole files: they release the GIL while they do (the
 * parent's main thread hands out the workers' tasks meanwhile).
 *
 * find_table(keys, width) -> bytes
 *   keys: a blob of records of ``width`` (>= 2) octets in ascending order (ValueError
 *   otherwise). The index of the first key of each first-two-octets bucket (65537 native
 *   Py_ssize_t): find's table.
 *
 * find(keys, width, table, queries, every) -> list[int]
 *   queries: a blob of records of ``width`` octets; table: find_table(keys, width) (checked
 *   to be a table of keys: ValueError). every: for each query, the index of the key equal
 *   to it, or -1; else only the positions of the queries found, ascending. The NSEC3 chain
 *   check (verify._nsec3_chain) looks up the names' hashes among the records'
 *
 * sort_by_hash(entries) -> list
 *   entries: a list of tuples whose first item is a hash of HASH_WIDTH (20) octets (an
 *   NSEC3 chain's entries; ValueError for anything else). A new list of the same tuples,
 *   sorted by hash, stable (equal hashes keep their order): nsec3.sort_chain. A counting
 *   sort on the first two octets, then insertion sort within each bucket (300k entries:
 *   ~6 per bucket).
 *
 * bisect_fixed(blob, width, key, right) -> int
 *   bisect.bisect_left (right: bisect_right) of key among the sorted records of ``width``
 *   octets that blob is made of (the NSEC3 chain's hashes).
 *
 * splice_index(lengths, namelens, blob, runs) -> (lengths, namelens, blob)
 *   The incremental state's index with runs of names replaced: lengths ("Q" buffer, n
 *   items) and namelens ("B" buffer, n items) per name of the previous output, blob its
 *   names concatenated; runs a list of tuples (lo, hi, run_lengths, run_names), ascending
 *   and disjoint (lo >= the previous hi, hi <= n): names [lo, hi) are replaced by
 *   run_names (a list of bytes of at most 255 octets) with run_lengths (a "Q" buffer, one
 *   item per name). Returns the three new ones as bytes (incremental._Plan.new_state;
 *   _splice_index_py is the specification). ValueError for runs that do not fit.
 *
 * locate(blob, ends, child) -> (lo, hi)
 *   blob   the names (canonical wire, lowercase), concatenated in canonical order
 *   ends   a "Q" buffer: where each name ends in blob
 *   child  a name (canonical wire, lowercase) right below the apex, names[0] being the
 *          apex itself
 *   lo: the first index in [1, n) whose name is not before child in canonical order
 *   (RFC 4034 sect. 6.1; n if none); hi: past the names from lo on that are child or
 *   below it. Raises ValueError on a malformed name (the caller then uses Python).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_LABELS 128

/* the offsets of a wire name's labels (length octets), the root's excluded; -1: malformed */
static int label_starts(const unsigned char *p, Py_ssize_t len, Py_ssize_t *starts) {
    int k = 0;
    Py_ssize_t i = 0;
    while (i < len) {
        unsigned l = p[i];
        if (l == 0)
            return i + 1 == len ? k : -1;
        if (l > 63 || k >= MAX_LABELS || i + 1 + (Py_ssize_t)l >= len)
            return -1;
        starts[k++] = i;
        i += 1 + l;
    }
    return -1;
}

/* canonical order of two wire names: labels compared from the rightmost, each as an octet
 * string (a shorter one first when it is a prefix); -2: malformed */
static int compare(const unsigned char *a, Py_ssize_t alen, const unsigned char *b,
                   Py_ssize_t blen) {
    Py_ssize_t sa[MAX_LABELS], sb[MAX_LABELS];
    int na = label_starts(a, alen, sa), nb = label_starts(b, blen, sb);
    if (na < 0 || nb < 0)
        return -2;
    for (int ia = na - 1, ib = nb - 1; ia >= 0 && ib >= 0; ia--, ib--) {
        unsigned la = a[sa[ia]], lb = b[sb[ib]];
        int c = memcmp(a + sa[ia] + 1, b + sb[ib] + 1, la < lb ? la : lb);
        if (c)
            return c < 0 ? -1 : 1;
        if (la != lb)
            return la < lb ? -1 : 1;
    }
    return (na > nb) - (na < nb);
}

/* name is child or below it (child ends name at one of name's label boundaries) */
static int at_or_below(const unsigned char *name, Py_ssize_t len, const unsigned char *child,
                       Py_ssize_t clen) {
    if (len < clen || memcmp(name + len - clen, child, clen) != 0)
        return 0;
    Py_ssize_t starts[MAX_LABELS];
    int k = label_starts(name, len, starts);
    if (k < 0)
        return -1;
    for (int j = 0; j < k; j++)
        if (starts[j] == len - clen)
            return 1;
    return len == clen;
}

static PyObject *cumsum(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer v;
    int initial;
    if (!PyArg_ParseTuple(args, "y*p", &v, &initial))
        return NULL;
    Py_ssize_t n = v.itemsize ? v.len / v.itemsize : 0;
    if (v.itemsize != 1 && v.itemsize != 8) {
        PyBuffer_Release(&v);
        PyErr_SetString(PyExc_ValueError, "cumsum: items of 1 or 8 octets");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (n + (initial ? 1 : 0)) * 8);
    if (out == NULL) {
        PyBuffer_Release(&v);
        return NULL;
    }
    uint64_t *o = (uint64_t *)PyBytes_AS_STRING(out);
    uint64_t s = 0;
    if (initial)
        *o++ = 0;
    if (v.itemsize == 1) {
        const unsigned char *p = v.buf;
        for (Py_ssize_t i = 0; i < n; i++)
            *o++ = s += p[i];
    } else {
        const uint64_t *p = v.buf;
        for (Py_ssize_t i = 0; i < n; i++)
            *o++ = s += p[i];
    }
    PyBuffer_Release(&v);
    return out;
}

static PyObject *locate(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer blob, ends, child;
    if (!PyArg_ParseTuple(args, "y*y*y*", &blob, &ends, &child))
        return NULL;
    PyObject *res = NULL;
    const unsigned char *base = blob.buf, *c = child.buf;
    const uint64_t *e = ends.buf;
    Py_ssize_t n = ends.len / 8;
    if (ends.itemsize != 8 || n < 1 || e[n - 1] != (uint64_t)blob.len) {
        PyErr_SetString(PyExc_ValueError, "locate: ends do not fit the blob");
        goto done;
    }
#define START(i) ((i) ? (Py_ssize_t)e[(i) - 1] : 0)
#define LEN(i) ((Py_ssize_t)e[i] - START(i))
    Py_ssize_t lo = 1, hi = n;
    while (lo < hi) { /* the first name not before child */
        Py_ssize_t mid = lo + (hi - lo) / 2;
        Py_ssize_t s = START(mid), l = LEN(mid);
        if (s < 0 || l < 0 || s + l > blob.len) {
            PyErr_SetString(PyExc_ValueError, "locate: ends go backwards");
            goto done;
        }
        int r = compare(base + s, l, c, child.len);
        if (r == -2) {
            PyErr_SetString(PyExc_ValueError, "locate: a malformed name");
            goto done;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    Py_ssize_t end = lo;
    while (end < n) { /* child's subtree: child and the names below it, contiguous */
        Py_ssize_t s = START(end), l = LEN(end);
        if (s < 0 || l < 0 || s + l > blob.len) {
            PyErr_SetString(PyExc_ValueError, "locate: ends go backwards");
            goto done;
        }
        int r = at_or_below(base + s, l, c, child.len);
        if (r < 0) {
            PyErr_SetString(PyExc_ValueError, "locate: a malformed name");
            goto done;
        }
        if (!r)
            break;
        end++;
    }
#undef START
#undef LEN
    res = Py_BuildValue("nn", lo, end);
done:
    PyBuffer_Release(&blob);
    PyBuffer_Release(&ends);
    PyBuffer_Release(&child);
    return res;
}

#define HASH_WIDTH 20

static PyObject *sort_by_hash(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *entries;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &entries))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(entries);
    const unsigned char **keys = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(*keys));
    Py_ssize_t *at = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(*at));
    Py_ssize_t *start = PyMem_Calloc(65537, sizeof(*start));
    PyObject *res = NULL;
    if (keys == NULL || at == NULL || start == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(entries, i);
        PyObject *h = PyTuple_Check(t) && PyTuple_GET_SIZE(t) ? PyTuple_GET_ITEM(t, 0) : NULL;
        if (h == NULL || !PyBytes_Check(h) || PyBytes_GET_SIZE(h) != HASH_WIDTH) {
            PyErr_SetString(PyExc_ValueError, "sort_by_hash: an entry without a 20-octet hash");
            goto done;
        }
        keys[i] = (const unsigned char *)PyBytes_AS_STRING(h);
        start[((unsigned)keys[i][0] << 8 | keys[i][1]) + 1]++;
    }
    for (int b = 0; b < 65536; b++)
        start[b + 1] += start[b];
    /* counting sort by the first two octets (stable), then insertion sort in each bucket */
    for (Py_ssize_t i = 0; i < n; i++)
        at[start[(unsigned)keys[i][0] << 8 | keys[i][1]]++] = i;
    Py_ssize_t lo = 0;
    for (int b = 0; b < 65536; b++) {
        Py_ssize_t hi = start[b]; /* the bucket's end (its start moved there) */
        for (Py_ssize_t j = lo + 1; j < hi; j++) {
            Py_ssize_t v = at[j], k = j;
            while (k > lo && memcmp(keys[at[k - 1]] + 2, keys[v] + 2, HASH_WIDTH - 2) > 0) {
                at[k] = at[k - 1];
                k--;
            }
            at[k] = v;
        }
        lo = hi;
    }
    res = PyList_New(n);
    if (res == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(entries, at[i]);
        Py_INCREF(t);
        PyList_SET_ITEM(res, i, t);
    }
done:
    PyMem_Free(keys);
    PyMem_Free(at);
    PyMem_Free(start);
    return res;
}

static PyObject *bisect_fixed(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer blob, key;
    Py_ssize_t width;
    int right;
    if (!PyArg_ParseTuple(args, "y*ny*p", &blob, &width, &key, &right))
        return NULL;
    PyObject *res = NULL;
    if (width <= 0 || blob.len % width || key.len != width) {
        PyErr_SetString(PyExc_ValueError, "bisect_fixed: records of another width");
        goto done;
    }
    const unsigned char *b = blob.buf, *k = key.buf;
    Py_ssize_t lo = 0, hi = blob.len / width;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        int c = memcmp(b + mid * width, k, width);
        if (c < 0 || (right && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    res = PyLong_FromSsize_t(lo);
done:
    PyBuffer_Release(&blob);
    PyBuffer_Release(&key);
    return res;
}

static PyObject *common_prefix(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer a, b;
    Py_ssize_t i, j;
    if (!PyArg_ParseTuple(args, "y*ny*n", &a, &i, &b, &j))
        return NULL;
    PyObject *res = NULL;
    if (i < 0 || j < 0 || i > a.len || j > b.len) {
        PyErr_SetString(PyExc_ValueError, "common_prefix: offset out of range");
    } else {
        const unsigned char *x = (const unsigned char *)a.buf + i;
        const unsigned char *y = (const unsigned char *)b.buf + j;
        Py_ssize_t limit = a.len - i < b.len - j ? a.len - i : b.len - j, k = 0;
        /* whole blocks by memcmp, then the octets of the first block that differs */
        Py_BEGIN_ALLOW_THREADS
        while (k + 4096 <= limit && memcmp(x + k, y + k, 4096) == 0)
            k += 4096;
        while (k < limit && x[k] == y[k])
            k++;
        Py_END_ALLOW_THREADS
        res = PyLong_FromSsize_t(k);
    }
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return res;
}

static int is_include(const unsigned char *p, const unsigned char *end) {
    static const char word[] = "include"; /* after the '$' at p */
    if (end - p < 8)
        return 0;
    for (int k = 0; k < 7; k++)
        if ((p[1 + k] | 0x20) != word[k])
            return 0;
    return 1;
}

static PyObject *input_scan(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer a;
    Py_ssize_t lo, hi;
    if (!PyArg_ParseTuple(args, "y*nn", &a, &lo, &hi))
        return NULL;
    PyObject *res = NULL;
    if (lo < 0 || hi > a.len || lo > hi) {
        PyErr_SetString(PyExc_ValueError, "input_scan: range out of bounds");
    } else {
        const unsigned char *p = (const unsigned char *)a.buf;
        Py_ssize_t newlines = 0, comments = 0, directives = 0, last = -1;
        int include = 0;
        Py_BEGIN_ALLOW_THREADS
        const unsigned char *q = p + lo, *end = p + hi;
        while (q < end) {
            const unsigned char *nl = memchr(q, '\n', (size_t)(end - q));
            if (nl == NULL)
                break;
            newlines++;
            if (nl + 1 < end) {
                if (nl[1] == ';') {
                    comments++;
                } else if (nl[1] == '$') {
                    directives++;
                    last = nl - p;
                }
            }
            q = nl + 1;
        }
        for (q = p + lo; q < end && !include;) {
            const unsigned char *d = memchr(q, '$', (size_t)(end - q));
            if (d == NULL)
                break;
            include = is_include(d, end);
            q = d + 1;
        }
        Py_END_ALLOW_THREADS
        res = Py_BuildValue("(nnnnO)", newlines, comments, directives, last,
                            include ? Py_True : Py_False);
    }
    PyBuffer_Release(&a);
    return res;
}

static PyObject *merge_names(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *order, *owners;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &order, &PyList_Type, &owners))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(order), m = PyList_GET_SIZE(owners), i = 0;
    PyObject *out = PyList_New(n + m);
    if (out == NULL)
        return NULL;
    Py_ssize_t k = 0;
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *o = PyList_GET_ITEM(owners, j);
        if (!PyBytes_Check(o))
            goto bad;
        const unsigned char *ob = (const unsigned char *)PyBytes_AS_STRING(o);
        Py_ssize_t ol = PyBytes_GET_SIZE(o);
        while (i < n) {
            PyObject *x = PyList_GET_ITEM(order, i);
            if (!PyBytes_Check(x))
                goto bad;
            int r = compare((const unsigned char *)PyBytes_AS_STRING(x), PyBytes_GET_SIZE(x),
                            ob, ol);
            if (r == -2)
                goto bad;
            if (r >= 0)
                break;
            Py_INCREF(x);
            PyList_SET_ITEM(out, k++, x);
            i++;
        }
        Py_INCREF(o);
        PyList_SET_ITEM(out, k++, o);
    }
    for (; i < n; i++) {
        PyObject *x = PyList_GET_ITEM(order, i);
        Py_INCREF(x);
        PyList_SET_ITEM(out, k++, x);
    }
    return out;
bad:
    Py_DECREF(out); /* the slots not yet set are NULL: list_dealloc skips them */
    PyErr_SetString(PyExc_ValueError, "merge_names: not canonical wire names");
    return NULL;
}

#define BUCKETS 65536

/* find_table(): keys bucketed by their first two octets (NSEC3 hashes are uniform): find
 * then searches the query's bucket, a few records, not the ~18 cache misses of a bisection
 * of the whole blob */
static PyObject *find_table(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer keys;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*n", &keys, &width))
        return NULL;
    PyObject *out = NULL;
    if (width < 2 || keys.len % width) {
        PyErr_SetString(PyExc_ValueError, "find_table: records of another width");
        goto done;
    }
    const unsigned char *k = keys.buf;
    Py_ssize_t n = keys.len / width;
    for (Py_ssize_t i = 1; i < n; i++) {
        if (memcmp(k + (i - 1) * width, k + i * width, width) > 0) {
            PyErr_SetString(PyExc_ValueError, "find_table: keys not in ascending order");
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, sizeof(Py_ssize_t) * (BUCKETS + 1));
    if (out == NULL)
        goto done;
    Py_ssize_t *start = (Py_ssize_t *)PyBytes_AS_STRING(out);
    Py_ssize_t i = 0;
    for (unsigned b = 0; b < BUCKETS; b++) { /* start[b]: the first key of bucket >= b */
        while (i < n && ((unsigned)k[i * width] << 8 | k[i * width + 1]) < b)
            i++;
        start[b] = i;
    }
    start[BUCKETS] = n;
done:
    PyBuffer_Release(&keys);
    return out;
}

static PyObject *find(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer keys, table, queries;
    Py_ssize_t width;
    int every;
    if (!PyArg_ParseTuple(args, "y*ny*y*p", &keys, &width, &table, &queries, &every))
        return NULL;
    PyObject *out = NULL;
    if (width < 2 || keys.len % width || queries.len % width) {
        PyErr_SetString(PyExc_ValueError, "find: records of another width");
        goto done;
    }
    const unsigned char *k = keys.buf, *q = queries.buf;
    const Py_ssize_t *start = table.buf;
    Py_ssize_t n = keys.len / width, m = queries.len / width;
    /* a table of these keys' size, never pointing outside them (the search stays inside) */
    int ok = table.len == (Py_ssize_t)sizeof(Py_ssize_t) * (BUCKETS + 1) &&
             start[0] == 0 && start[BUCKETS] == n;
    for (unsigned b = 0; ok && b < BUCKETS; b++)
        ok = start[b] <= start[b + 1];
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "find: not a table of these keys");
        goto done;
    }
    out = PyList_New(every ? m : 0);
    if (out == NULL)
        goto done;
    for (Py_ssize_t j = 0; j < m; j++) {
        const unsigned char *key = q + j * width;
        unsigned b = (unsigned)key[0] << 8 | key[1];
        Py_ssize_t lo = start[b], hi = start[b + 1], at = -1;
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            int c = memcmp(k + mid * width, key, width);
            if (c == 0) {
                at = mid;
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (!every && at < 0)
            continue;
        PyObject *v = PyLong_FromSsize_t(every ? at : j);
        if (v == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        if (every) {
            PyList_SET_ITEM(out, j, v); /* the slots not yet set are NULL: list_dealloc skips them */
        } else if (PyList_Append(out, v) < 0) {
            Py_DECREF(v);
            Py_CLEAR(out);
            goto done;
        } else {
            Py_DECREF(v);
        }
    }
done:
    PyBuffer_Release(&keys);
    PyBuffer_Release(&table);
    PyBuffer_Release(&queries);
    return out;
}

/* splice_index(): see the top of the file. Two passes over the runs: the sizes, then the
 * copies (one memcpy per unchanged range of each of the three). */
static PyObject *splice_index(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer lv, nv, bv;
    PyObject *runs;
    if (!PyArg_ParseTuple(args, "y*y*y*O!", &lv, &nv, &bv, &PyList_Type, &runs))
        return NULL;
    PyObject *res = NULL, *lo_out = NULL, *no_out = NULL, *bo_out = NULL;
    Py_buffer *rl = NULL;
    Py_ssize_t got = 0; /* run buffers acquired (released at done) */
    Py_ssize_t nruns = PyList_GET_SIZE(runs);
    Py_ssize_t n = nv.len;
    const uint64_t *lengths = lv.buf;
    const unsigned char *namelens = nv.buf, *blob = bv.buf;
    if (lv.len != n * 8) {
        PyErr_SetString(PyExc_ValueError, "splice_index: lengths and namelens differ in size");
        goto done;
    }
    {
        Py_ssize_t total = 0; /* the names must fill the blob exactly (the copies rely on it) */
        for (Py_ssize_t i = 0; i < n; i++)
            total += namelens[i];
        if (total != bv.len)
            goto bad;
    }
    rl = PyMem_Calloc(nruns ? nruns : 1, sizeof(Py_buffer));
    if (rl == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t names = n, octets = bv.len, prev = 0;
    for (Py_ssize_t r = 0; r < nruns; r++) {
        PyObject *t = PyList_GET_ITEM(runs, r);
        Py_ssize_t lo, hi;
        PyObject *rnames;
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 4)
            goto bad;
        lo = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
        hi = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
        if (PyErr_Occurred())
            goto done;
        rnames = PyTuple_GET_ITEM(t, 3);
        if (lo < prev || hi < lo || hi > n || !PyList_Check(rnames))
            goto bad;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(t, 2), &rl[r], PyBUF_SIMPLE) < 0)
            goto done;
        got = r + 1;
        Py_ssize_t m = PyList_GET_SIZE(rnames);
        if (rl[r].len != m * 8)
            goto bad;
        names += m - (hi - lo);
        for (Py_ssize_t i = lo; i < hi; i++)
            octets -= namelens[i];
        for (Py_ssize_t i = 0; i < m; i++) {
            PyObject *x = PyList_GET_ITEM(rnames, i);
            if (!PyBytes_Check(x) || PyBytes_GET_SIZE(x) > 255)
                goto bad;
            octets += PyBytes_GET_SIZE(x);
        }
        prev = hi;
    }
    lo_out = PyBytes_FromStringAndSize(NULL, names * 8);
    no_out = PyBytes_FromStringAndSize(NULL, names);
    bo_out = PyBytes_FromStringAndSize(NULL, octets);
    if (lo_out == NULL || no_out == NULL || bo_out == NULL)
        goto done;
    {
        char *lo_p = PyBytes_AS_STRING(lo_out), *no_p = PyBytes_AS_STRING(no_out);
        char *bo_p = PyBytes_AS_STRING(bo_out);
        Py_ssize_t cur = 0, pos = 0; /* old name index, its start in blob */
        for (Py_ssize_t r = 0; r <= nruns; r++) {
            Py_ssize_t lo = n, hi = n;
            PyObject *rnames = NULL;
            if (r < nruns) {
                PyObject *t = PyList_GET_ITEM(runs, r);
                lo = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
                hi = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
                rnames = PyTuple_GET_ITEM(t, 3);
            }
            /* the unchanged names [cur, lo) */
            Py_ssize_t span = 0;
            for (Py_ssize_t i = cur; i < lo; i++)
                span += namelens[i];
            memcpy(lo_p, lengths + cur, (lo - cur) * 8);
            lo_p += (lo - cur) * 8;
            memcpy(no_p, namelens + cur, lo - cur);
            no_p += lo - cur;
            memcpy(bo_p, blob + pos, span);
            bo_p += span;
            pos += span;
            if (rnames == NULL)
                break;
            /* the run's names instead of [lo, hi) */
            for (Py_ssize_t i = lo; i < hi; i++)
                pos += namelens[i];
            Py_ssize_t m = PyList_GET_SIZE(rnames);
            memcpy(lo_p, rl[r].buf, m * 8);
            lo_p += m * 8;
            for (Py_ssize_t i = 0; i < m; i++) {
                PyObject *x = PyList_GET_ITEM(rnames, i);
                Py_ssize_t k = PyBytes_GET_SIZE(x);
                *no_p++ = (char)k;
                memcpy(bo_p, PyBytes_AS_STRING(x), k);
                bo_p += k;
            }
            cur = hi;
        }
    }
    res = PyTuple_Pack(3, lo_out, no_out, bo_out);
    goto done;
bad:
    PyErr_SetString(PyExc_ValueError, "splice_index: runs that do not fit the index");
done:
    for (Py_ssize_t r = 0; rl != NULL && r < got; r++)
        PyBuffer_Release(&rl[r]);
    PyMem_Free(rl);
    Py_XDECREF(lo_out);
    Py_XDECREF(no_out);
    Py_XDECREF(bo_out);
    PyBuffer_Release(&lv);
    PyBuffer_Release(&nv);
    PyBuffer_Release(&bv);
    return res;
}

static PyMethodDef methods[] = {
    {"find_table", find_table, METH_VARARGS,
     "find's table of sorted key records (the first key of each two-octet bucket)."},
    {"find", find, METH_VARARGS,
     "Each query record's index among sorted key records (or -1), or the queries found."},
    {"merge_names", merge_names, METH_VARARGS,
     "Two lists of names in canonical order merged into one."},
    {"common_prefix", common_prefix, METH_VARARGS,
     "The length of the common prefix of a[i:] and b[j:] (two buffers)."},
    {"sort_by_hash", sort_by_hash, METH_VARARGS,
     "A list of tuples sorted (stably) by their first item, a 20-octet hash."},
    {"bisect_fixed", bisect_fixed, METH_VARARGS,
     "bisect_left (or _right) of a key among sorted records of one width in a blob."},
    {"input_scan", input_scan, METH_VARARGS,
     "Counts of \\n, \\n; and \\n$, the last \\n$ and $include in buf[lo:hi] (no GIL)."},
    {"cumsum", cumsum, METH_VARARGS, "Running sums of a buffer of 1- or 8-octet items."},
    {"locate", locate, METH_VARARGS, "(lo, hi) of a child's subtree among sorted names."},
    {"splice_index", splice_index, METH_VARARGS,
     "The incremental state's index with runs of names replaced."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_index", "The incremental signer's index helpers.", -1, methods,
};

PyMODINIT_FUNC PyInit__index(void) { return PyModule_Create(&module); }
