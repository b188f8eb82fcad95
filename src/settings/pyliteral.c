/* SPDX-License-Identifier: MIT */
/* pyliteral.c - the values of the settings file, read as Django reads its settings module, but
 * literals only (what Python's ast.literal_eval takes, without tuples, sets, bytes or complex
 * numbers): strings with ' or " (and ''' or """ across lines), with Python's escapes or raw (r''),
 * u'' the same as '', adjacent strings joined, numbers, True, False, None, and dicts and lists
 * of those, across lines, with comments and trailing commas anywhere Python allows them. A
 * bytes or f-string prefix, a name, a call or any other expression is refused with the reason.
 * For settings files written as environment files, one bare word (RUN_MODE = PRODUCT,
 * OAUTH_API_URL = http://...) is taken as text, unless it reads as Python code (a dotted name,
 * brackets, quotes, operators between spaces).
 *
 * Also the value of a dict setting, from wherever it came, read as JSON or Python-style
 * (py_parse_object(), for the value checks and the conversion to settings). */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PY_MAX_DEPTH 32

typedef struct reader {
    const char *p, *end;
    int line;
    const char *why;  /* static text: what is wrong, when a read failed */
    char why_buf[96]; /* for reasons with a detail */
    bk_buf *out;      /* text (a scalar) or JSON (a dict or a list) */
    int depth;        /* brackets open */
    int open_line[PY_MAX_DEPTH + 2];
    char open_char[PY_MAX_DEPTH + 2];
} reader;

static int fail(reader *r, const char *why)
{
    if (r->why == NULL) r->why = why;
    return -1;
}

/* The text ended inside brackets: the innermost one open is never closed (named at its line,
 * as Python does). */
static int fail_eof(reader *r)
{
    if (r->depth <= 0) return fail(r, "the value is missing");
    char c = r->open_char[r->depth];
    r->line = r->open_line[r->depth];
    return fail(r, c == '{'   ? "the { is never closed"
                   : c == '[' ? "the [ is never closed"
                              : "the ( is never closed");
}

static void opened(reader *r, char c)
{
    r->open_char[r->depth] = c;
    r->open_line[r->depth] = r->line;
}

/* Blanks, and inside brackets newlines and # comments too. */
static void skip_blanks(reader *r)
{
    while (r->p < r->end) {
        char c = *r->p;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f') {
            r->p++;
        } else if (r->depth > 0 && c == '\n') {
            r->line++;
            r->p++;
        } else if (r->depth > 0 && c == '#') {
            while (r->p < r->end && *r->p != '\n')
                r->p++;
        } else if (r->depth > 0 && c == '\\' && r->p + 1 < r->end && r->p[1] == '\n') {
            r->line++; /* an explicit line joining */
            r->p += 2;
        } else {
            break;
        }
    }
}

