/*
 * unit_store.c - fresh stores for unit tests (unit_store.h).
 */
#include "unit_store.h"
#include "unit.h"
#include "unit_pg.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SLOW_MS 1000000 /* never log slow operations in tests */

bool unit_db_open(unit_db *d, bool pg)
{
    char url[320], err[256] = "";
    int applied = 0;
    memset(d, 0, sizeof(*d));
    d->pg = pg;
    if (pg && !unit_pg_admin_url()) {
        unit_pg_skip_note();
        return false;
    }
    snprintf(d->dir, sizeof(d->dir), "/tmp/aop-unit-XXXXXX");
    if (pg ? !unit_pg_fresh(d->path, sizeof(d->path)) : !mkdtemp(d->dir)) {
        d->dir[0] = d->path[0] = '\0';
        unit_fail(__FILE__, __LINE__, "cannot make a database");
        return false;
    }
    if (!pg)
        snprintf(d->path, sizeof(d->path), "%s/aop.db", d->dir);
    snprintf(url, sizeof(url), "%s%s", pg ? "" : "sqlite://", d->path);
    d->s = store_open(url, SLOW_MS, err, sizeof(err));
    if (!d->s) {
        unit_fail(__FILE__, __LINE__, err);
        return false;
    }
    if (store_migrate(d->s, &applied) != AOP_OK) {
        unit_fail(__FILE__, __LINE__, "store_migrate");
        return false;
    }
    return true;
}

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}

void unit_db_close(unit_db *d)
{
    store_close(d->s);
    d->s = NULL;
    if (d->pg && d->path[0])
        unit_pg_drop(d->path);
    else if (!d->pg && d->dir[0])
        nftw(d->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

long long unit_db_int(const unit_db *d, const char *sql)
{
    char out[64] = "";
    if (d->pg)
        return unit_pg_text(d->path, sql, out, sizeof(out)) == 0 && out[0] ? atoll(out) : -1;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(d->path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close_v2(db);
    return v;
}

void unit_fixture_run(void (*body)(unit_fixture *f), bool pg)
{
    unit_fixture f = {0};
    if (unit_db_open(&f.db, pg)) {
        f.s = f.db.s;
        body(&f);
    }
    arena_free(&f.a);
    unit_db_close(&f.db);
}
