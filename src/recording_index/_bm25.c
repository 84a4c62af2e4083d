/* ranked_bm25(): FTS5's bm25() with each phrase's IDF given by the caller, and each row's length
 * read from a compact table of lengths when the caller names one.
 *
 * FTS5's own bm25() counts, before it scores the first row, every row of the whole table that
 * holds each phrase of the query (filters included), to compute their IDF: at 10,000 hours that is
 * most of a search's time, whatever the results. This function scores as bm25() does (the same
 * constants, term frequencies weighted by column, the row's length against the table's mean)
 * but takes the IDFs as arguments: index/ranking.py estimates them from a few hundred matches.
 *
 *   ranked_bm25(fts_table, length_column, weight_1, ..., weight_nColumns, idfs[, lengths_table, lengths_column])
 *
 * `idfs`: one IDF per phrase of the query, as a blob of native doubles (one argument, so that a
 * query of many words stays within SQLite's limit on a function's arguments, 127 here).
 * `length_column`: the column whose size in tokens is the row's length (-1: all columns, as bm25()
 * counts; the index counts its text alone, not the word pairs and facets beside it).
 * `lengths_table`, `lengths_column`: where that column's sizes are kept, one byte a row, in blocks
 * of LENGTH_BLOCK rows (`block` = rowid / LENGTH_BLOCK, the column a blob of LENGTH_BLOCK bytes;
 * UNKNOWN_LENGTH for 255 tokens or more, or not known). FTS5 reads a row's length from its docsize
 * table, one B-tree lookup a row: 40-45 % of a rare word's search at 10,000 hours. The blocks are
 * read into memory once per connection, and again after the database changed (its data version);
 * a length they do not know is FTS5's. The caller keeps them right (index/database.py).
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
#define LENGTH_BLOCK 256
#define UNKNOWN_LENGTH 255

/* One column's lengths as read at one data version, shared by the statements that use them. */
typedef struct {
    int refs;
    sqlite3_int64 rows; /* the lengths of rowids 0 to rows - 1 */
    unsigned char *lengths;
} Lengths;

typedef struct Cached {
    char *table;
    char *column;
    int read;
    unsigned int version;
    Lengths *lengths; /* NULL: none to use (no such table, or not one a careful reader keeps) */
    struct Cached *next;
} Cached;

/* What the function keeps for one connection: the lengths it read. */
typedef struct {
    sqlite3 *db;
    Cached *cached;
} Connection;

typedef struct {
    int length_column;
    double mean_length;
    Lengths *lengths;
} TableAverages;

static void release(Lengths *lengths) {
    if (lengths != NULL && --lengths->refs == 0) {
        sqlite3_free(lengths->lengths);
        sqlite3_free(lengths);
    }
}

static void free_averages(void *averages) {
    release(((TableAverages *)averages)->lengths);
    sqlite3_free(averages);
}

static void free_connection(void *data) {
    Connection *connection = (Connection *)data;
    Cached *next;
    for (Cached *cached = connection->cached; cached != NULL; cached = next) {
        next = cached->next;
        release(cached->lengths);
        sqlite3_free(cached->table);
        sqlite3_free(cached->column);
        sqlite3_free(cached);
    }
    sqlite3_free(connection);
}

/* Every block of `table`.`column`, or NULL. The file may come from anywhere: a block that is not
 * LENGTH_BLOCK bytes is skipped, and blocks scattered far apart (which would take memory for rows
 * that are not there) make the whole table unused. */
