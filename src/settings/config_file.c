/* SPDX-License-Identifier: MIT */
/* config_file.c - the settings file: NAME = value lines, as Django reads its settings module
 * (the values are Python literals, read by pyliteral.c) or as an environment file
 * (export NAME=value, bare words). Each value is set with bkoauth_config_set(), so it is
 * checked as any other; a message names the file and the line. */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CONFIG_MAX_FILE (1024 * 1024)

/* After a value: only spaces and a # comment may follow on the line. */
static int rest_is_blank(const char *p, const char *eol)
{
    while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    return p == eol || *p == '#';
}

/* Reads the "NAME =" of a setting line (an environment file's "export " before it allowed) into
 * name. Returns what follows the '=', or NULL when the line does not start so. */
static const char *read_name(const char *s, const char *eol, char name[65])
{
    while (s < eol && (*s == ' ' || *s == '\t' || *s == '\r'))
        s++;
    if ((size_t)(eol - s) > 7 && strncmp(s, "export ", 7) == 0) s += 7;
    while (s < eol && (*s == ' ' || *s == '\t'))
        s++;
    const char *name_start = s;
    while (s < eol && (isalnum((unsigned char)*s) || *s == '_'))
        s++;
    size_t name_len = (size_t)(s - name_start);
    while (s < eol && (*s == ' ' || *s == '\t'))
        s++;
    if (name_len == 0 || name_len > 64 || s == eol || *s != '=' || (s + 1 < eol && s[1] == '=') ||
        isdigit((unsigned char)*name_start))
        return NULL;
    memcpy(name, name_start, name_len);
    name[name_len] = '\0';
    return s + 1;
}

/* Reads the value of setting name at *sp, on a line ending at eol, into val; the value may run on
 * to end, and *line is advanced over the lines it spans. Nothing after the '=' (an environment
 * file's empty value) is "". Returns OK with *sp at the end of the value's last line. */
static bkoauth_code read_value(const char **sp, const char *eol, const char *end, int *line, const char *name,
                               py_value *val, const char *label, bkoauth_error *err)
{
    const char *s = *sp;
    const char *why = NULL;
    char why_buf[160];
    int at = *line;
    if (!rest_is_blank(s, eol) && py_read_value(&s, end, &at, val, &why, why_buf, sizeof why_buf) != 0) {
        if (val->text.oom) return err_nomem(err);
        return err_set(err, BKOAUTH_E_CONFIG, "%s:%d: %s: %s", label, at, name, why);
    }
    *line = at;
    const char *veol = memchr(s, '\n', (size_t)(end - s));
    if (veol == NULL) veol = end;
    if (!rest_is_blank(s, veol))
        return err_set(err, BKOAUTH_E_CONFIG,
                       "%s:%d: %s: unexpected text after the value (an expression? the settings file takes "
                       "literals only)",
                       label, at, name);
    if (val->text.oom) return err_nomem(err);
    *sp = veol;
    return BKOAUTH_OK;
}

/* Sets name to val, written at line this_line: a list never, a dict only for a dict setting. */
static bkoauth_code set_value(bkoauth_config *config, const char *name, const py_value *val,
                              const char *label, int this_line, bkoauth_error *err)
{
    int i = config_find(name);
    setting_kind k = i >= 0 ? config_settings[i].kind : K_TEXT;
    int takes_dict = k == K_STRMAP || k == K_OBJECT;
    if ((val->kind == PY_OBJECT && !takes_dict) || val->kind == PY_LIST)
        return err_set(err, BKOAUTH_E_CONFIG, "%s:%d: %s takes %s, not a %s", label, this_line, name,
                       takes_dict ? "a dict" : "one value", val->kind == PY_LIST ? "list" : "dict");
    bkoauth_code rc = bkoauth_config_set(
        config, name, val->kind == PY_NONE ? NULL : (val->text.data ? val->text.data : ""), err);
    if (rc != BKOAUTH_OK) err_prefix(err, "%s:%d", label, this_line);
    return rc;
}

/* Parses the setting on the line from p to eol (its value may run on to end, *line is advanced
 * over the lines it spans). Returns OK with *eol at the end of the setting's last line. */
