/*
 * ThreadSanitizer's settings for the tsan build (make tsan), linked into
 * build/tsan/aop and build/tsan/unit only. They are built in rather than taken
 * from TSAN_OPTIONS because the API tests start the server with an
 * environment of their own; TSAN_OPTIONS, when set, still overrides them.
 *
 * ignore_noninstrumented_modules=1: libmicrohttpd, libcurl, libpq, SQLite,
 * jansson and OpenSSL are not built with -fsanitize=thread. Their own memory
 * accesses are invisible to TSan anyway; this also makes the libc calls they
 * make (memcpy, strlen, free...) count as synchronisation only, not as
 * accesses. Their mutexes, condition variables and pipes are still seen, so
 * the ordering they give our code is kept and races in our code are still
 * reported. (A called_from_lib suppression would be wrong here: it ignores a
 * library's locking as well, which turns its mutexes into false reports.)
 *
 * TSAN_SUPPRESSIONS is the absolute path of tests/tsan/suppressions.txt,
 * given by the Makefile.
 */
const char *__tsan_default_options(void);

const char *__tsan_default_options(void)
{
    return "ignore_noninstrumented_modules=1 second_deadlock_stack=1 history_size=4"
           " suppressions=" TSAN_SUPPRESSIONS;
}
