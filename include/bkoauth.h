/* SPDX-License-Identifier: MIT */
/*
 * bkoauth.h - get, save, reuse and refresh BlueKing access_tokens from C.
 *
 * libbkoauth is the C counterpart of the Python/Django library bkoauth. It speaks the same two
 * wire protocols to the BlueKing SSM token service and keeps tokens in the same database table
 * (bkoauth_access_token), so a C service and a Django app can share one SSM service and one
 * token store.
 *
 * Conventions of this header:
 *  - Every call that can fail returns a bkoauth_code and takes a bkoauth_error *err last.
 *    err may be NULL. On failure err->code equals the return value and err->message is a
 *    non-empty sentence for a person; on success err->code is BKOAUTH_OK.
 *  - Out-pointers are set to NULL on failure.
 *  - Every token handed out is the caller's own copy; free it with bkoauth_token_free().
 *  - No message or log line ever holds a token, a secret or a user credential in full, in any
 *    encoding a service may quote it back in (raw, percent-encoded, '+' for a space,
 *    JSON-escaped): at most the first 4 characters and the length are shown. Every message and
 *    log line is one line a person can read: control characters, bytes that are not UTF-8 and
 *    text-direction marks from outside text are escaped (a line break as a backslash and n).
 *  - A bkoauth_client may be used by any number of threads at once. A bkoauth_config is not
 *    thread-safe: build it in one thread, then hand it to bkoauth_client_new().
 *  - A call that runs out of memory fails with BKOAUTH_E_NOMEM and remembers nothing of it;
 *    bkoauth_set_allocators() gives the library your own allocator.
 *  - libcurl, libcrypto, libpq and the MariaDB connector are loaded (dlopen) by the first call
 *    that needs them, not when the program starts: libcurl by the first SSM call, libcrypto by
 *    the first X-Bkapi-Jwt check or MySQL store, libpq and the connector by the first
 *    postgresql:// or mysql:// store. Threads racing on that call load it once; a child after
 *    fork() keeps what its parent loaded. One that cannot be loaded fails that call (and only
 *    that call: the next one tries again) with BKOAUTH_E_TOKEN_API, BKOAUTH_E_STORE or
 *    BKOAUTH_E_JWT and a message naming the library and the Debian package to install.
 */
#ifndef BKOAUTH_H
#define BKOAUTH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(BKOAUTH_STATIC_BUILD)
#define BKOAUTH_API __attribute__((visibility("default")))
#else
#define BKOAUTH_API
#endif

/** Version of this header; bkoauth_version() gives the library's. */
#define BKOAUTH_VERSION_STRING "0.1.0"
/** The same as a number 0xMMmmpp (major, minor, patch), as libcurl's LIBCURL_VERSION_NUM:
 *  `#if BKOAUTH_VERSION_NUM >= 0x000100` tests for 0.1.0 or later at compile time. */
#define BKOAUTH_VERSION_MAJOR 0
#define BKOAUTH_VERSION_MINOR 1
#define BKOAUTH_VERSION_PATCH 0
#define BKOAUTH_VERSION_NUM 0x000100

/* ------------------------------------------------------------------------------------------ */
/* Results and errors                                                                           */
/* ------------------------------------------------------------------------------------------ */

/** Result of every call that can fail. */
typedef enum bkoauth_code {
    /* the values are part of the ABI: they never change, new codes get new numbers */
    BKOAUTH_OK = 0,                /**< "OK": success */
    BKOAUTH_E_TOKEN_API = 1,       /**< "TokenAPIError": the SSM call failed; retry later */
    BKOAUTH_E_TOKEN_NOT_EXIST = 2, /**< "TokenNotExist": no saved token / no refresh_token */
    BKOAUTH_E_CONFIG = 3,          /**< "ConfigError": a setting is missing or invalid */
    BKOAUTH_E_INVALID = 4,         /**< "InvalidArgument": NULL, anonymous user, over-long value */
    BKOAUTH_E_STORE = 5,           /**< "StoreError": the token store failed */
    BKOAUTH_E_JWT = 6,             /**< "JWTError": X-Bkapi-Jwt missing or invalid */
    BKOAUTH_E_NOMEM = 7            /**< "OutOfMemory" */
} bkoauth_code;

