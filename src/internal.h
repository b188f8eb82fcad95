/* SPDX-License-Identifier: MIT */
/* internal.h - shared internals of libbkoauth: errors, logging, parsed settings, small helpers.
 * Not installed. Every file of src/ includes it. */
#ifndef BKOAUTH_INTERNAL_H
#define BKOAUTH_INTERNAL_H

#include "bkoauth.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define BK_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BK_PRINTF(f, a)
#endif

/* ---- errors (error.c) ------------------------------------------------------------------- */

/* Fills err (when not NULL) with code and a formatted message; returns code. Other fields
 * (http_status, api_code) are reset to 0. */
bkoauth_code err_set(bkoauth_error *err, bkoauth_code code, const char *fmt, ...) BK_PRINTF(3, 4);
/* Marks err as success (code OK, empty message, zeroes); returns BKOAUTH_OK. */
bkoauth_code err_ok(bkoauth_error *err);
/* Puts "<context>: " in front of err's message, keeping code and the rest (the layer that knows
 * what went wrong writes the message; layers above add context). */
void err_prefix(bkoauth_error *err, const char *fmt, ...) BK_PRINTF(2, 3);
/* Same as err_set(err, BKOAUTH_E_NOMEM, ...). */
bkoauth_code err_nomem(bkoauth_error *err);

/* ---- logging (log.c) -------------------------------------------------------------------- */

typedef struct bk_logger {
    bkoauth_log_fn fn; /* NULL: silent */
    void *ctx;
    int level; /* messages with level <= this are passed on; BKOAUTH_LOG_OFF: none */
} bk_logger;

/* The default sink: "bkoauth: <level>: <message>\n" to stderr. */
void log_stderr(void *ctx, int level, const char *message);
/* Formats and passes one line to the logger when its level allows. NULL logger: nothing.
 * The line passes bk_scrub() first. */
void log_write(const bk_logger *logger, int level, const char *fmt, ...) BK_PRINTF(3, 4);
/* The same, at any level of the logger except off (BKOAUTH_LOG_OFF): for what an operator must
 * see whatever BKOAUTH_LOG_LEVEL says (TLS verification turned off). */
void log_always(const bk_logger *logger, int level, const char *fmt, ...) BK_PRINTF(3, 4);
/* "error", "warning", "info", "debug". */
const char *log_level_name(int level);

/* ---- memory (alloc.c) ---------------------------------------------------------------------
 * Every allocation of the library goes through these, never through malloc(), calloc(),
 * realloc(), free(), strdup(), strndup() or json_dumps() directly: they call the allocators of
 * bkoauth_set_allocators() (the C library's by default) and count failures. Memory from them is
 * freed with bkoauth__free() (or a function that calls it, such as bkoauth_token_free()), and
 * memory from elsewhere never is. A size of 0 is asked as 1, so NULL always means out of
 * memory. */
void *bkoauth__malloc(size_t size);
void *bkoauth__calloc(size_t count, size_t size);
void *bkoauth__realloc(void *ptr, size_t size);
void bkoauth__free(void *ptr); /* NULL is fine */
/* Frees a block that another library made with the C library's malloc() and leaves to its user
 * to free (the MariaDB connector's, mysql_conn.c): never one of the library's allocators'. */
void bkoauth__libc_free(void *ptr);
/* libcurl's blocks: from the library's pool (slab.c) unless the program gave its own allocators
 * or the pool has no room, then from the allocators above; freed by bkoauth__free() either way */
void *bkoauth__pooled_malloc(size_t size);
void *bkoauth__pooled_calloc(size_t count, size_t size);
void *bkoauth__pooled_realloc(void *ptr, size_t size);
char *bkoauth__pooled_strdup(const char *s);
void *bkoauth__pool_try(size_t size); /* a block of the pool, or NULL (nothing counted as failed) */
/* slab.c: the pool itself. slab_malloc returns NULL when the request is too big for it, it has
 * no room, or it is off (sanitizer builds); slab_owns tells its blocks from others (NULL: 0) */