static int is_ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static int is_ident(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* ---- strings --------------------------------------------------------------------------------- */

static void put_utf8(bk_buf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_append(b, u, n);
}

/* Reads n hex digits at p into *cp; -1 when they are not there. */
static int read_hex(reader *r, int n, unsigned long *cp)
{
    *cp = 0;
    for (int i = 0; i < n; i++) {
        if (r->p >= r->end || !isxdigit((unsigned char)*r->p)) return -1;
        char c = *r->p++;
        *cp = *cp * 16 +
              (unsigned long)(isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10);
    }
    return 0;
}

/* The one-character escapes: the letter after the backslash, then the byte it stands for. */
static const char simple_escapes[][2] = {{'\\', '\\'}, {'\'', '\''}, {'"', '"'},  {'a', '\a'}, {'b', '\b'},
                                         {'f', '\f'},  {'n', '\n'},  {'r', '\r'}, {'t', '\t'}, {'v', '\v'}};

/* One backslash escape of a string that is not raw (r->p after the backslash) into b. */
static int read_escape(reader *r, bk_buf *b)
{
    if (r->p >= r->end) return fail(r, "a string is not closed");
    char c = *r->p++;
    for (size_t i = 0; i < sizeof simple_escapes / sizeof simple_escapes[0]; i++)
        if (c == simple_escapes[i][0]) {
            buf_append(b, &simple_escapes[i][1], 1);
            return 0;
        }
    unsigned long cp;
    switch (c) {
    case '\n':
        r->line++; /* a backslash at the end of a line continues the string */
        return 0;
    case 'x':
        if (read_hex(r, 2, &cp) != 0) return fail(r, "a \\x escape needs two hex digits");
        break;
    case 'u':
        if (read_hex(r, 4, &cp) != 0) return fail(r, "a \\u escape needs four hex digits");
        break;
    case 'U':
        if (read_hex(r, 8, &cp) != 0 || cp > 0x10ffff)
            return fail(r, "a \\U escape needs eight hex digits of a code point");
        break;
    case 'N':
        return fail(r, "\\N{...} escapes are not supported here: write the character itself");
    default:
        if (c >= '0' && c <= '7') {
            cp = (unsigned long)(c - '0');
            for (int i = 0; i < 2 && r->p < r->end && *r->p >= '0' && *r->p <= '7'; i++)
                cp = cp * 8 + (unsigned long)(*r->p++ - '0');
            break;
        }
        /* an unknown escape is kept as written, as Python does */
        buf_append(b, "\\", 1);
        buf_append(b, &c, 1);
        if (c == '\n') r->line++;
        return 0;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) return fail(r, "a string holds a lone surrogate escape");
    if (cp == 0) return fail(r, "a string holds a NUL character");
    put_utf8(b, cp);
    return 0;
}

/* One string literal at r->p (its prefix already read; raw when raw) into b. */
static int read_string(reader *r, int raw, bk_buf *b)
{
    char q = *r->p;
    int triple = r->end - r->p >= 3 && r->p[1] == q && r->p[2] == q;
    int start = r->line;
    r->p += triple ? 3 : 1;
    for (;;) {
        if (r->p >= r->end) {
            r->line = start;
            return fail(r, triple ? "a triple-quoted string is never closed"
                                  : "the quote is not closed on this line");
        }
        char c = *r->p;
        if (c == q && (!triple || (r->end - r->p >= 3 && r->p[1] == q && r->p[2] == q))) {
            r->p += triple ? 3 : 1;
            return 0;
        }
        if (c == '\n') {
            if (!triple) return fail(r, "the quote is not closed on this line");
            r->line++;
        }
        if (c == '\0') return fail(r, "a string holds a NUL character");
        r->p++;
        if (c == '\\') {
            if (raw) { /* a raw string keeps the backslash, and the quote after it */
                buf_append(b, "\\", 1);
                if (r->p < r->end && (*r->p == q || *r->p == '\\' || *r->p == '\n')) {
                    if (*r->p == '\n') r->line++;
                    buf_append(b, r->p, 1);
                    r->p++;
                }
                continue;
            }
            if (read_escape(r, b) != 0) return -1;
            continue;
        }
        buf_append(b, &c, 1);
    }
}

/* The prefix of a string at r->p (letters right before a quote): 0 none, 1 when accepted (u, r;
 * *raw set for r), -1 when refused (r->why says why). */
static int string_prefix(reader *r, size_t *len, int *raw)
{
    const char *s = r->p;
    size_t n = 0;
    while (s + n < r->end && n < 3 && isalpha((unsigned char)s[n]))
        n++;
    *len = 0;
    *raw = 0;
    if (n == 0 || s + n >= r->end || (s[n] != '\'' && s[n] != '"')) return 0;
    int b = 0, f = 0, u = 0, rr = 0, other = 0;
    for (size_t i = 0; i < n; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        b += c == 'b', f += c == 'f', u += c == 'u', rr += c == 'r';
        other += c != 'b' && c != 'f' && c != 'u' && c != 'r';
    }
    if (other || n > 2) return fail(r, "a name right before a quote is not a Python literal");
    if (b) return fail(r, "a bytes literal (b'...'): Django would see bytes, not text; write '...'");
    if (f) return fail(r, "an f-string is an expression Django computes: write the value itself, '...'");
    if (u && rr) return fail(r, "ur'...' is not a Python 3 string");
    if (u > 1 || rr > 1) return fail(r, "a string prefix is repeated");
    *len = n;
    *raw = rr > 0;
    return 1;
}

/* Strings, adjacent ones joined ('a' 'b' is 'ab'), into b. 0, or -1. */
static int read_strings(reader *r, bk_buf *b)
{
    int any = 0;
    for (;;) {
        size_t plen;
        int raw;
        int pre = string_prefix(r, &plen, &raw);
        if (pre < 0) return -1;
        if (pre == 0 && (r->p >= r->end || (*r->p != '\'' && *r->p != '"')))
            return any ? 0 : fail(r, "not a string");
        r->p += plen;
        if (read_string(r, raw, b) != 0) return -1;
        any = 1;
        const char *save = r->p;
        int save_line = r->line;
        skip_blanks(r);
        size_t l2;
        int raw2;
        int next = r->p < r->end ? string_prefix(r, &l2, &raw2) : 0;
        if (next < 0) return -1;
        if (next == 0 && (r->p >= r->end || (*r->p != '\'' && *r->p != '"'))) {
            r->p = save;
            r->line = save_line;
            return 0;
        }
    }
}

/* Appends text as a JSON string. */
static void json_string_out(bk_buf *out, const char *s, size_t n)
{
    buf_append(out, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            buf_append(out, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_append(out, esc, 6);
        } else {
            buf_append(out, (const char *)&c, 1);
        }
    }
    buf_append(out, "\"", 1);
}

/* ---- numbers ----------------------------------------------------------------------------------- */

/* The float of digits (negated when neg) as the shortest text that reads back as the same
 * double (as Python's repr; valid JSON) into text: 1, 0 when digits are no float, -1 (failed)
 * when it is out of range. */
static int float_text(reader *r, const char *digits, int neg, char *text, size_t size)
{
    char *end = NULL;
    double d = strtod(digits, &end);
    if (*end != '\0') return 0;
    if (!isfinite(d)) return fail(r, "a number is out of range");
    if (neg) d = -d;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(text, size, "%.*g", prec, d);
        if (strtod(text, NULL) == d) break;
    }
    return 1;
}