/** Details of a failure. Owned by the caller (usually on the stack). */
typedef struct bkoauth_error {
    bkoauth_code code; /**< equals the failing call's return value; BKOAUTH_OK on success */
    int http_status;   /**< the SSM's HTTP status when it answered, else 0 */
    long api_code;     /**< the SSM's own "code" field when present, else 0 */
    char message[512]; /**< what went wrong, for a person; never holds a secret, never a line
                            break or another control character */
} bkoauth_error;

/** The name of a code: "OK", "TokenAPIError", ...; "Unknown" for a value outside the enum.
 *  The string is static. */
BKOAUTH_API const char *bkoauth_code_name(bkoauth_code code);

/** The library's version, e.g. "0.1.0". The string is static. */
BKOAUTH_API const char *bkoauth_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Memory                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/** Allocator functions for bkoauth_set_allocators(), with the meaning of malloc(), calloc(),
 *  realloc(), free() and strdup(). */
typedef void *(*bkoauth_malloc_fn)(size_t size);
typedef void *(*bkoauth_calloc_fn)(size_t count, size_t size);
typedef void *(*bkoauth_realloc_fn)(void *ptr, size_t size);
typedef void (*bkoauth_free_fn)(void *ptr);
typedef char *(*bkoauth_strdup_fn)(const char *s);

/** Makes the library allocate with your functions instead of the C library's malloc(),
 *  calloc(), realloc(), free() and strdup().
 *
 *  Call it first: before any other bkoauth call and before other threads use the library.
 *  Memory the library holds (settings, clients, parsed keys) is freed with the free function in
 *  force when it is freed, so changing the functions later frees memory with the wrong one.
 *
 *  malloc_fn, realloc_fn and free_fn are given together; calloc_fn and strdup_fn may be NULL
 *  (they are then made from malloc_fn). All five NULL restores the C library's functions.
 *  The functions must be thread-safe: they are called from every thread using a client (and
 *  from libcurl's resolver threads). The library never asks for 0 bytes (it asks for 1) and
 *  never passes NULL to free_fn.
 *
 *  What allocates through them:
 *   - everything the library allocates itself; whatever it hands out is freed with free_fn by
 *     bkoauth_token_free(), bkoauth_tokens_free(), bkoauth_jwt_free(), bkoauth_free() and the
 *     other free functions;
 *   - Jansson, the JSON library: this call hands Jansson the library's own wrappers with
 *     json_set_alloc_funcs() (even with all five NULL). Jansson has one allocator per process,
 *     so the program's own use of Jansson allocates through them too;
 *   - libcurl, when libbkoauth initialises it (curl_global_init_mem() when the first SSM call
 *     loads it); a program that initialised libcurl first keeps libcurl's own.
 *  OpenSSL, SQLite and libpq keep their own allocators.
 *
 *  Until this is called with functions, libcurl's blocks of up to 32 KiB come from a pool of the
 *  library's own (memory mapped from the system in 64 KiB slabs and kept for reuse, never given
 *  back) instead of malloc(): glibc would keep freed blocks of a transfer in the per-thread
 *  caches of every thread that renews a token, and a long-running process's resident memory
 *  would creep. Give functions (the C library's own malloc, realloc and free are fine) to have
 *  libcurl allocate through them instead. Either way libcurl's memory is freed through the
 *  library, so a program frees what libcurl hands it with curl_free(), as libcurl requires.
 *
 *  When one of them returns NULL, the call that needed the memory fails with BKOAUTH_E_NOMEM
 *  ("OutOfMemory"), never with another code, and keeps nothing of the failure: the same call
 *  succeeds once memory is available again. Through Jansson's wrappers the library also tells a
 *  failure inside Jansson apart from bad JSON (Jansson alone reports some as syntax errors): to
 *  get that with the C library's functions, call bkoauth_set_allocators(NULL, NULL, NULL, NULL,
 *  NULL, NULL) at start-up, as the bkoauth command line does.
 *
 *  Returns BKOAUTH_OK, or BKOAUTH_E_INVALID when only some of malloc_fn, realloc_fn and free_fn
 *  are given, or calloc_fn or strdup_fn without them (nothing is changed then). */
BKOAUTH_API bkoauth_code bkoauth_set_allocators(bkoauth_malloc_fn malloc_fn, bkoauth_calloc_fn calloc_fn,
                                                bkoauth_realloc_fn realloc_fn, bkoauth_free_fn free_fn,
                                                bkoauth_strdup_fn strdup_fn, bkoauth_error *err);