void *bkoauth__slab_malloc(size_t size);
void bkoauth__slab_free(void *p);
int bkoauth__slab_owns(const void *p);
size_t bkoauth__slab_block_size(const void *p);
size_t bkoauth__slab_bytes(void);                /* bytes of the pool made usable so far */
char *bkoauth__strdup(const char *s);            /* NULL gives NULL (not counted as a failure) */
char *bkoauth__strndup(const char *s, size_t n); /* the first n bytes and a NUL; NULL gives NULL */
/* How many allocations failed on this thread so far (through the functions above, and through
 * Jansson and libcurl when they allocate through the library). Take it before a call into code
 * that cannot say "out of memory" apart from other failures, compare after: a change means an
 * allocation failed in between, and the failure is BKOAUTH_E_NOMEM. */
unsigned long bkoauth__alloc_failures(void);
/* Zeroes n bytes at p in a way the compiler keeps (explicit_bzero): every secret is cleared with
 * it before its memory is freed or reused. NULL is fine. */
void bkoauth__wipe(void *p, size_t n);
void bkoauth__wipe_free(void *p, size_t n); /* bkoauth__wipe() then bkoauth__free(); NULL is fine */
/* Gives the C library's free pages back to the system (glibc's malloc_trim(0): every arena's
 * free pages are dropped with MADV_DONTNEED) at most once every seconds seconds in the process,
 * whichever thread comes first; 0 never. Called where no lock of the library is held, after a
 * store read or a renewal, never on the cached path (BKOAUTH_MEMORY_TRIM_SECONDS; alloc.c).
 * Returns 1 when this call trimmed. */
int bkoauth__memory_trim_maybe(int seconds);
/* How many times the process trimmed (for tests). */
unsigned long bkoauth__memory_trims(void);
/* 1 when libcurl allocates through the library (so that bkoauth__alloc_failures() sees its
 * failures): it does unless the program initialised libcurl before the first SSM call
 * (src/ssm/curl_dl.c, where libcurl is loaded and initialised with the library's allocators). */
int bkoauth__curl_allocations_counted(void);

/* ---- strings and memory (util.c) -------------------------------------------------------- */

char *bk_strdup(const char *s);             /* bkoauth__strdup(): NULL gives NULL */
char *bk_strndup(const char *s, size_t n);  /* bkoauth__strndup() */
void bk_wipe_free(char *s);                 /* wipes a secret string (bkoauth__wipe), then frees it */
int bk_streq(const char *a, const char *b); /* NULL-safe equality; NULL equals NULL only */
int bk_empty(const char *s);                /* NULL or "" */
size_t bk_utf8_chars(const char *s);        /* characters of UTF-8 text (bytes that start one) */

/* ---- clocks (util.c) ---------------------------------------------------------------------
 * Two clocks, never mixed: the wall clock for what is a date (a token's expires, EXPIRES_SECONDS,
 * a JWT's exp/nbf, created_at, what is written to the database), and CLOCK_MONOTONIC for every
 * interval the library measures (back-off, cache age, lock waits, patience, retries, log
 * spacing), which a step of the wall clock (NTP, a container started with a wrong time) must
 * neither stretch nor cut short. */
/* The wall clock: Unix seconds (CLOCK_REALTIME, coarse), plus bk_wall_offset. */
int64_t bk_now(void);
/* Milliseconds of CLOCK_MONOTONIC (an arbitrary origin: compare two readings only). */
int64_t bk_monotonic_ms(void);
/* The same of CLOCK_MONOTONIC_COARSE (a few ms of resolution, cheaper): for the cache. */
int64_t bk_monotonic_coarse_ms(void);
/* Tests only (never set by the library): seconds added to bk_now(), so that a test can step the
 * wall clock where libfaketime cannot be preloaded (sanitizer builds). 0 otherwise. */
extern _Atomic int64_t bk_wall_offset;

/* A growable string buffer. On allocation failure the buffer sets oom and ignores further
 * appends; check oom once at the end. A buffer with secret set (it may hold a secret) never
 * leaves a copy behind: growing it wipes the old block, and buf_free() wipes it. */
