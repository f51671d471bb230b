/* Tiny assertion macros for the C test programs. A failed check prints where and what, counts
 * the failure and lets the test go on, so one run reports every broken behaviour. */
#ifndef DT_TESTUTIL_H
#define DT_TESTUTIL_H

#include <stdio.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        test_checks++;                                                                      \
        if (!(cond)) {                                                                      \
            test_failures++;                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
        }                                                                                   \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                  \
    do {                                                                                    \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                     \
        test_checks++;                                                                      \
        if (check_a_ != check_b_) {                                                         \
            test_failures++;                                                                \
            fprintf(stderr, "%s:%d: CHECK_EQ_INT failed: %s == %lld, %s == %lld\n",         \
                    __FILE__, __LINE__, #a, check_a_, #b, check_b_);                        \
        }                                                                                   \
    } while (0)

/* NULL compares equal only to NULL. */
#define CHECK_EQ_STR(a, b)                                                                  \
    do {                                                                                    \
        const char *check_a_ = (a), *check_b_ = (b);                                        \
        test_checks++;                                                                      \
        if (!(check_a_ == check_b_ ||                                                       \
              (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0))) {                 \
            test_failures++;                                                                \
            fprintf(stderr, "%s:%d: CHECK_EQ_STR failed: %s == \"%s\", %s == \"%s\"\n",     \
                    __FILE__, __LINE__, #a, check_a_ ? check_a_ : "(null)", #b,             \
                    check_b_ ? check_b_ : "(null)");                                        \
        }                                                                                   \
    } while (0)

/* Ends main: prints a summary and returns nonzero when any check failed. */
#define TEST_MAIN_END()                                                                     \
    do {                                                                                    \
        fprintf(stderr, "%s: %d checks, %d failed\n", __FILE__, test_checks,               \
                test_failures);                                                             \
        return test_failures ? 1 : 0;                                                       \
    } while (0)

#endif
