/* RegexFullMatch's patterns: RE2 syntax rewritten as a POSIX extended expression for glibc's
 * regcomp (a well-kept matcher already in the C library; RE2 is C++), run under C.UTF-8 so
 * that '.' and [^...] take a code point, as RE2 does. What full matching needs carries over:
 * acceptance does not depend on leftmost-first (RE2) against leftmost-longest (POSIX)
 * choices, so lazy quantifiers become greedy ones. RE2's classes are ASCII (\w, \s, \d,
 * [[:alpha:]]): they are spelled out as ASCII ranges, since C.UTF-8's own classes take
 * every letter. \b and \B stay glibc's (a letter beyond ASCII counts as a word character
 * there, not in RE2). What POSIX cannot say is refused at build time, naming the byte
 * offset. */
#include "ops/strings.h"
#include "core/status.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct dt_rx_out {
    char *buf;
    size_t cap, n;
    bool full;
} dt_rx_out;

static void dt_rx_put(dt_rx_out *o, const char *s)
{
    size_t k = strlen(s);
    if (o->n + k + 1 > o->cap) { o->full = true; return; }
    memcpy(o->buf + o->n, s, k + 1);
    o->n += k;
}

static void dt_rx_putc(dt_rx_out *o, char c) { char s[2] = {c, 0}; dt_rx_put(o, s); }

static ductile_status dt_rx_refuse(size_t at, const char *what)
{
    return dt_fail(DUCTILE_ERR_UNSUPPORTED, "byte %zu: %s is RE2 syntax that ductile's POSIX matcher lacks", at, what);
}

/* RE2's POSIX classes are ASCII: the ranges for those C.UTF-8 widens; others as written. */
static const char *dt_rx_ascii_class(const char *cls)
{
    static const char *const map[][2] = {
        {"[:alnum:]", "0-9A-Za-z"}, {"[:alpha:]", "A-Za-z"}, {"[:digit:]", "0-9"}, {"[:lower:]", "a-z"},
        {"[:upper:]", "A-Z"}, {"[:word:]", "0-9A-Za-z_"}, {"[:xdigit:]", "0-9A-Fa-f"},
        {"[:space:]", "\t\n\v\f\r "}, {"[:blank:]", "\t "},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(cls, map[i][0])) return map[i][1];
    return cls;
}

/* A bracket expression starting at re[*i] == '['; RE2's escapes inside become POSIX classes
 * and literal characters ('-' last, ']' first, as POSIX wants them). */
static ductile_status dt_rx_bracket(const char *re, size_t *i, dt_rx_out *o)
{
    size_t at = *i, k = *i + 1;
    bool neg = re[k] == '^', dash = false, close = false, caret = false;
    if (neg) k++;
    char body[1024];
    size_t b = 0;
#define DT_BODY(str) do { const char *s_ = (str); size_t l_ = strlen(s_); if (b + l_ >= sizeof body) return dt_rx_refuse(at, "a bracket expression this long"); memcpy(body + b, s_, l_); b += l_; } while (0)
    for (bool first = true;; first = false) {
        char c = re[k];
        if (!c) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "byte %zu: '[' is not closed", at);
        if (c == ']' && !first) break;
        if (c == '[' && re[k + 1] == ':') {
            const char *e = strstr(re + k + 2, ":]");
            if (!e) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "byte %zu: '[:' is not closed", k);
            char cls[64];
            size_t l = (size_t)(e + 2 - (re + k));
            if (l >= sizeof cls) return dt_rx_refuse(k, "a class name this long");
            memcpy(cls, re + k, l);
            cls[l] = 0;
            DT_BODY(dt_rx_ascii_class(cls));
            k += l;
            continue;
        }
        if (c == '\\') {
            char e = re[k + 1];
            switch (e) {
            case 'w': DT_BODY("0-9A-Za-z_"); break;
            case 'd': DT_BODY("0-9"); break;
            case 's': DT_BODY("\t\n\f\r "); break;
            case 'W': case 'D': case 'S': return dt_rx_refuse(k, "a negated class (\\W, \\D, \\S) inside [...]");
            case '-': dash = true; break;
            case ']': close = true; break;
            case '^': caret = true; break;
            case 'n': DT_BODY("\n"); break;
            case 't': DT_BODY("\t"); break;
            case 'r': DT_BODY("\r"); break;
            case 'f': DT_BODY("\f"); break;
            case 'v': DT_BODY("\v"); break;
            case 0: return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "byte %zu: '\\' ends the pattern", k);
            default:
                if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
                    return dt_rx_refuse(k, "this escape inside [...]");
                { char s[2] = {e, 0}; DT_BODY(s); }
            }
            k += 2;
            continue;
        }
        if (c == '-' && (first || re[k + 1] == ']')) { dash = true; k++; continue; }
        /* glibc orders ranges by collation, and C.UTF-8 has none beyond ASCII: RE2's code
         * point ranges past it have no POSIX spelling here. */
        if (c == '-' && ((b && (unsigned char)body[b - 1] >= 0x80) || (unsigned char)re[k + 1] >= 0x80))
            return dt_rx_refuse(k, "a range of characters beyond ASCII inside [...]");
        if (c == '^') { caret = true; k++; continue; }
        if (c == ']') { close = true; k++; continue; }
        char s[2] = {c, 0};
        DT_BODY(s);
        k++;
    }