/* The int of the n digits in base (negated when neg) in decimal into text: 1, 0 when digits are
 * no int, -1 (failed) for leading zeros of a decimal or a value out of the 64-bit range. */
static int int_text(reader *r, const char *digits, size_t n, int base, int neg, char *text, size_t size)
{
    if (base == 10 && n > 1 && digits[0] == '0') {
        for (size_t i = 0; i < n; i++)
            if (digits[i] != '0')
                return fail(r, "a decimal number with leading zeros is not a Python literal");
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(digits, &end, base);
    if (*end != '\0') return 0;
    if (errno == ERANGE || v > (neg ? (unsigned long long)INT64_MAX + 1 : (unsigned long long)INT64_MAX))
        return fail(r, "a number is out of the 64-bit range");
    snprintf(text, size, "%s%llu", neg && v ? "-" : "", v);
    return 1;
}

/* A number literal at r->p: [+-] then a Python int (decimal, 0x, 0o, 0b, with _) or float. Its
 * text in b: an int in decimal, a float as written without _. 1 when one was read, 0 when the
 * text there is not a number (nothing read), -1 on an error (out of range). */
static int read_number(reader *r, bk_buf *b)
{
    const char *s = r->p, *e = r->end;
    const char *q = s;
    int neg = 0;
    if (q < e && (*q == '+' || *q == '-')) neg = *q++ == '-';
    if (q >= e || !(isdigit((unsigned char)*q) || (*q == '.' && q + 1 < e && isdigit((unsigned char)q[1]))))
        return 0;
    char digits[128];
    size_t n = 0;
    int base = 10, is_float = 0;
    if (*q == '0' && q + 1 < e && strchr("xXoObB", q[1]) != NULL) {
        char k = (char)tolower((unsigned char)q[1]);
        base = k == 'x' ? 16 : k == 'o' ? 8 : 2;
        q += 2;
    }
    const char *start = q;
    for (; q < e; q++) {
        char c = *q;
        if (c == '_' && q > start && q + 1 < e && isalnum((unsigned char)q[1])) continue;
        int ok = base == 16  ? isxdigit((unsigned char)c)
                 : base == 8 ? (c >= '0' && c <= '7')
                 : base == 2 ? (c == '0' || c == '1')
                             : isdigit((unsigned char)c) || c == '.' || c == 'e' || c == 'E' ||
                                   ((c == '+' || c == '-') && q > start && (q[-1] == 'e' || q[-1] == 'E'));
        if (!ok) break;
        if (base == 10 && (c == '.' || c == 'e' || c == 'E')) is_float = 1;
        if (n + 1 >= sizeof digits) return fail(r, "a number is too long");
        digits[n++] = c;
    }
    /* the number must end where a word ends: 10abc is a word, not a number */
    if (n == 0 || (q < e && (is_ident(*q) || *q == '.'))) return 0;
    digits[n] = '\0';
    char text[160];
    int got = is_float ? float_text(r, digits, neg, text, sizeof text)
                       : int_text(r, digits, n, base, neg, text, sizeof text);
    if (got != 1) return got;
    buf_puts(b, text);
    r->p = q;
    return 1;
}

/* ---- values ------------------------------------------------------------------------------------ */

static int read_json_value(reader *r);

/* A keyword at r->p (True, False, None) as a whole word: its length, else 0. */
static size_t keyword(const reader *r, const char *kw)
{
    size_t n = strlen(kw);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, kw, n) != 0) return 0;
    if (r->p + n < r->end && is_ident(r->p[n])) return 0;
    return n;
}