typedef struct bk_buf {
    char *data;
    size_t len, cap;
    int oom;
    int secret;
} bk_buf;
void buf_append(bk_buf *b, const char *s, size_t n);
void buf_puts(bk_buf *b, const char *s);
void buf_printf(bk_buf *b, const char *fmt, ...) BK_PRINTF(2, 3);
/* Appends s percent-encoded as application/x-www-form-urlencoded (space as %20, unreserved
 * characters RFC 3986 kept). */
void buf_urlencode(bk_buf *b, const char *s);
/* Frees the data (wiped first when secret is set) and empties the buffer; secret is kept. */
void buf_free(bk_buf *b);

/* ---- token helpers (token.c) ------------------------------------------------------------ */

/* A new token with copies of the strings (NULL refresh_token/scope become ""; user_id NULL or ""
 * becomes NULL), as ONE allocation: the only way the library builds a token, so that
 * bkoauth_token_free() can free it with one free(). NULL on OOM. */
bkoauth_token *token_make(const char *access_token, const char *refresh_token, const char *scope,
                          const char *env_name, const char *user_id, int64_t expires, int64_t created_at);
/* The bytes of the one block token_make() would make for a copy of token (0: too long). */
/* t moved into the library's pool (alloc.c): for tokens that live long or come by the hundred
 * (listed tokens, grants kept unsaved), which in glibc's heap pin the arena of the thread that
 * made them. t itself when the pool is off or full; NULL for NULL. Freed by bkoauth_token_free. */
bkoauth_token *token_to_pool(bkoauth_token *t);
size_t token_block_size(const bkoauth_token *token);
/* A copy of token laid out in block (size bytes, not overlapping token), as token_make() lays it
 * out; NULL when it does not fit. For blocks that are reused (the cache's slots). */
bkoauth_token *token_copy_into(void *block, size_t size, const bkoauth_token *token);
/* expires - now < expires_seconds */
int token_expiring(const bkoauth_token *token, int64_t expires_seconds, int64_t now);

/* ---- lists of string pairs (kvlist.c) --------------------------------------------------- */

/* A list of string pairs in a fixed order (order of the JSON object as written). */
typedef struct bk_kv {
    char *key;
    char *value;
} bk_kv;
typedef struct bk_kvlist {
    bk_kv *items;
    size_t count;
} bk_kvlist;
void kvlist_clear(bk_kvlist *list);
/* Appends copies of key and value. Returns 0, or -1 when out of memory. */
int kvlist_add(bk_kvlist *list, const char *key, const char *value);

/* ---- text for people and logs (scrub.c) --------------------------------------------------
 * Every message and log line passes bk_scrub() (err_set, err_prefix and log_write call it): the
 * secrets the calling thread knows are masked, whatever their encoding, before the text is cut
 * to fit, and no byte from outside can start a line or drive a terminal. */

/* Secrets shorter than this are not looked for (they would match ordinary words). */
#define BK_SCRUB_MIN_SECRET 4
/* The secrets in play on this thread: the app secret, a refresh_token, a request's credentials,
 * tokens being saved. Entered on the stack, left before the pointers go stale. */
typedef struct bk_scope {
    const char *secret[8];
    size_t n;
    const bk_kvlist *list; /* more secrets: the values of a list (credentials), may be NULL */
    struct bk_scope *prev;
} bk_scope;
void bk_scope_enter(bk_scope *s);                   /* empties s and makes it the thread's scope */
void bk_scope_add(bk_scope *s, const char *secret); /* NULL, short ones and those past 8 ignored */
void bk_scope_leave(bk_scope *s);                   /* back to the scope before s */

enum {
    BK_SCRUB_QUOTE = 1, /* also escape '"' and '\\' (for text shown between quotes) */
    BK_SCRUB_CUT = 2    /* text was cut short: a secret it ends in the middle of is left out, and
                           "..." marks the cut */
};
/* Writes len bytes of text into out (size bytes, always NUL-terminated) for a person: each
 * secret of the thread's scopes, raw, percent-encoded (either case), with '+' for a space,
 * JSON-escaped or any mixture of these, replaced by its mask (bkoauth_mask); control characters
 * as \n, \r, \t or \xNN; bytes that are not UTF-8 as \xNN; C1 controls, text-direction marks
 * and line separators as \uNNNN; then, when it does not fit, cut on a character boundary and
 * ended with "...". Never allocates. Returns the length written. */