static Lengths *read_lengths(sqlite3 *db, const char *table, const char *column) {
    char *sql = sqlite3_mprintf("SELECT block, \"%w\" FROM \"%w\" WHERE \"%w\" IS NOT NULL ORDER BY block", column,
                                table, column);
    if (sql == NULL) return NULL;
    sqlite3_stmt *statement = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &statement, NULL);
    sqlite3_free(sql);
    Lengths *found = rc == SQLITE_OK ? sqlite3_malloc(sizeof(Lengths)) : NULL;
    if (found == NULL) {
        sqlite3_finalize(statement);
        return NULL;
    }
    found->refs = 1;
    found->rows = 0;
    found->lengths = NULL;
    sqlite3_int64 capacity = 0, blocks = 0;
    while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
        sqlite3_int64 block = sqlite3_column_int64(statement, 0);
        const void *blob = sqlite3_column_blob(statement, 1);
        if (block < 0 || sqlite3_column_type(statement, 1) != SQLITE_BLOB ||
            sqlite3_column_bytes(statement, 1) != LENGTH_BLOCK)
            continue;
        if (block > 4 * blocks + 1024) {
            rc = SQLITE_CORRUPT;
            break;
        }
        sqlite3_int64 end = (block + 1) * LENGTH_BLOCK;
        if (end > capacity) {
            sqlite3_int64 wanted = capacity > 0 ? capacity : 64 * LENGTH_BLOCK;
            while (wanted < end) wanted *= 2;
            unsigned char *grown = sqlite3_realloc64(found->lengths, (sqlite3_uint64)wanted);
            if (grown == NULL) {
                rc = SQLITE_NOMEM;
                break;
            }
            memset(grown + capacity, UNKNOWN_LENGTH, (size_t)(wanted - capacity));
            found->lengths = grown;
            capacity = wanted;
        }
        memcpy(found->lengths + block * LENGTH_BLOCK, blob, LENGTH_BLOCK);
        if (end > found->rows) found->rows = end;
        blocks++;
    }
    sqlite3_finalize(statement);
    if (rc != SQLITE_DONE) {
        release(found);
        return NULL;
    }
    return found;
}

/* The lengths of `table`.`column` as this connection sees the database now (a reference the caller
 * releases), or NULL. */
static Lengths *lengths_of(Connection *connection, const char *table, const char *column) {
    unsigned int version = 0;
    /* In a transaction, this connection's own writes are not in the data version until it commits. */
    if (!sqlite3_get_autocommit(connection->db) ||
        sqlite3_file_control(connection->db, "main", SQLITE_FCNTL_DATA_VERSION, &version) != SQLITE_OK)
        return NULL;
    Cached *cached = connection->cached;
    while (cached != NULL && (strcmp(cached->table, table) != 0 || strcmp(cached->column, column) != 0))
        cached = cached->next;
    if (cached == NULL) {
        cached = sqlite3_malloc(sizeof(Cached));
        if (cached == NULL) return NULL;
        cached->table = sqlite3_mprintf("%s", table);
        cached->column = sqlite3_mprintf("%s", column);
        if (cached->table == NULL || cached->column == NULL) {
            sqlite3_free(cached->table);
            sqlite3_free(cached->column);
            sqlite3_free(cached);
            return NULL;
        }
        cached->read = 0;
        cached->lengths = NULL;
        cached->next = connection->cached;
        connection->cached = cached;
    }
    if (!cached->read || cached->version != version) {
        release(cached->lengths);
        cached->lengths = read_lengths(connection->db, table, column);
        cached->version = version;
        cached->read = 1;
    }
    if (cached->lengths != NULL) cached->lengths->refs++;
    return cached->lengths;
}

static void ranked_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nVal,
                        sqlite3_value **values) {
    int columns = api->xColumnCount(fts);
    int phrases = api->xPhraseCount(fts);
    if ((nVal != 1 + columns + 1 && nVal != 1 + columns + 3) ||
        sqlite3_value_bytes(values[1 + columns]) != (int)sizeof(double) * phrases) {
        sqlite3_result_error(ctx, "ranked_bm25: give the length's column, one weight per column, the "
                                  "phrases' IDFs as a blob of doubles, then maybe the lengths' table and column", -1);
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
        averages->lengths = NULL;
        const unsigned char *table = nVal > 1 + columns + 1 ? sqlite3_value_text(values[2 + columns]) : NULL;
        const unsigned char *column = nVal > 1 + columns + 1 ? sqlite3_value_text(values[3 + columns]) : NULL;
        if (table != NULL && column != NULL && length_column >= 0)
            averages->lengths = lengths_of((Connection *)api->xUserData(fts), (const char *)table, (const char *)column);
        rc = api->xSetAuxdata(fts, averages, free_averages);
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
    int length = -1;
    Lengths *known = averages->lengths;
    if (known != NULL) {
        sqlite3_int64 rowid = api->xRowid(fts);
        if (rowid >= 0 && rowid < known->rows && known->lengths[rowid] != UNKNOWN_LENGTH) length = known->lengths[rowid];
    }
    if (rc == SQLITE_OK && length < 0) rc = api->xColumnSize(fts, length_column, &length);
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
    Connection *connection = sqlite3_malloc(sizeof(Connection));
    if (connection == NULL) return SQLITE_OK; /* searches fall back to bm25() */
    connection->db = db;
    connection->cached = NULL;
    if (api->xCreateFunction(api, "ranked_bm25", connection, ranked_bm25, free_connection) != SQLITE_OK)
        sqlite3_free(connection);
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