/* A name (or a call, an attribute...) where a literal was expected: refused, named. */
static int refuse_expression(reader *r)
{
    const char *s = r->p;
    size_t n = 0;
    while (s + n < r->end && (is_ident(s[n]) || s[n] == '.') && n < 40)
        n++;
    snprintf(r->why_buf, sizeof r->why_buf,
             "%.*s is a Python expression, not a literal: write the value itself", (int)n, s);
    return fail(r, r->why_buf);
}

/* A dict key (r->p on it) and its colon as JSON into r->out ("key":): 0, or -1 (failed). */
static int read_dict_key(reader *r)
{
    bk_buf key = {NULL, 0, 0, 0, 1};
    if (r->p >= r->end || (*r->p != '\'' && *r->p != '"' && !isalpha((unsigned char)*r->p))) {
        buf_free(&key);
        return fail(r, "a dict key must be a string");
    }
    if (read_strings(r, &key) != 0) {
        buf_free(&key);
        if (r->why != NULL && strcmp(r->why, "not a string") == 0) {
            r->why = NULL;
            return fail(r, "a dict key must be a string");
        }
        return -1;
    }
    if (key.oom) {
        buf_free(&key);
        r->out->oom = 1;
        return -1;
    }
    json_string_out(r->out, key.data ? key.data : "", key.len);
    buf_free(&key);
    skip_blanks(r);
    if (r->p >= r->end) return fail_eof(r);
    if (*r->p != ':')
        return fail(r, r->p < r->end && (*r->p == ',' || *r->p == '}')
                           ? "a set is not accepted: write a dict {'name': value}"
                           : "expected : after a dict key");
    r->p++;
    buf_append(r->out, ":", 1);
    skip_blanks(r);
    return 0;
}

/* A dict or list (r->p on the bracket) as JSON into r->out. */
static int read_container(reader *r)
{
    char open = *r->p, close = open == '{' ? '}' : ']';
    if (++r->depth > PY_MAX_DEPTH) return fail(r, "dicts and lists are nested too deep");
    opened(r, open);
    r->p++;
    buf_append(r->out, &open, 1);
    int first = 1;
    for (;;) {
        skip_blanks(r);
        if (r->p >= r->end) return fail_eof(r);
        if (*r->p == close) {
            r->p++;
            break;
        }
        if (!first) {
            if (*r->p != ',')
                return fail(r, open == '{' ? "expected , or } in the dict" : "expected , or ] in the list");
            r->p++;
            skip_blanks(r);
            if (r->p < r->end && *r->p == close) { /* a trailing comma */
                r->p++;
                break;
            }
            buf_append(r->out, ",", 1);
        }
        first = 0;
        if (open == '{' && read_dict_key(r) != 0) return -1;
        if (read_json_value(r) != 0) return -1;
    }
    buf_append(r->out, &close, 1);
    r->depth--;
    return 0;
}

/* One literal inside a dict or list, as JSON into r->out. */
static int read_json_value(reader *r)
{
    skip_blanks(r);
    if (r->p >= r->end) return fail_eof(r);
    char c = *r->p;
    size_t n;
    if (c == '{' || c == '[') return read_container(r);
    if (c == '(') return fail(r, "a tuple or an expression in parentheses is not accepted here");
    if ((n = keyword(r, "True")) || (n = keyword(r, "False")) || (n = keyword(r, "None"))) {
        buf_puts(r->out, c == 'T' ? "true" : c == 'F' ? "false" : "null");
        r->p += n;
        return 0;
    }
    int num = read_number(r, r->out);
    if (num != 0) return num < 0 ? -1 : 0;
    if (c == '\'' || c == '"' || isalpha((unsigned char)c)) {
        bk_buf s = {NULL, 0, 0, 0, 1};
        int rc = read_strings(r, &s);
        if (rc == 0 && !s.oom) json_string_out(r->out, s.data ? s.data : "", s.len);
        if (s.oom) r->out->oom = 1;
        buf_free(&s);
        if (rc != 0 && r->why != NULL && strcmp(r->why, "not a string") == 0) {
            r->why = NULL;
            return refuse_expression(r);
        }
        return rc;
    }
    return fail(r, "not a Python literal (a string, number, True, False, None, dict or list)");
}