size_t bk_scrub(char *out, size_t size, const char *text, size_t len, unsigned flags);

/* ---- settings (settings.c, config_file.c) ---------------------------------------------- */

enum { BK_PROTO_IEOD = 0, BK_PROTO_EE = 1 };
enum { BK_STORE_SQLITE = 0, BK_STORE_POSTGRES = 1, BK_STORE_MYSQL = 2 };

/* Settings checked and converted, as the client uses them. Built by settings_from_config(). */
typedef struct bk_settings {
    char *api_url;               /* OAUTH_API_URL without trailing '/'; NULL when unset */
    bk_kvlist cookies_params;    /* OAUTH_COOKIES_PARAMS: key = request param, value = cookie name */
    bk_kvlist oauth_params;      /* OAUTH_PARAMS: values as text (strings as is, other JSON as JSON,
                                    booleans True/False as Python's str() writes them) */
    char *oauth_params_json;     /* OAUTH_PARAMS as compact JSON text, for the ee body ("{}" default) */
    char *app_code;              /* effective for SSM calls: BKAUTH_TOKEN_APP_CODE or APP_CODE; may be NULL */
    char *app_secret;            /* BKAUTH_TOKEN_SECRET_KEY or SECRET_KEY; may be NULL */
    char env_name[8];            /* "prod" or "test" */
    int64_t expires_seconds;     /* EXPIRES_SECONDS */
    int need_new_token;          /* OAUTH_NEED_NEW_TOKEN */
    int protocol;                /* BK_PROTO_* from BKAUTH_BACKEND_TYPE */
    char *apigw_public_key;      /* PEM or NULL */
    int store_kind;              /* BK_STORE_* from BKOAUTH_DATABASE_URL */
    char *database_url;          /* as written */
    char *database_path;         /* SQLite: the path after "sqlite:"; NULL otherwise */
    int db_local_time;           /* BKOAUTH_DB_TIME_ZONE=local */
    struct bk_zone *db_zone;     /* BKOAUTH_DB_TIME_ZONE: NULL UTC, zone_local(), or a named zone */
    long timeout_ms;             /* BKOAUTH_TIMEOUT_MS */
    int tls_verify;              /* BKOAUTH_TLS_VERIFY */
    char *ca_file;               /* BKOAUTH_CA_FILE or NULL */
    char *ca_path;               /* BKOAUTH_CA_PATH or NULL */
    char *proxy;                 /* BKOAUTH_PROXY as written (may hold a password); NULL when unset,
                                    "" or "none": no proxy */
    char *no_proxy;              /* BKOAUTH_NO_PROXY; NULL when unset */
    int log_level;               /* BKOAUTH_LOG_* */
    int cache_seconds;           /* BKOAUTH_CACHE_SECONDS */
    int db_connections;          /* BKOAUTH_DB_CONNECTIONS: most connections a client opens to its store */
    int64_t backoff_seconds;     /* BKOAUTH_BACKOFF_SECONDS: first wait after a failed renewal (0: none) */
    int64_t backoff_max_seconds; /* BKOAUTH_BACKOFF_MAX_SECONDS: the longest wait */
    int memory_trim_seconds;     /* BKOAUTH_MEMORY_TRIM_SECONDS: free pages given back at most this often (0:
                                    never) */
} bk_settings;

/* Checks and converts config into out (zeroed first; settings.c). OAUTH_API_URL may be unset
 * here; the SSM layer reports that when a call needs it. Returns BKOAUTH_E_CONFIG naming the
 * setting. */
bkoauth_code settings_from_config(const bkoauth_config *config, bk_settings *out, bkoauth_error *err);
void settings_clear(bk_settings *s);
/* Parses settings-file text (len bytes; label names it in messages, "FILE:LINE: ...") into config
 * (config_file.c). bkoauth_config_load_file() reads the file and calls this; the fuzz target
 * calls it directly. */
bkoauth_code config_parse_text(bkoauth_config *config, const char *text, size_t len, const char *label,
                               bkoauth_error *err);

/* ---- Python literals of the settings file (pyliteral.c) ---------------------------------- */