#undef DT_BODY
    body[b] = 0;
    dt_rx_put(o, neg ? "[^" : "[");
    if (close) dt_rx_put(o, "]");
    dt_rx_put(o, body);
    if (caret) dt_rx_put(o, "^");
    if (dash) dt_rx_put(o, "-");
    if (!close && !b && !caret && !dash) return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "byte %zu: '[]' is empty", at);
    dt_rx_put(o, "]");
    *i = k + 1;
    return DUCTILE_OK;
}

ductile_status dt_regex_to_posix(const char *re, char *buf, size_t cap)
{
    dt_rx_out o = {buf, cap, 0, false};
    buf[0] = 0;
    dt_rx_put(&o, "^(");
    for (size_t i = 0; re[i];) {
        char c = re[i];
        if (c == '[') {
            DT_TRY(dt_rx_bracket(re, &i, &o));
            continue;
        }
        if (c == '(' && re[i + 1] == '?') {
            if (re[i + 2] != ':') return dt_rx_refuse(i, "a group with flags or a name ((?...))");
            dt_rx_put(&o, "(");
            i += 3;
            continue;
        }
        if ((c == '*' || c == '+' || c == '?' || c == '}') && re[i + 1] == '?') {
            dt_rx_putc(&o, c); /* lazy: the same set of full matches as greedy */
            i += 2;
            continue;
        }
        if (c == '\\') {
            char e = re[i + 1];
            switch (e) {
            case 'd': dt_rx_put(&o, "[0-9]"); break;
            case 'D': dt_rx_put(&o, "[^0-9]"); break;
            case 'w': dt_rx_put(&o, "[0-9A-Za-z_]"); break;
            case 'W': dt_rx_put(&o, "[^0-9A-Za-z_]"); break;
            case 's': dt_rx_put(&o, "[\t\n\f\r ]"); break;
            case 'S': dt_rx_put(&o, "[^\t\n\f\r ]"); break;
            case 'b': case 'B': {
                char s[3] = {'\\', e, 0};
                dt_rx_put(&o, s);
                break;
            }
            case 'n': dt_rx_put(&o, "\n"); break;
            case 't': dt_rx_put(&o, "\t"); break;
            case 'r': dt_rx_put(&o, "\r"); break;
            case 'f': dt_rx_put(&o, "\f"); break;
            case 'v': dt_rx_put(&o, "\v"); break;
            case 0: return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "byte %zu: '\\' ends the pattern", i);
            default:
                if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
                    char what[40];
                    snprintf(what, sizeof what, "the escape \\%c", e);
                    return dt_rx_refuse(i, what);
                }
                if (strchr(".[]()*+?{}|^$\\", e)) {
                    char s[3] = {'\\', e, 0};
                    dt_rx_put(&o, s);
                } else {
                    dt_rx_putc(&o, e); /* \- \/ \@ ...: the character itself */
                }
            }
            i += 2;
            continue;
        }
        dt_rx_putc(&o, c);
        i++;
    }
    dt_rx_put(&o, ")$");
    if (o.full) return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the pattern is longer than ductile's %zu-byte limit", cap / 2);
    return DUCTILE_OK;
}