/* 1 for the bytes a bare word may hold. */
static int bare_char(unsigned char c)
{
    return c >= 0x80 || (c > ' ' && c < 0x7f && strchr("'\"`()[]{},;\\#", c) == NULL);
}

/* A bare word (environment-file style) at r->p, up to the end of the line or a comment. */
static int read_bare(reader *r, py_value *out)
{
    const char *s = r->p, *e = s;
    while (e < r->end && bare_char((unsigned char)*e))
        e++;
    const char *after = e;
    while (after < r->end && (*after == ' ' || *after == '\t' || *after == '\r'))
        after++;
    /* a call or an index (os.environ.get('X'), os.environ['X']) and a dotted name
     * (settings.APP_CODE) are Python code, not text */
    if (e > s && is_ident_start(*s) && after < r->end && (*after == '(' || *after == '['))
        return refuse_expression(r);
    if (e == s || (after < r->end && *after != '\n' && *after != '#'))
        return fail(r, "not a Python literal: quote text ('...'), or give one word without spaces, quotes or "
                       "brackets");
    int dotted = is_ident_start(*s), dots = 0;
    for (const char *p = s; p < e && dotted; p++) {
        if (*p == '.') {
            dots++;
            dotted = p + 1 < e && is_ident_start(p[1]);
        } else {
            dotted = is_ident(*p);
        }
    }
    if (dotted && dots > 0) return refuse_expression(r);
    out->kind = PY_TEXT;
    buf_append(&out->text, s, (size_t)(e - s));
    r->p = e;
    return 0;
}

/* A string with a prefix (r'', u''), a number, or a bare word at r->p; in parentheses (paren)
 * only a literal. 0 or -1. */
static int read_prefixed_or_number(reader *r, py_value *out, int paren)
{
    size_t plen;
    int raw;
    int pre = string_prefix(r, &plen, &raw);
    if (pre < 0) return -1;
    if (pre > 0) return read_strings(r, &out->text);
    int num = read_number(r, &out->text);
    if (num < 0) return -1;
    if (num > 0) return 0;
    if (paren) return fail(r, "not a Python literal inside the parentheses");
    return read_bare(r, out);
}

/* The literal at r->p (after any opening parenthesis) into out. 0 or -1. */
static int read_literal(reader *r, py_value *out, int paren)
{
    size_t n;
    char c = r->p < r->end ? *r->p : '\0';
    if (r->p >= r->end || c == '\n' || c == '#') return fail(r, "the value is missing");
    if (c == '{' || c == '[') {
        out->kind = c == '{' ? PY_OBJECT : PY_LIST;
        return read_container(r);
    }
    if ((n = keyword(r, "None"))) {
        out->kind = PY_NONE;
        r->p += n;
        return 0;
    }
    if ((n = keyword(r, "True")) || (n = keyword(r, "False"))) {
        buf_append(&out->text, r->p, n);
        r->p += n;
        return 0;
    }
    if (c == '\'' || c == '"') return read_strings(r, &out->text);
    return read_prefixed_or_number(r, out, paren);
}

/* The ')' that closes a value in parentheses: one value, no tuple. 0 or -1. */
static int close_paren(reader *r)
{
    skip_blanks(r);
    if (r->p < r->end && *r->p == ',') return fail(r, "a tuple is not accepted: give one value");
    if (r->p >= r->end) return fail_eof(r);
    if (*r->p != ')') return fail(r, "expected ) after the value in parentheses");
    r->p++;
    r->depth--;
    return 0;
}

int py_read_value(const char **pp, const char *end, int *line, py_value *out, const char **why, char *why_buf,
                  size_t why_size)
{
    reader r;
    memset(&r, 0, sizeof r);
    r.p = *pp;
    r.end = end;
    r.line = *line;
    r.out = &out->text;
    out->kind = PY_TEXT;
    skip_blanks(&r);
    int paren = r.p < end && *r.p == '(';
    if (paren) { /* ('a' 'b') over several lines: a string in parentheses */
        r.depth++;
        opened(&r, '(');
        r.p++;
        skip_blanks(&r);
    }
    int rc = read_literal(&r, out, paren);
    if (rc == 0 && paren) rc = close_paren(&r);
    *line = r.line;
    if (rc != 0) {
        snprintf(why_buf, why_size, "%s", r.why ? r.why : "not a Python literal");
        *why = why_buf;
        return -1;
    }
    *pp = r.p;
    *why = NULL;
    return 0;
}

