/* ranked_bm25(): FTS5's bm25() with each phrase's IDF given by the caller.
 *
 * FTS5's own bm25() counts, before it scores the first row, every row of the whole table that
 * holds each phrase of the query (filters included), to compute their IDF: at 10,000 hours that is
 * most of a search's time, whatever the results. This function scores as bm25() does (the same
 * constants, term frequencies weighted by column, the row's length against the table's mean)
 * but takes the IDFs as arguments: index/ranking.py estimates them from a few hundred matches.
 *
 *   ranked_bm25(fts_table, length_column, weight_1, ..., weight_nColumns, idfs)
 *
 * `idfs`: one IDF per phrase of the query, as a blob of native doubles (one argument, so that a
 * query of many words stays within SQLite's limit on a function's arguments, 127 here).
 * `length_column`: the column whose size in tokens is the row's length (-1: all columns, as bm25()
 * counts; the index counts its text alone, not the word pairs and facets beside it).
 * It returns minus the score, as bm25() does (lower is better). Importing the Python module
 * `recording_index._bm25` registers the function, through sqlite3_auto_extension, on every SQLite
 * connection opened after it; it needs the process's SQLite to be the one it was linked with.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sqlite3.h>
#include <string.h>

#define K1 1.2
#define B 0.75

typedef struct {
    int length_column;
    double mean_length;
} TableAverages;

static void ranked_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nVal,
                        sqlite3_value **values) {
    int columns = api->xColumnCount(fts);
    int phrases = api->xPhraseCount(fts);
    if (nVal != 1 + columns + 1 || sqlite3_value_bytes(values[1 + columns]) != (int)sizeof(double) * phrases) {
        sqlite3_result_error(ctx, "ranked_bm25: give the length's column, one weight per column, then the "
                                  "phrases' IDFs as a blob of doubles", -1);
        return;
    }
    int length_column = sqlite3_value_int(values[0]);
    if (length_column < -1 || length_column >= columns) {
        sqlite3_result_error(ctx, "ranked_bm25: no such column for the length", -1);
        return;
    }
    sqlite3_value **weights = values + 1;
    const unsigned char *idfs = sqlite3_value_blob(values[1 + columns]);
    /* The table's mean row length is read once per statement, as bm25() does. */
    TableAverages *averages = (TableAverages *)api->xGetAuxdata(fts, 0);
    if (averages == NULL || averages->length_column != length_column) {
        sqlite3_int64 rows = 0, tokens = 0;
        int rc = api->xRowCount(fts, &rows);
        if (rc == SQLITE_OK) rc = api->xColumnTotalSize(fts, length_column, &tokens);
        if (rc != SQLITE_OK) {
            sqlite3_result_error_code(ctx, rc);
            return;
        }
        averages = sqlite3_malloc(sizeof(TableAverages));
        if (averages == NULL) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
        averages->length_column = length_column;
        averages->mean_length = rows > 0 ? (double)tokens / (double)rows : 1.0;
        if (averages->mean_length <= 0) averages->mean_length = 1.0;
        rc = api->xSetAuxdata(fts, averages, sqlite3_free);
        if (rc != SQLITE_OK) {
            sqlite3_result_error_code(ctx, rc);
            return;
        }
    }
    double *frequency = sqlite3_malloc64(sizeof(double) * (phrases > 0 ? phrases : 1));
    if (frequency == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (int i = 0; i < phrases; i++) frequency[i] = 0.0;
    int instances = 0;
    int rc = api->xInstCount(fts, &instances);
    for (int i = 0; rc == SQLITE_OK && i < instances; i++) {
        int phrase, column, offset;
        rc = api->xInst(fts, i, &phrase, &column, &offset);
        if (rc == SQLITE_OK && phrase >= 0 && phrase < phrases && column >= 0 && column < columns) {
            frequency[phrase] += sqlite3_value_double(weights[column]);
        }
    }
    int length = 0;
    if (rc == SQLITE_OK) rc = api->xColumnSize(fts, length_column, &length);
    if (rc != SQLITE_OK) {
        sqlite3_free(frequency);
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    double norm = K1 * (1.0 - B + B * (double)length / averages->mean_length);
    double score = 0.0;
    for (int i = 0; i < phrases; i++) {
        double idf;
        memcpy(&idf, idfs + i * sizeof(double), sizeof(double)); /* a blob need not be aligned */
        score += idf * (frequency[i] * (K1 + 1.0)) / (frequency[i] + norm);
    }
    sqlite3_free(frequency);
    sqlite3_result_double(ctx, -1.0 * score);
}

/* The FTS5 API of a connection (SQLite's documented way: a pointer bound to "SELECT fts5(?1)"). */
static fts5_api *fts5_of(sqlite3 *db) {
    fts5_api *api = NULL;
    sqlite3_stmt *statement = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &statement, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(statement, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(statement);
    }
    sqlite3_finalize(statement);
    return api;
}

static int register_on(sqlite3 *db, char **error, const void *routines) {
    (void)error;
    (void)routines;
    fts5_api *api = fts5_of(db);
    if (api == NULL || api->iVersion < 2) return SQLITE_OK; /* no FTS5 here: searches fall back to bm25() */
    api->xCreateFunction(api, "ranked_bm25", NULL, ranked_bm25, NULL);
    return SQLITE_OK;
}

static PyObject *sqlite_version(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyUnicode_FromString(sqlite3_libversion());
}

static PyMethodDef methods[] = {
    {"sqlite_version", sqlite_version, METH_NOARGS, "The version of the SQLite library this module registered with."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bm25",
    "Registers ranked_bm25(), FTS5's bm25() with given IDFs, on every SQLite connection opened after import.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__bm25(void) {
    if (sqlite3_auto_extension((void (*)(void))register_on) != SQLITE_OK) {
        PyErr_SetString(PyExc_ImportError, "sqlite3_auto_extension failed");
        return NULL;
    }
    return PyModule_Create(&module);
}