typedef enum py_kind {
    PY_TEXT,   /* a string, a number, True or False, or a bare word: the text in text */
    PY_NONE,   /* None */
    PY_OBJECT, /* a dict: compact JSON in text */
    PY_LIST    /* a list: JSON in text */
} py_kind;
typedef struct py_value {
    py_kind kind;
    bk_buf text; /* the caller zeroes it, sets secret when it may hold one, and frees it */
} py_value;
/* Reads the value at *pp (up to end) of a settings line, as Django would read it, literals only
 * (see pyliteral.c). *line is the line at *pp, advanced over the lines the value spans. Returns
 * 0 with *pp after the value, or -1 with *why pointing to why_buf saying what is wrong (*line
 * then the line of the error). out->text.oom tells an allocation failure. */
int py_read_value(const char **pp, const char *end, int *line, py_value *out, const char **why, char *why_buf,
                  size_t why_size);

/* ---- the MySQL URL (store/mysql_url.c) --------------------------------------------------- */

/* mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or mariadb://), each part percent-decoded. */
typedef struct bk_mysql_url {
    char *user;     /* NULL when the URL has none */
    char *password; /* NULL when the URL has none */
    char *host;     /* a name or an address ([IPv6] without the brackets) */
    unsigned port;  /* 3306 when not given */
    char *database;
} bk_mysql_url;
/* BKOAUTH_E_CONFIG saying what is wrong (never quoting the password), or OK with *out filled. */
bkoauth_code mysql_url_parse(const char *url, bk_mysql_url *out, bkoauth_error *err);
void mysql_url_clear(bk_mysql_url *u);

/* ---- request (request.c) ---------------------------------------------------------------- */

/* The credential parameters of a user-token call, in OAUTH_COOKIES_PARAMS order: for each
 * (param, cookie_name) the first non-empty of cookie, session value, query parameter, else "";
 * the uin rule applied. out is cleared first. */
bkoauth_code request_credentials(const bk_settings *s, const bkoauth_request *req, bk_kvlist *out,
                                 bkoauth_error *err);
/* bk_client_ip: the whole X-Forwarded-For when present and non-empty, else remote_addr, else "".
 * Returns a pointer into req (or a static ""). */
const char *request_client_ip(const bkoauth_request *req);
/* The value of cookie name in a Cookie header (quotes around the value removed), newly
 * allocated; NULL when absent or on OOM. */
char *cookie_get(const char *header, const char *name);
/* The percent-decoded value of name in a query string ('+' is a space), newly allocated;
 * NULL when absent or on OOM. */
char *query_get(const char *query, const char *name);
/* The uin rule: "o" + 3..32 digits becomes the number without "o" and without leading zeros
 * ("o0836324475" -> "836324475"); any other value is returned copied as is. NULL on OOM. */
char *uin_normalize(const char *value);

/* ---- X-Bkapi-Jwt (jwt.c) ------------------------------------------------------------------ */

/* Forgets every parsed APIGW_PUBLIC_KEY, so that the next verification parses its key again
 * (for tests of the parsing; no thread may be verifying meanwhile). */
void bkoauth__jwt_keys_clear(void);
/* bkoauth_jwt_verify() with the client's settings s (APIGW_PUBLIC_KEY) and logger (refusals);
 * out and s not NULL. */
bkoauth_code bk_jwt_verify(const bk_settings *s, const bk_logger *logger, const char *jwt, bkoauth_jwt **out,
                           bkoauth_error *err);

/* ---- the client (client.c), for the tests ------------------------------------------------ */

const bk_settings *client_settings(const bkoauth_client *c);
const bk_logger *client_logger(const bkoauth_client *c);
/* " through the proxy http://user:***@host:port (from https_proxy)" when the client's SSM calls go
 * through a proxy, else "" (chosen when the client was made). */
const char *client_route(const bkoauth_client *c, char *out, size_t size);
/* The client's token store (for tests that inject store faults). */
struct store *client_store(const bkoauth_client *c);

/* ---- time zones (tzfile.c) --------------------------------------------------------------- */