/* ---- dict settings written as JSON or Python ------------------------------------------------
 * A dict setting's value (OAUTH_PARAMS, OAUTH_COOKIES_PARAMS) from the environment, the file or
 * bkoauth_config_set() is JSON, or Python-style: read by a looser translation to JSON than the
 * reader above, for the value checks and the conversion to settings. */

/* The end of the comment at p: its newline, or the end of the text. */
static const char *comment_end(const char *p)
{
    while (*p && *p != '\n')
        p++;
    return p;
}

/* The escape \c of a quoted string, written for a JSON string. */
static void json_escape_out(bk_buf *b, char c)
{
    if (c == '\'') {
        buf_puts(b, "'");
    } else if (c == '"') {
        buf_puts(b, "\\\"");
    } else {
        char esc[3] = {'\\', c, 0};
        buf_puts(b, esc);
    }
}

/* Copies the string quoted with ' or " at *pp to b as a JSON string, *pp then after it.
 * Returns -1 when it is not closed. */
static int quoted_to_json(const char **pp, bk_buf *b)
{
    const char *p = *pp;
    char q = *p++;
    buf_puts(b, "\"");
    while (*p && *p != q) {
        if (*p == '\\') {
            p++;
            if (*p == '\0') break;
            json_escape_out(b, *p++);
            continue;
        }
        if (*p == '"')
            buf_puts(b, "\\\"");
        else
            buf_append(b, p, 1);
        p++;
    }
    if (*p != q) return -1;
    buf_puts(b, "\"");
    *pp = p + 1;
    return 0;
}

/* Copies the word at *pp to b, True, False and None as JSON writes them; *pp then after it. */
static void word_to_json(const char **pp, bk_buf *b)
{
    const char *s = *pp, *p = s;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    size_t n = (size_t)(p - s);
    if (n == 4 && strncmp(s, "True", 4) == 0)
        buf_puts(b, "true");
    else if (n == 5 && strncmp(s, "False", 5) == 0)
        buf_puts(b, "false");
    else if (n == 4 && strncmp(s, "None", 4) == 0)
        buf_puts(b, "null");
    else
        buf_append(b, s, n);
    *pp = p;
}

/* Whether the comma at p is the last of its brackets: only blanks and comments between it and
 * the closing } or ] (Python allows that, JSON does not). */
static int trailing_comma(const char *p)
{
    const char *q = p + 1;
    for (;;) { /* blanks and comments to the next token */
        while (isspace((unsigned char)*q))
            q++;
        if (*q != '#') break;
        q = comment_end(q);
    }
    return *q == '}' || *q == ']';
}

/* Python-style literal to JSON: single-quoted strings, True/False/None, trailing commas.
 * Returns a new string, or NULL with why set (NULL when out of memory). */
static char *python_to_json(const char *in, const char **why)
{
    bk_buf b = {0};
    *why = NULL;
    for (const char *p = in; *p;) {
        if (*p == '\'' || *p == '"') {
            if (quoted_to_json(&p, &b) != 0) {
                buf_free(&b);
                *why = "a string is not closed";
                return NULL;
            }
        } else if (*p == '#') { /* a comment in a multi-line object runs to the end of its line */
            p = comment_end(p);
        } else if (isalpha((unsigned char)*p)) {
            word_to_json(&p, &b);
        } else if (*p == ',' && trailing_comma(p)) {
            p++; /* dropped, as JSON has no trailing comma */
        } else {
            buf_append(&b, p++, 1);
        }
    }
    if (b.oom) {
        buf_free(&b);
        return NULL; /* out of memory: no reason */
    }
    return b.data ? b.data : bk_strdup("");
}

json_t *py_parse_object(const char *text, char *why, size_t why_size, int *oom)
{
    const char *pwhy = NULL;
    *oom = 0;
    char *js = python_to_json(text, &pwhy);
    if (js == NULL) {
        if (pwhy == NULL)
            *oom = 1;
        else
            snprintf(why, why_size, "%s", pwhy);
        return NULL;
    }
    json_error_t je;
    json_t *j = bkoauth__json_loadb(js, strlen(js), 0, &je, oom);
    bkoauth__free(js);
    if (*oom) return NULL;
    if (j == NULL) {
        snprintf(why, why_size, "not a JSON object (%.100s at column %d)", je.text, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(why, why_size, "not a JSON object");
        return NULL;
    }
    return j;
}