/** Frees memory the library handed out that has no free function of its own (the string of
 *  bkoauth_jwt_error_body()), with the free function of bkoauth_set_allocators(). NULL is
 *  fine. */
BKOAUTH_API void bkoauth_free(void *ptr);

/* ------------------------------------------------------------------------------------------ */
/* Tokens                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct bkoauth_client bkoauth_client;

/** One access_token, as saved in the table bkoauth_access_token. A token the library hands out
 *  is a single allocation holding the struct and its strings: read the fields, but do not
 *  replace or free them; free the whole token with bkoauth_token_free(). A token you fill in
 *  yourself (to pass as const) is yours to manage.
 *  access_token and refresh_token are what the SSM issues: printable ASCII without spaces
 *  (0x21-0x7e), at most 255 bytes; the library refuses a grant with anything else (TokenAPIError
 *  naming the field, nothing saved) and never hands out a saved one that has it. user_id,
 *  env_name and scope are valid UTF-8; user_id and env_name hold no control character. */
typedef struct bkoauth_token {
    char *access_token;  /**< the credential for BlueKing API calls */
    char *refresh_token; /**< "" when the service gave none (APP tokens) */
    char *scope;         /**< "" when none */
    char *env_name;      /**< "prod" or "test" */
    char *user_id;       /**< the user's id; NULL for the APP token */
    int64_t expires;     /**< expiry moment, Unix seconds, UTC */
    int64_t created_at;  /**< when the row was first saved, Unix seconds, UTC */
} bkoauth_token;

/** Frees a token and every string in it; access_token and refresh_token are wiped first.
 *  NULL is fine. */
BKOAUTH_API void bkoauth_token_free(bkoauth_token *token);

/** 1 when the token expires within EXPIRES_SECONDS of now (expires - now < EXPIRES_SECONDS),
 *  else 0. client gives the setting; with client NULL the default 86400 is used. A NULL token
 *  counts as expiring (1). */
BKOAUTH_API int bkoauth_token_expires_soon(const bkoauth_client *client, const bkoauth_token *token);

/** Copies a token. Returns NULL when out of memory or when token is NULL. */
BKOAUTH_API bkoauth_token *bkoauth_token_dup(const bkoauth_token *token);

/** Writes a masked form of a secret into buf for people to read: the first 4 characters, an
 *  ellipsis and the length, e.g. "abcd...(32 chars)". NULL gives "(none)". Returns buf. */
BKOAUTH_API char *bkoauth_mask(const char *secret, char *buf, size_t size);