static bkoauth_code parse_setting(bkoauth_config *config, const char *p, const char **eol, const char *end,
                                  int *line, const char *label, bkoauth_error *err)
{
    int this_line = *line;
    char name[65];
    const char *s = read_name(p, *eol, name);
    if (s == NULL) return err_set(err, BKOAUTH_E_CONFIG, "%s:%d: expected NAME = value", label, this_line);
    py_value val;
    memset(&val, 0, sizeof val);
    val.text.secret = 1; /* the value of SECRET_KEY */
    bkoauth_code rc = read_value(&s, *eol, end, line, name, &val, label, err);
    if (rc == BKOAUTH_OK) rc = set_value(config, name, &val, label, this_line, err);
    buf_free(&val.text);
    *eol = s;
    return rc;
}

/* The settings, line by line: blank lines and # comments passed over. */
static bkoauth_code parse_lines(bkoauth_config *config, const char *text, size_t len, const char *label,
                                bkoauth_error *err)
{
    const char *p = text, *end = text + len;
    int line = 1;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) eol = end;
        if (!rest_is_blank(p, eol)) {
            bkoauth_code rc = parse_setting(config, p, &eol, end, &line, label, err);
            if (rc != BKOAUTH_OK) return rc;
        }
        p = eol + 1;
        line++;
    }
    return err_ok(err);
}

/* The first line of text that is not UTF-8 (text is not, as a whole); the lines are cut at
 * their newlines in turn and put back. */
static int first_bad_line(char *text)
{
    int line = 1;
    for (char *p = text;; line++) {
        char *eol = strchr(p, '\n');
        if (eol != NULL) *eol = '\0';
        int ok = bk_utf8_ok(p);
        if (eol != NULL) *eol = '\n';
        if (!ok || eol == NULL) break;
        p = eol + 1;
    }
    return line;
}

bkoauth_code config_parse_text(bkoauth_config *config, const char *text, size_t len, const char *label,
                               bkoauth_error *err)
{
    if (memchr(text, '\0', len) != NULL)
        return err_set(err, BKOAUTH_E_CONFIG, "%s: the file holds a NUL byte; is it a text file?", label);
    /* the line parser relies on a NUL after the text */
    char *copy = bk_strndup(text, len);
    if (copy == NULL) return err_nomem(err);
    bkoauth_code rc;
    if (!bk_utf8_ok(copy)) { /* Python would not read it either: say which line */
        rc = err_set(err, BKOAUTH_E_CONFIG, "%s:%d: the line is not UTF-8 text; save the file as UTF-8",
                     label, first_bad_line(copy));
    } else {
        size_t skip = len >= 3 && memcmp(copy, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* a byte order mark */
        rc = parse_lines(config, copy + skip, len - skip, label, err);
    }
    bkoauth__wipe_free(copy, len);
    return rc;
}

bkoauth_code bkoauth_config_load_file(bkoauth_config *config, const char *path, bkoauth_error *err)
{
    if (config == NULL || path == NULL)
        return err_set(err, BKOAUTH_E_INVALID, "bkoauth_config_load_file: config and path must not be NULL");
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        return err_set(err, e == ENOMEM ? BKOAUTH_E_NOMEM : BKOAUTH_E_CONFIG,
                       "%s: cannot open the settings file: %s", path, strerror(e));
    }
    bk_buf b = {0};
    b.secret = 1; /* it holds SECRET_KEY */
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_append(&b, chunk, n);
        if (b.len > CONFIG_MAX_FILE) {
            fclose(f);
            buf_free(&b);
            return err_set(err, BKOAUTH_E_CONFIG, "%s: the settings file is larger than %d bytes", path,
                           CONFIG_MAX_FILE);
        }
    }
    int read_error = ferror(f) ? errno : 0;
    fclose(f);
    if (b.oom || read_error == ENOMEM) {
        buf_free(&b);
        return err_set(err, BKOAUTH_E_NOMEM, "%s: out of memory reading the settings file", path);
    }
    if (read_error) {
        buf_free(&b);
        return err_set(err, BKOAUTH_E_CONFIG, "%s: cannot read the settings file", path);
    }
    bkoauth_code rc = config_parse_text(config, b.data ? b.data : "", b.len, path, err);
    buf_free(&b);
    return rc;
}
