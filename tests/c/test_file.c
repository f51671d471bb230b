/* core/file.c: the confined open (openat2 and the component walk must give the same answer
 * and the same message for every path), non-regular files named by kind, whole-file reads and
 * writes, and the watch that tells a file changed since it was mapped. */
#include "core/file.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char dir[] = "/tmp/ductile_file_test_XXXXXX";

static void put(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        fprintf(stderr, "test: cannot write %s\n", p);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static void link_(const char *target, const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (symlink(target, p) != 0) {
        fprintf(stderr, "test: cannot link %s\n", p);
        exit(2);
    }
}

/* Opens rel in the folder with the walk forced or not; returns the file's text or the error
 * message, in buf. */
static const char *open_in(const char *rel, int walk, char *buf, size_t cap)
{
    if (walk) setenv("DUCTILE_FILE_NO_OPENAT2", "1", 1);
    else unsetenv("DUCTILE_FILE_NO_OPENAT2");
    int fd;
    struct stat st;
    ductile_status s = dt_file_open_beneath(dir, rel, NULL, "the test folder", &fd, &st);
    if (s) {
        snprintf(buf, cap, "%s", ductile_last_error());
        return buf;
    }
    size_t n = (size_t)st.st_size < cap - 1 ? (size_t)st.st_size : cap - 1;
    s = dt_file_read_all(fd, buf, n, rel, NULL);
    close(fd);
    buf[s ? 0 : n] = 0;
    return buf;
}

static void test_confined_open_is_the_same_with_and_without_openat2(void)
{
    put("a.bin", "A");
    char p[256];
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0700);
    put("sub/b.bin", "B");
    snprintf(p, sizeof p, "%s/fifo", dir);
    mkfifo(p, 0600);
    link_("sub/..", "up");           /* a directory link whose '..' stays inside */
    link_("sub/../..", "out");       /* ... and one whose second '..' leaves */
    link_("sub", "s");
    link_("../b.bin", "sub/back");   /* from sub: '..' to the folder, then a missing file */
    link_("up/s/b.bin", "lb");       /* a last component whose target goes through links */
    link_("lb", "llb");
    link_("s/../..", "far");         /* the '..' that leaves is far's, after s's expansion */
    link_("s", "ls");
    link_("ls/..", "near");          /* ... and here every '..' is near's, inside */

    static const struct {
        const char *rel, *want;
    } cases[] = {
        {"a.bin", "A"},
        {"./sub//b.bin", "B"},
        {"sub/../a.bin", "A"},
        {"up/a.bin", "A"},
        {"up/up/sub/b.bin", "B"},
        {"s/b.bin", "B"},
        {"lb", "B"},
        {"llb", "B"},
        {"up/llb", "B"},
        {"../a.bin", "'../a.bin': '..' leaves the test folder"},
        {"sub/../../a.bin", "'sub/../../a.bin': '..' leaves the test folder"},
        /* The '..' after s's target is the path's own, not the link's. */
        {"s/../../a.bin", "'s/../../a.bin': '..' leaves the test folder"},
        {"out/a.bin", "'out/a.bin': symlink 'out' -> 'sub/../..' leaves the test folder"},
        {"up/out", "'up/out': symlink 'out' -> 'sub/../..' leaves the test folder"},
        {"far", "'far': symlink 'far' -> 's/../..' leaves the test folder"},
        {"near/a.bin", "A"},
        {"near/near/sub/b.bin", "B"},
        {"/etc/passwd", "'/etc/passwd': an absolute path leaves the test folder"},
        {"sub/back", "cannot open 'sub/back': No such file or directory"},
        {"a.bin/", "cannot open 'a.bin/': Not a directory"},
        {"fifo/x", "cannot open 'fifo/x': Not a directory"},
        {"fifo", "'fifo' is a FIFO, not a regular file"},
        {"sub/", "'sub/' is a directory, not a regular file"},
        {"up", "'up' is a directory, not a regular file"},
        {".", "'.' is a directory, not a regular file"},
    };
    char got[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int walk = 0; walk < 2; walk++) {
            open_in(cases[i].rel, walk, got, sizeof got);
            if (strcmp(got, cases[i].want) != 0)
                fprintf(stderr, "  '%s' (%s): got \"%s\"\n", cases[i].rel, walk ? "walk" : "openat2", got);
            CHECK_EQ_STR(got, cases[i].want);
        }
    unsetenv("DUCTILE_FILE_NO_OPENAT2");
    int fd;
    struct stat st;
    CHECK_EQ_INT(dt_file_open_beneath("/nonexistent_ductile", "a", "data", "the folder", &fd, &st), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), "cannot open the folder '/nonexistent_ductile': No such file or directory");
}