/* ------------------------------------------------------------------------------------------ */
/* Settings                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/** A set of settings. Names are the Django setting names of the Python library:
 *
 *  | name                     | meaning                                                 | default
 *  |--------------------------|---------------------------------------------------------|----------------
 *  | OAUTH_API_URL            | base URL of the SSM service (needed by SSM calls only)  | required
 *  | OAUTH_COOKIES_PARAMS     | JSON {request_param: cookie_name}                       | {}
 *  | OAUTH_PARAMS             | JSON object of extra parameters for user-token calls    | {}
 *  | APP_CODE, SECRET_KEY     | the app's id and secret                                 | none
 *  | BKAUTH_TOKEN_APP_CODE    | overrides APP_CODE for SSM calls                        | APP_CODE
 *  | BKAUTH_TOKEN_SECRET_KEY  | overrides SECRET_KEY for SSM calls                      | SECRET_KEY
 *  | RUN_MODE                 | PRODUCT gives env_name "prod", anything else "test"     | DEVELOP
 *  | EXPIRES_SECONDS          | a token expires soon when expires - now < this          | 86400
 *  | OAUTH_NEED_NEW_TOKEN     | need_new_token on the ieod protocol                     | true
 *  | BKAUTH_BACKEND_TYPE      | bk_token selects the ee protocol, else ieod             | (ieod)
 *  | APIGW_PUBLIC_KEY         | PEM public key of the API gateway                       | none
 *  | BKOAUTH_DATABASE_URL     | sqlite:PATH, postgresql://... (libpq URI) or             | sqlite:bkoauth.db
 *  |                          | mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (MySQL or  |
 *  |                          | MariaDB; mariadb:// too; %XX escapes in each part)      |
 *  |                          | PostgreSQL: gssencmode=disable unless the URI or        |
 *  |                          | PGGSSENCMODE sets it (Kerberos auth unaffected)         |
 *  | BKOAUTH_DB_TIME_ZONE     | datetimes where the column has no zone (SQLite, MySQL): | UTC
 *  |                          | UTC (Django USE_TZ = True), local (the process's zone), |
 *  |                          | or a zone name such as Asia/Shanghai (USE_TZ = False    |
 *  |                          | with that TIME_ZONE), whatever the process's TZ         |
 *  | BKOAUTH_TIMEOUT_MS       | SSM call timeout in milliseconds                        | 10000
 *  | BKOAUTH_TLS_VERIFY       | verify the SSM's TLS certificate (false: off, warned)   | true
 *  | BKOAUTH_CA_FILE          | PEM file of the CAs to trust (a private CA): replaces   | system default
 *  |                          | libcurl's default bundle file; libcurl's default CA     |
 *  |                          | directory (Debian: /etc/ssl/certs) stays in use         |
 *  | BKOAUTH_CA_PATH          | directory of CA certificates (hashed, c_rehash) instead | system default
 *  |                          | of libcurl's default directory                          |
 *  | BKOAUTH_PROXY            | the proxy of the SSM calls, as curl's -x: a URL         | (environment)
 *  |                          | [http|https|socks4|socks4a|socks5|socks5h]://           |
 *  |                          | [USER:PASSWORD@]HOST[:PORT] (no scheme: http; no port:  |
 *  |                          | 1080, https 443); none (or "") for no proxy whatever    |
 *  |                          | the environment says. Unset: https_proxy/HTTPS_PROXY,   |
 *  |                          | http_proxy (lower case only), all_proxy/ALL_PROXY, as   |
 *  |                          | curl. An https:// proxy is verified as the service      |
 *  | BKOAUTH_NO_PROXY         | hosts reached without the proxy, as NO_PROXY (which it  | no_proxy/NO_PROXY
 *  |                          | replaces): "*", names with their subdomains, IPv4       |
 *  |                          | addresses and a.b.c.d/n ranges, by comma or blank       |
 *  | BKOAUTH_LOG_LEVEL        | off, error, warning, info, debug                        | warning
 *  | BKOAUTH_CACHE_SECONDS    | how long a saved token is reused from memory (0: off)   | 10
 *  | BKOAUTH_BACKOFF_SECONDS  | after a renewal failed because the SSM service fails, a   | 5
 *  |                          | token that has not expired is served this long before   |
 *  |                          | the next attempt (0: try every time)                    |
 *  | BKOAUTH_BACKOFF_MAX_SECONDS | the wait doubles per failure in a row, up to this    | 60
 *  | BKOAUTH_DB_CONNECTIONS   | most connections a client opens to its store (3..1000): | 13
 *  |                          | PostgreSQL a quarter and 1 for writes and renewal       |
 *  |                          | leases, the others for reads; MySQL 1 for renewal locks,|
 *  |                          | a quarter of the rest for writes, the others for reads; |
 *  |                          | SQLite 1 writer, the others readers. PgBouncer in       |
 *  |                          | session mode needs a default_pool_size of at least the  |
 *  |                          | processes' total. Renewals are not capped:              |
 *  |                          | none holds a connection while the SSM service is called.|
 *  | BKOAUTH_MEMORY_TRIM_SECONDS | glibc: the C library's free pages are given back to  | 60
 *  |                          | the system (malloc_trim(0)) at most this often, by the  |
 *  |                          | thread ending a store read or a renewal, never on a     |
 *  |                          | cached call nor with a lock held (0: never; process-wide|
 *  |                          | malloc settings are the program's: docs/BENCHMARKS.md)  |
 *
 *  Booleans accept true/false/1/0/yes/no in any case. A JSON object may be written with
 *  single quotes, Python style. */
typedef struct bkoauth_config bkoauth_config;

/** A new set holding every default. Returns NULL when out of memory. Free with
 *  bkoauth_config_free(). */
BKOAUTH_API bkoauth_config *bkoauth_config_new(void);

/** Frees a set of settings (secrets are wiped first). NULL is fine. */
BKOAUTH_API void bkoauth_config_free(bkoauth_config *config);

/** Sets one setting by name. value is copied; NULL resets the setting to its default.
 *  An unknown name or a bad value is BKOAUTH_E_CONFIG naming the setting and why; the set is
 *  then unchanged. */
BKOAUTH_API bkoauth_code bkoauth_config_set(bkoauth_config *config, const char *name, const char *value,
                                            bkoauth_error *err);