/* A time zone for datetimes kept without one. NULL is UTC; zone_local() the process's zone. */
typedef struct bk_zone bk_zone;
/* name: "UTC" (*out NULL), "local" (*out zone_local()) or a zone name such as Asia/Shanghai, read
 * from the system's zone file ($TZDIR or /usr/share/zoneinfo); BKOAUTH_E_CONFIG when none. The
 * process's TZ is never changed. Free *out with zone_free(). */
bkoauth_code zone_load(const char *name, bk_zone **out, bkoauth_error *err);
/* A zone from the bytes of a TZif file (outside input: checked throughout); NULL with *why set. */
bk_zone *zone_parse(const unsigned char *data, size_t len, const char *name, const char **why);
void zone_free(bk_zone *z); /* NULL and zone_local() are fine */
const bk_zone *zone_local(void);
const char *zone_name(const bk_zone *z);
/* Seconds east of UTC in force at the moment t; always under a day either way. */
int32_t zone_offset(const bk_zone *z, int64_t t);
/* The moment whose wall time in z is wall (wall time counted as if it were UTC). A wall time seen
 * twice (the hour after a change back) gives the first; one skipped (a change forward) is read
 * with the offset before the change: both as Python's datetime with fold=0. */
int64_t zone_to_utc(const bk_zone *z, int64_t wall);
int64_t dt_days_from_civil(int64_t y, int m, int d);
void dt_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* ---- Django datetimes (datetime.c) ------------------------------------------------------- */

/* A wall time: year, month 1-12, day, hour, minute, second. */
typedef struct bk_civil {
    int64_t year;
    int month, day, hour, minute, second;
} bk_civil;
/* The wall time of t in zone (NULL: UTC), t kept within Django's years 1..9999. */
void dt_to_civil(int64_t t, const bk_zone *zone, bk_civil *out);
int64_t dt_from_civil(const bk_civil *c, const bk_zone *zone);
/* dt_format / dt_parse in a zone (NULL: UTC). */
char *dt_format_zone(int64_t t, const bk_zone *zone, char *buf, size_t size);
int dt_parse_zone(const char *text, const bk_zone *zone, int64_t *out);

/* Writes t as "YYYY-MM-DD HH:MM:SS" (Django's text form, whole seconds) in UTC, or local time
 * when local is set. buf needs 32 bytes. Returns buf. */
char *dt_format(int64_t t, int local, char *buf, size_t size);
/* Reads "YYYY-MM-DD HH:MM:SS[.f...]" or with 'T', with any number of fractional digits and an
 * optional "+HH:MM"/"Z" offset (which then wins over local). Fraction is dropped. Returns 0 on
 * success, -1 on a malformed value. */
int dt_parse(const char *text, int local, int64_t *out);

/* ---- text from outside (text.c) ---------------------------------------------------------- */

/* 1 when s is a token as the SSM issues them: printable ASCII without spaces (0x21..0x7e), at
 * most max_len bytes, not empty unless may_be_empty (NULL counts as empty). */
int bk_token_text_ok(const char *s, size_t max_len, int may_be_empty);
/* NULL when the len bytes at s are in that alphabet, else what is wrong ("holds a control
 * character", "holds a space", ...), for a message that never quotes the token. */
const char *bk_token_text_problem(const char *s, size_t len);
/* 1 when s is valid UTF-8 (shortest forms, no surrogates). */
int bk_utf8_ok(const char *s);
/* The code point of the UTF-8 sequence at p (valid, shortest form, no surrogates; p holds it
 * whole or ends with a NUL), its length in *len; -1 when p does not start one. */
long bk_utf8_next(const unsigned char *p, int *len);
/* 1 for the code points that reorder or break a line as a person sees it (direction marks and
 * overrides, line and paragraph separators, the byte order mark). */
int bk_is_hidden_mark(long cp);
/* url with the password of its user info replaced by *** ("ftp://user:***@host/"), for a
 * message; out (size bytes) is returned. */
char *bk_url_hide_password(const char *url, char *out, size_t size);
/* NULL when s is a name a person can read safely: valid UTF-8 without control characters
 * (C0, DEL, C1) or text-direction marks; else what is wrong ("contains a control character"). */
const char *bk_name_problem(const char *s);

#endif
