/*
 * unit_pg.c - throwaway PostgreSQL databases for unit tests (unit_pg.h).
 */
#include "unit_pg.h"
#include "unit.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *unit_pg_admin_url(void)
{
    const char *u = getenv("AOP_TEST_PG_URL");
    return u && u[0] ? u : NULL;
}

void unit_pg_skip_note(void)
{
    unit_skip_service("AOP_TEST_PG_URL is not set (PostgreSQL variants)");
}

/* url with its database name replaced by db, into out. -1 when it does not
 * fit or url is not a URL. */
static int url_with_db(const char *url, const char *db, char *out, size_t n)
{
    const char *s = strstr(url, "://");
    if (!s)
        return -1;
    s += 3;
    const char *path = s + strcspn(s, "/?#");
    const char *rest = *path == '/' ? path + 1 + strcspn(path + 1, "?#") : path;
    int len = snprintf(out, n, "%.*s/%s%s", (int)(path - url), url, db, rest);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

/* The database name of a URL made by url_with_db (the last path part). */
static void url_db(const char *url, char *db, size_t n)
{
    const char *s = strstr(url, "://");
    s = s ? s + 3 : url;
    const char *path = s + strcspn(s, "/?#");
    if (*path != '/') {
        db[0] = '\0';
        return;
    }
    snprintf(db, n, "%.*s", (int)strcspn(path + 1, "?#"), path + 1);
}

/* Server notices (DROP ... IF EXISTS skipping) are not test output. */
static void notice_quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

/* Runs sql on a connection to url; 0 or -1 (the error printed). */
static int admin_exec(const char *url, const char *sql)
{
    PGconn *pg = PQconnectdb(url);
    int ret = -1;
    PQsetNoticeProcessor(pg, notice_quiet, NULL);
    if (PQstatus(pg) != CONNECTION_OK) {
        printf("  unit_pg: cannot connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return -1;
    }
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
        ret = 0;
    else
        printf("  unit_pg: %s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    return ret;
}

bool unit_pg_fresh(char *url, size_t n)
{
    static atomic_int counter;
    const char *admin = unit_pg_admin_url();
    char db[64], sql[128];
    if (!admin)
        return false;
    snprintf(db, sizeof(db), "aop_unit_%ld_%d", (long)getpid(), atomic_fetch_add(&counter, 1));
    if (url_with_db(admin, db, url, n) != 0) {
        printf("  unit_pg: AOP_TEST_PG_URL is not a usable URL\n");
        return false;
    }
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    return admin_exec(admin, sql) == 0;
}

void unit_pg_drop(const char *url)
{
    const char *admin = unit_pg_admin_url();
    char db[64], sql[128];
    if (!admin || !url || !url[0])
        return;
    url_db(url, db, sizeof(db));
    if (strncmp(db, "aop_unit_", 9) != 0)
        return; /* only what unit_pg_fresh made */
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    admin_exec(admin, sql);
}

int unit_pg_text(const char *url, const char *sql, char *out, size_t outlen)
{
    int ret = -1;
    out[0] = '\0';
    PGconn *pg = PQconnectdb(url);
    PQsetNoticeProcessor(pg, notice_quiet, NULL);
    if (PQstatus(pg) != CONNECTION_OK)
        goto out;
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
        snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        ret = 0;
    else
        printf("  unit_pg: %s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
out:
    PQfinish(pg);
    return ret;
}