/** The current text of a setting (its default when it was never set). The pointer is owned by
 *  config (or is a static default) and stays valid until the setting changes or config is
 *  freed. NULL when the name is unknown, or the setting has no value and no default. Secrets
 *  come back whole: do not log them. */
BKOAUTH_API const char *bkoauth_config_get(const bkoauth_config *config, const char *name);

/** Loads a settings file: lines `NAME = value`, `#` comments and blank lines, read as Django
 *  reads its settings, literals only, so the Django snippet
 *  OAUTH_API_URL = 'http://bkssmee.xxx.com'
 *  OAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'}
 *  works verbatim. A value is a string ('...', "...", triple-quoted across lines, with Python's
 *  escapes; r'...' raw, u'...' plain; adjacent strings joined, also inside parentheses), a
 *  number, True, False, None (the default), a dict or a list of those (across lines, with #
 *  comments and trailing commas), or one bare word taken as text (RUN_MODE = PRODUCT, as in an
 *  environment file; `export NAME=value` works too). A bytes string (b'...'), an f-string, a
 *  name or call (os.environ.get('X'), settings.X) or any other expression is BKOAUTH_E_CONFIG.
 *  A UTF-8 byte order mark is skipped; a line that is not UTF-8 is an error. A dict is kept as
 *  JSON (bkoauth_config_get() gives that text). An error names the file and the line; settings
 *  read before the bad line are kept, so load into a fresh set when that matters. */
BKOAUTH_API bkoauth_code bkoauth_config_load_file(bkoauth_config *config, const char *path,
                                                  bkoauth_error *err);

/** Takes every known setting name from the environment; the environment wins over what was
 *  set before. A malformed value is BKOAUTH_E_CONFIG (never silently ignored). */
BKOAUTH_API bkoauth_code bkoauth_config_load_env(bkoauth_config *config, bkoauth_error *err);

/* ------------------------------------------------------------------------------------------ */
/* The client                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/** Creates a client: copies the settings, checks them, opens the token store and creates the
 *  table bkoauth_access_token if absent. Without OAUTH_API_URL the client still opens (saved
 *  tokens are read, listed and deleted, X-Bkapi-Jwt verified); a call that needs the SSM
 *  service then fails with BKOAUTH_E_TOKEN_API saying OAUTH_API_URL is not set. Returns NULL on failure,
 *  with err filled (BKOAUTH_E_CONFIG, BKOAUTH_E_STORE or BKOAUTH_E_NOMEM). The client is
 *  thread-safe: one client serves any number of threads at once. Free with
 *  bkoauth_client_free().
 *
 *  Failures it survives (see docs/ARCHITECTURE.md, "Failure model"):
 *  - a database connection found broken (restart, failover) is replaced and the work, when safe
 *    to repeat, done once more, so the first call after a restart succeeds;
 *  - a grant the SSM service gave that cannot be saved is still returned, kept in the process
 *    (served to the next callers of that token) and saved at the next chance;
 *  - while the SSM service fails (no answer, an HTTP error, a broken answer), a saved token that
 *    has not expired is returned instead of an error, and renewals of that token back off
 *    (BKOAUTH_BACKOFF_SECONDS doubling up to BKOAUTH_BACKOFF_MAX_SECONDS); an expired token is
 *    never returned.
 *
 *  fork(): a client may be used in a child process after fork(). The child's first call drops
 *  (without closing) the connections, locks and handles it inherited, which are the parent's, and
 *  makes its own; the parent's are untouched. Make that first call before the child starts
 *  threads of its own.
 *
 *  Threads: with PostgreSQL or MySQL each of the client's two connection pools (reads, writes),
 *  and with MySQL its renewal-lock connection too, connects in a thread of its own
 *  ("bkoauth-connect"), started at its first connection, with every signal blocked: a caller
 *  that needs a connection opened or connected again waits for it there, so that the database
 *  library's connection state (with MySQL, the prepared statements too) lives in one thread
 *  instead of in every caller's. bkoauth_client_free() ends them. SQLite needs none. */
BKOAUTH_API bkoauth_client *bkoauth_client_new(const bkoauth_config *config, bkoauth_error *err);

/** Frees a client, closing its store and HTTP connections and ending its connector threads.
 *  No other thread may be using it. NULL is fine. */
BKOAUTH_API void bkoauth_client_free(bkoauth_client *client);

/** Log levels, most severe first. BKOAUTH_LOG_OFF (BKOAUTH_LOG_LEVEL=off) passes nothing on,
 *  not even the warnings that every other level shows (TLS verification off). */