static void test_open_read_names_what_the_path_is(void)
{
    char p[256];
    int fd;
    struct stat st;
    snprintf(p, sizeof p, "%s/fifo", dir);
    CHECK_EQ_INT(dt_file_open_read(p, "engine", &fd, &st), DUCTILE_ERR_IO);
    char want[512];
    snprintf(want, sizeof want, "engine '%s' is a FIFO, not a regular file", p);
    CHECK_EQ_STR(ductile_last_error(), want);
    CHECK_EQ_INT(dt_file_open_read("/dev/null", NULL, &fd, &st), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), "'/dev/null' is a character device, not a regular file");
    snprintf(p, sizeof p, "%s/absent", dir);
    CHECK_EQ_INT(dt_file_open_read(p, NULL, &fd, &st), DUCTILE_ERR_IO);
    snprintf(want, sizeof want, "cannot open '%s': No such file or directory", p);
    CHECK_EQ_STR(ductile_last_error(), want);

    /* A file shorter than its caller expects (it shrank after fstat). */
    snprintf(p, sizeof p, "%s/a.bin", dir);
    CHECK_EQ_INT(dt_file_open_read(p, NULL, &fd, &st), DUCTILE_OK);
    char buf[4];
    CHECK_EQ_INT(dt_file_read_all(fd, buf, 3, "a.bin", "engine file"), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(),
                 "cannot read engine file 'a.bin': it ended after 1 of 3 bytes (it shrank while being read)");
    close(fd);
}

static void test_create_refuses_what_is_not_a_regular_file(void)
{
    char p[256], want[512];
    int fd;
    snprintf(p, sizeof p, "%s/fifo", dir);
    CHECK_EQ_INT(dt_file_create(p, NULL, &fd), DUCTILE_ERR_IO);   /* no reader: ENXIO */
    snprintf(want, sizeof want, "'%s' is a FIFO, not a regular file", p);
    CHECK_EQ_STR(ductile_last_error(), want);
    int reader = open(p, O_RDONLY | O_NONBLOCK);                  /* with a reader */
    CHECK_EQ_INT(dt_file_create(p, NULL, &fd), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(), want);
    close(reader);
    CHECK_EQ_INT(dt_file_create(dir, NULL, &fd), DUCTILE_ERR_IO);
    snprintf(want, sizeof want, "'%s' is a directory, not a regular file", dir);
    CHECK_EQ_STR(ductile_last_error(), want);

    put("w.bin", "a longer old text");
    snprintf(p, sizeof p, "%s/w.bin", dir);
    CHECK_EQ_INT(dt_file_create(p, NULL, &fd), DUCTILE_OK);
    CHECK_EQ_INT(dt_file_write_close(fd, "new", 3, p, NULL), DUCTILE_OK);
    char got[64];
    CHECK_EQ_STR(open_in("w.bin", 0, got, sizeof got), "new");
}

static void test_watch_tells_a_file_changed_since_it_was_mapped(void)
{
    char p[256], q[256];
    snprintf(p, sizeof p, "%s/w.bin", dir);
    put("w.bin", "0123456789");
    struct stat st;
    stat(p, &st);
    dt_file_watch *w = NULL;
    CHECK_EQ_INT(dt_file_watch_add(&w, dir, "w.bin", "external data file", &st), DUCTILE_OK);
    CHECK_EQ_INT(dt_file_watch_check(w), DUCTILE_OK);
    CHECK_EQ_INT(truncate(p, 4), 0);
    CHECK_EQ_INT(dt_file_watch_check(w), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(),
                 "external data file 'w.bin' changed since parsing (10 bytes then, 4 now); parse the model again");
    CHECK_EQ_INT(truncate(p, 10), 0);
    struct timeval tv[2] = {{st.st_atim.tv_sec, 0}, {st.st_mtim.tv_sec + 5, 0}};
    utimes(p, tv);
    CHECK_EQ_INT(dt_file_watch_check(w), DUCTILE_ERR_IO);
    CHECK_EQ_STR(ductile_last_error(),
                 "external data file 'w.bin' changed since parsing (written to after it was read); parse the model again");
    /* Replaced by rename, then deleted: the name leads elsewhere, the mapped inode is intact. */
    put("w.new", "x");
    snprintf(q, sizeof q, "%s/w.new", dir);
    CHECK_EQ_INT(rename(q, p), 0);
    CHECK_EQ_INT(dt_file_watch_check(w), DUCTILE_OK);
    unlink(p);
    CHECK_EQ_INT(dt_file_watch_check(w), DUCTILE_OK);
    dt_file_watch_free(w);
    dt_file_watch_free(NULL);
    CHECK_EQ_INT(dt_file_watch_check(NULL), DUCTILE_OK);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_confined_open_is_the_same_with_and_without_openat2();
    test_open_read_names_what_the_path_is();
    test_create_refuses_what_is_not_a_regular_file();
    test_watch_tells_a_file_changed_since_it_was_mapped();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "test: could not remove %s\n", dir);
    TEST_MAIN_END();
}