enum {
    BKOAUTH_LOG_OFF = -1,
    BKOAUTH_LOG_ERROR = 0,
    BKOAUTH_LOG_WARNING = 1,
    BKOAUTH_LOG_INFO = 2,
    BKOAUTH_LOG_DEBUG = 3
};

/** A log sink: called with the level and one line (no trailing newline). It may be called
 *  from any thread using the client, at once, and from the client's connector threads (see
 *  bkoauth_client_new()), which log what happens while a connection is made. */
typedef void (*bkoauth_log_fn)(void *ctx, int level, const char *message);

/** Replaces the client's logger. The default writes "bkoauth: <level>: <message>" lines to
 *  stderr from BKOAUTH_LOG_LEVEL up. fn NULL silences the client. Messages above the level of
 *  BKOAUTH_LOG_LEVEL are not passed to fn. Call before sharing the client between threads.
 *  Every line is one line a person can read: no secret, no line break, no control character
 *  or text-direction mark (they are escaped: a line break as a backslash and n).
 *  With BKOAUTH_TLS_VERIFY false, bkoauth_client_new() warns at once (on the default logger)
 *  at every level but off, and the new logger gets that warning again when it is set. The
 *  proxy the client's SSM calls go through (chosen once, when the client is made, from
 *  BKOAUTH_PROXY, BKOAUTH_NO_PROXY and the environment) is logged at info, its password as ***,
 *  with the variable it came from; a proxy variable that cannot be used is a warning. */
BKOAUTH_API void bkoauth_client_set_logger(bkoauth_client *client, bkoauth_log_fn fn, void *ctx);

/** What a client has done since it was created, for monitoring. Counters only grow, except
 *  grants_unsaved, which is a current number. */
typedef struct bkoauth_stats {
    uint64_t cache_hits;           /**< tokens served from this process's cache */
    uint64_t store_reads;          /**< lookups that read the token store */
    uint64_t renewals;             /**< grants obtained from the SSM service */
    uint64_t ssm_calls;            /**< calls to the SSM service (sent or attempted) */
    uint64_t ssm_fail_network;     /**< calls without an answer: unreachable, timeout, dropped */
    uint64_t ssm_fail_server;      /**< calls answered with an HTTP error status */
    uint64_t ssm_fail_answer;      /**< answers that are not a usable grant (HTML, truncated) */
    uint64_t ssm_fail_refused;     /**< requests the service refused (credential, refresh_token) */
    uint64_t ssm_fail_setup;       /**< calls not sent: a setting missing or unusable */
    uint64_t served_during_outage; /**< still-valid saved tokens returned because the service
                                        failed, renewals backed off, another caller's renewal
                                        was taking long, or the token store could not be read
                                        (the copy this client read last) */
    uint64_t store_reconnects;     /**< broken database connections replaced */
    uint64_t grants_saved_late;    /**< grants saved after their first save had failed */
    uint64_t grants_unsaved;       /**< grants held in memory now, not saved yet */
} bkoauth_stats;

/** Fills *out with the client's counters. Thread-safe; cheap (no I/O). Returns BKOAUTH_OK, or
 *  BKOAUTH_E_INVALID when client or out is NULL. */
BKOAUTH_API bkoauth_code bkoauth_client_stats(const bkoauth_client *client, bkoauth_stats *out,
                                              bkoauth_error *err);

/** Checks that the SSM service can be reached, without asking it for a token: a plain GET of
 *  OAUTH_API_URL's root. BKOAUTH_OK when any HTTP answer came back (its status in *http_status
 *  when not NULL: the root may well answer 404), BKOAUTH_E_TOKEN_API saying why it could not be
 *  reached (refused, timeout, TLS), BKOAUTH_E_CONFIG when OAUTH_API_URL is not set. For
 *  monitoring and `bkoauth check`. */
BKOAUTH_API bkoauth_code bkoauth_check_service(bkoauth_client *client, long *http_status, bkoauth_error *err);

/** The env_name this client works in: "prod" when RUN_MODE is PRODUCT, else "test". */
BKOAUTH_API const char *bkoauth_client_env_name(const bkoauth_client *client);

/* ------------------------------------------------------------------------------------------ */
/* The request (what a Django request was)                                                     */
/* ------------------------------------------------------------------------------------------ */

/** What the operations need from an incoming HTTP request. Every pointer is borrowed for the
 *  duration of a call; the library keeps none of them. */
typedef struct bkoauth_request {
    const char *username;        /**< logged-in user; NULL or "" = anonymous */
    const char *cookie_header;   /**< raw Cookie header: "bk_token=abc; bk_uid=u" */
    const char *query_string;    /**< raw query string, no '?' */
    const char *remote_addr;     /**< peer address */
    const char *x_forwarded_for; /**< X-Forwarded-For value, or NULL; sent whole as bk_client_ip
                                      (as the Python library does), at most 1024 bytes */
    /** optional session lookup: the value stored under key, or NULL */
    const char *(*session_get)(void *session_ctx, const char *key);
    void *session_ctx; /**< passed to session_get */
} bkoauth_request;

/** Fills req from the CGI environment: REMOTE_USER, HTTP_COOKIE, QUERY_STRING, REMOTE_ADDR,
 *  HTTP_X_FORWARDED_FOR. The pointers point into the environment; no session. */
BKOAUTH_API void bkoauth_request_from_cgi(bkoauth_request *req);

/** Fills req from any CGI-style source (a FastCGI parameter set, a server's variables):
 *  get(ctx, name) is asked for the same five names as bkoauth_request_from_cgi() and returns
 *  the value or NULL. The returned pointers are stored as is and must outlive the request. */
BKOAUTH_API void bkoauth_request_from_params(bkoauth_request *req,
                                             const char *(*get)(void *ctx, const char *name), void *ctx);

/* ------------------------------------------------------------------------------------------ */
/* The four operations of the seed, and the login hook                                         */
/* ------------------------------------------------------------------------------------------ */

/** get_access_token(request): the logged-in user's token. Looks up (env, user); when absent or
 *  expiring soon, fetches a new user token from the SSM with the request's credential
 *  (OAUTH_COOKIES_PARAMS: cookie, then session, then query string) and saves it.
 *  An anonymous request is BKOAUTH_E_INVALID and never reaches the service; so is a username
 *  with control characters, text-direction marks or bytes that are not UTF-8, or over 64
 *  characters, and an X-Forwarded-For (else remote_addr) over 1024 bytes. A request with none
 *  of the OAUTH_COOKIES_PARAMS credentials is BKOAUTH_E_TOKEN_API ("no login credential in the
 *  request: cookie bk_token missing") without a call to the service.
 *  Errors: BKOAUTH_E_TOKEN_API (retry later), BKOAUTH_E_STORE, BKOAUTH_E_INVALID. */
BKOAUTH_API bkoauth_code bkoauth_get_access_token(bkoauth_client *client, const bkoauth_request *req,
                                                  bkoauth_token **out, bkoauth_error *err);

/** get_app_access_token(): the APP token. Looks up (env, APP); when absent or expiring soon,
 *  fetches a new APP token and saves it. APP tokens are never refreshed with a refresh_token.
 *  Errors: BKOAUTH_E_TOKEN_API, BKOAUTH_E_STORE. */
BKOAUTH_API bkoauth_code bkoauth_get_app_access_token(bkoauth_client *client, bkoauth_token **out,
                                                      bkoauth_error *err);

/** get_access_token_by_user(user_id): the saved token of a user. None saved is
 *  BKOAUTH_E_TOKEN_NOT_EXIST (call bkoauth_get_access_token() first, e.g. at login); one
 *  expiring soon is refreshed with bkoauth_refresh_token(). */
BKOAUTH_API bkoauth_code bkoauth_get_access_token_by_user(bkoauth_client *client, const char *user_id,
                                                          bkoauth_token **out, bkoauth_error *err);

/** refresh_token(token): renews a user token with its refresh_token and saves the new grant in
 *  the token's row. A token without refresh_token is BKOAUTH_E_TOKEN_NOT_EXIST. When another
 *  thread or process already renewed this row, the newer saved token is returned instead of
 *  calling the service again. Errors: BKOAUTH_E_TOKEN_API, BKOAUTH_E_TOKEN_NOT_EXIST,
 *  BKOAUTH_E_STORE. */
BKOAUTH_API bkoauth_code bkoauth_refresh_token(bkoauth_client *client, const bkoauth_token *token,
                                               bkoauth_token **out, bkoauth_error *err);

/** The login hook: runs bkoauth_get_access_token() and logs a failure (at warning level)
 *  instead of returning it. */
BKOAUTH_API void bkoauth_user_logged_in(bkoauth_client *client, const bkoauth_request *req);

/* ------------------------------------------------------------------------------------------ */
/* API gateway JWT (the Python apigw_required decorator)                                       */
/* ------------------------------------------------------------------------------------------ */

/** Leeway, in seconds, allowed on "exp" and "nbf" for clock differences between the gateway
 *  and this host: a token is expired when now >= exp + leeway, and not yet valid when
 *  now + leeway < nbf. */
#define BKOAUTH_JWT_LEEWAY_SECONDS 60

/** Longest X-Bkapi-Jwt accepted, in bytes; a longer one is refused as malformed unparsed. */
#define BKOAUTH_JWT_MAX_LENGTH 65536

/** What a verified X-Bkapi-Jwt says. Owned by the caller; free with bkoauth_jwt_free(). */
typedef struct bkoauth_jwt {
    char *app_code;     /**< payload app.app_code; NULL when absent */
    int app_verified;   /**< payload app.verified: 1 when true, else 0 */
    char *username;     /**< payload user.username; NULL when absent */
    int user_verified;  /**< payload user.verified: 1 when true, else 0 */
    int64_t expires;    /**< payload exp, Unix seconds, UTC */
    char *payload_json; /**< the whole verified payload, as JSON text */
} bkoauth_jwt;

/** Verifies the value of the X-Bkapi-Jwt header (CGI: HTTP_X_BKAPI_JWT) as the API gateway
 *  signs it: header "alg" exactly "RS256" (none, HS256 and every other algorithm are refused),
 *  an RSA PKCS#1 v1.5 SHA-256 signature checked against APIGW_PUBLIC_KEY (PEM, "BEGIN PUBLIC
 *  KEY" or "BEGIN RSA PUBLIC KEY"; parsed once per client), "iss" equal to "APIGW", "exp"
 *  required and "nbf" honoured when present, each with BKOAUTH_JWT_LEEWAY_SECONDS of leeway.
 *  jwt is the header value (NUL-terminated); NULL or "" means the header is missing.
 *  On success *out is the caller's (free with bkoauth_jwt_free()). On failure *out is NULL and
 *  the result is BKOAUTH_E_JWT with a message telling the reason apart: header missing or
 *  empty, public key unusable, malformed token, algorithm not allowed, bad signature, expired,
 *  not yet valid, wrong issuer, missing issuer; BKOAUTH_E_INVALID when client or out is NULL;
 *  BKOAUTH_E_NOMEM. Thread-safe. */
BKOAUTH_API bkoauth_code bkoauth_jwt_verify(bkoauth_client *client, const char *jwt, bkoauth_jwt **out,
                                            bkoauth_error *err);

/** Frees a result of bkoauth_jwt_verify() and every string in it. NULL is fine. */
BKOAUTH_API void bkoauth_jwt_free(bkoauth_jwt *jwt);

/** The body a refused request gets (with HTTP status 200), as the Python apigw_required did:
 *  {"result": false, "data": null, "message": "<err->message>"}. err NULL (or with an empty
 *  message) gives a generic message. Returns a string the caller frees with bkoauth_free()
 *  (free() does as well while the C library's allocators are in use), or NULL when out of
 *  memory. */
BKOAUTH_API char *bkoauth_jwt_error_body(const bkoauth_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Saved tokens                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/** Every saved token of every env, APP first then users by name. *out is an array of *count
 *  tokens; free it with bkoauth_tokens_free(). A row that cannot be used (another program wrote
 *  it with a token outside the SSM alphabet, a NUL inside a value, a datetime that cannot be
 *  read, a name that is not readable text) is left out, with a warning in the log naming its
 *  row id, never its contents. */
BKOAUTH_API bkoauth_code bkoauth_list_tokens(bkoauth_client *client, bkoauth_token ***out, size_t *count,
                                             bkoauth_error *err);

/** Frees an array from bkoauth_list_tokens(). NULL is fine. */
BKOAUTH_API void bkoauth_tokens_free(bkoauth_token **tokens, size_t count);

/** Removes the saved token of user_id (NULL: the APP token) in this client's env.
 *  None saved is BKOAUTH_E_TOKEN_NOT_EXIST. */
BKOAUTH_API bkoauth_code bkoauth_delete_token(bkoauth_client *client, const char *user_id,
                                              bkoauth_error *err);

#ifdef __cplusplus
}
#endif

#endif /* BKOAUTH_H */
