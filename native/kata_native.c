/*
 * kata_native: the few host operations Node.js cannot do by itself.
 *
 *   openPty()                          -> { master, slave, name }
 *   sendFd(socketPath, fd, data)       runc's --console-socket protocol (sender side)
 *   listenUnix(socketPath)             -> listening fd (for tests / a conmon stand-in)
 *   recvFd(listenFd, timeoutMs)        -> Promise<{ fd, data }> (accept one, recvmsg)
 *   recvFdFromListener(path, timeoutMs)-> Promise<{ fd, data }> (listen + recvFd + cleanup)
 *   getWinsize(fd)                     -> { rows, cols }
 *   setWinsize(fd, rows, cols)
 *   setRaw(fd)
 *   peerCred(fd)                       -> { pid, uid, gid } of a connected unix socket's peer
 *
 * Every fd this file creates is close-on-exec. Errors are JS Errors whose message is
 * "<call>: <what>: <strerror>" and whose `code` is the errno name (ENOENT, ...).
 *
 * Unix socket paths longer than sun_path (108 bytes) are reached through the parent
 * directory: it is opened with O_PATH and the socket addressed as
 * /proc/self/fd/<dirfd>/<basename>, so no chdir is needed.
 */
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* The most bytes recvFd collects from one connection (runc sends a pty name). */
#define RECV_MAX_DATA 65536
/* Room for a few fds so that a sender passing more than one is detected, not truncated. */
#define RECV_MAX_FDS 8

/* ---------------------------------------------------------------------------------------- */
/* errors                                                                                    */

static const char *errno_name(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *n = strerrorname_np(e);
  if (n != NULL) return n;
#endif
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case ENOSPC: return "ENOSPC";
    case EPIPE: return "EPIPE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    case EBADMSG: return "EBADMSG";
    case ENOTSOCK: return "ENOTSOCK";
    case EMSGSIZE: return "EMSGSIZE";
    case EPROTOTYPE: return "EPROTOTYPE";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ECONNABORTED: return "ECONNABORTED";
    case ECONNRESET: return "ECONNRESET";
    case ENOTCONN: return "ENOTCONN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    default: return "EUNKNOWN";
  }
}

/* Formats "<prefix>: <strerror(err)>" into buf. */
static void format_errno(char *buf, size_t size, int err, const char *fmt, va_list ap) {
  int n = vsnprintf(buf, size, fmt, ap);
  if (n < 0) n = 0;
  if ((size_t)n < size) snprintf(buf + n, size - (size_t)n, ": %s", strerror(err));
}

static napi_value make_error(napi_env env, const char *code, const char *message) {
  napi_value js_code, js_msg, error;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &js_msg) != napi_ok) return NULL;
  if (napi_create_error(env, js_code, js_msg, &error) != napi_ok) return NULL;
  return error;
}

/* Throws an Error for errno value err; always returns NULL so callers can `return throw_errno(...)`. */
__attribute__((format(printf, 3, 4)))
static napi_value throw_errno(napi_env env, int err, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  format_errno(msg, sizeof msg, err, fmt, ap);
  va_end(ap);
  napi_value error = make_error(env, errno_name(err), msg);
  if (error != NULL) napi_throw(env, error);
  else napi_throw_error(env, errno_name(err), msg);
  return NULL;
}

__attribute__((format(printf, 2, 3)))
static napi_value throw_type(napi_env env, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* For N-API calls that only fail on engine trouble (out of memory, pending exception). */
#define NAPI_CALL(env, call)                                                   \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      bool pending_ = false;                                                   \
      napi_is_exception_pending((env), &pending_);                             \
      if (!pending_) napi_throw_error((env), NULL, "kata_native: " #call " failed"); \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

/* ---------------------------------------------------------------------------------------- */
/* argument helpers                                                                          */

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv,
                     const char *fn) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "kata_native: napi_get_cb_info failed");
    return false;
  }
  if (argc < want) {
    throw_type(env, "%s: expected %zu arguments, got %zu", fn, want, argc);
    return false;
  }
  return true;
}

/* A non-negative integer no larger than max. */
static bool get_uint(napi_env env, napi_value v, double max, const char *fn, const char *what,
                     double *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number ||
      napi_get_value_double(env, v, &d) != napi_ok || !isfinite(d) || d < 0 || d > max ||
      d != floor(d)) {
    throw_type(env, "%s: %s must be an integer from 0 to %.0f", fn, what, max);
    return false;
  }
  *out = d;
  return true;
}

static bool get_fd(napi_env env, napi_value v, const char *fn, int *fd) {
  double d;
  if (!get_uint(env, v, INT_MAX, fn, "fd", &d)) return false;
  *fd = (int)d;
  return true;
}

/* The one argument of fn(fd), an fd. */
static bool get_only_fd(napi_env env, napi_callback_info info, const char *fn, int *fd) {
  napi_value argv[1];
  return get_args(env, info, 1, argv, fn) && get_fd(env, argv[0], fn, fd);
}

/* Timeout in milliseconds: a non-negative number, or Infinity for no timeout (-1). */
static bool get_timeout(napi_env env, napi_value v, const char *fn, int *ms) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number ||
      napi_get_value_double(env, v, &d) != napi_ok || isnan(d) || d < 0) {
    throw_type(env, "%s: timeoutMs must be a non-negative number or Infinity", fn);
    return false;
  }
  *ms = d >= (double)INT_MAX ? -1 : (int)ceil(d);
  return true;
}

/* A malloc'd UTF-8 copy of a JS string; rejects embedded NULs when no_nul. */
static char *get_string(napi_env env, napi_value v, const char *fn, const char *what, bool no_nul,
                        size_t *len_out) {
  napi_valuetype t;
  size_t len = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    throw_type(env, "%s: %s must be a string", fn, what);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s == NULL) {
    throw_errno(env, ENOMEM, "%s", fn);
    return NULL;
  }
  size_t got = 0;
  if (napi_get_value_string_utf8(env, v, s, len + 1, &got) != napi_ok) {
    free(s);
    napi_throw_error(env, NULL, "kata_native: napi_get_value_string_utf8 failed");
    return NULL;
  }
  if (no_nul && strlen(s) != got) {
    free(s);
    throw_type(env, "%s: %s must not contain NUL characters", fn, what);
    return NULL;
  }
  if (len_out != NULL) *len_out = got;
  return s;
}

static bool set_int_prop(napi_env env, napi_value obj, const char *key, int64_t value) {
  napi_value v;
  return napi_create_int64(env, value, &v) == napi_ok &&
         napi_set_named_property(env, obj, key, v) == napi_ok;
}

static bool set_str_prop(napi_env env, napi_value obj, const char *key, const char *s, size_t len) {
  napi_value v;
  return napi_create_string_utf8(env, s, len, &v) == napi_ok &&
         napi_set_named_property(env, obj, key, v) == napi_ok;
}

/* ---------------------------------------------------------------------------------------- */
/* unix socket addresses, long paths included                                                */

typedef struct {
  struct sockaddr_un sa;
  socklen_t len;
  int dirfd; /* the O_PATH parent directory when the path was too long, else -1 */
} unix_addr;

static void unix_addr_release(unix_addr *a) {
  if (a->dirfd >= 0) close(a->dirfd);
  a->dirfd = -1;
}

/* Fills a for path; returns 0 or an errno value. */
static int unix_addr_make(const char *path, unix_addr *a) {
  memset(a, 0, sizeof *a);
  a->dirfd = -1;
  a->sa.sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n == 0) return EINVAL;
  if (n < sizeof a->sa.sun_path) {
    memcpy(a->sa.sun_path, path, n + 1);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
  }
  const char *slash = strrchr(path, '/');
  if (slash == NULL) return ENAMETOOLONG; /* a bare name this long cannot be shortened */
  const char *base = slash + 1;
  if (*base == '\0') return EINVAL;
  size_t dlen = (size_t)(slash - path);
  char *dir = dlen == 0 ? strdup("/") : strndup(path, dlen);
  if (dir == NULL) return ENOMEM;
  int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int err = errno;
  free(dir);
  if (dirfd < 0) return err;
  int w = snprintf(a->sa.sun_path, sizeof a->sa.sun_path, "/proc/self/fd/%d/%s", dirfd, base);
  if (w < 0 || (size_t)w >= sizeof a->sa.sun_path) {
    close(dirfd);
    return ENAMETOOLONG;
  }
  a->dirfd = dirfd;
  a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)w + 1);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* openPty                                                                                   */

static napi_value OpenPty(napi_env env, napi_callback_info info) {
  (void)info;
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return throw_errno(env, errno, "openPty: posix_openpt");
  if (grantpt(master) != 0) {
    int err = errno;
    close(master);
    return throw_errno(env, err, "openPty: grantpt");
  }
  if (unlockpt(master) != 0) {
    int err = errno;
    close(master);
    return throw_errno(env, err, "openPty: unlockpt");
  }
  char name[128];
  int rc = ptsname_r(master, name, sizeof name);
  if (rc != 0) {
    int err = rc > 0 ? rc : errno;
    close(master);
    return throw_errno(env, err, "openPty: ptsname");
  }
  int slave = -1;
#ifdef TIOCGPTPEER
  /* Race-free and independent of which devpts is mounted at /dev/pts (Linux >= 4.13). */
  slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
#endif
  if (slave < 0) slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    int err = errno;
    close(master);
    return throw_errno(env, err, "openPty: open %s", name);
  }
  napi_value result;
  if (napi_create_object(env, &result) != napi_ok || !set_int_prop(env, result, "master", master) ||
      !set_int_prop(env, result, "slave", slave) ||
      !set_str_prop(env, result, "name", name, NAPI_AUTO_LENGTH)) {
    close(master);
    close(slave);
    napi_throw_error(env, NULL, "openPty: could not build the result");
    return NULL;
  }
  return result;
}

/* ---------------------------------------------------------------------------------------- */
/* sendFd                                                                                    */

/* connect(2), finishing the connection when a signal interrupted it. Returns 0 or errno. */
static int connect_unix(int sock, const unix_addr *a) {
  if (connect(sock, (const struct sockaddr *)&a->sa, a->len) == 0) return 0;
  if (errno != EINTR) return errno;
  for (;;) {
    struct pollfd p = {.fd = sock, .events = POLLOUT};
    int r = poll(&p, 1, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) return errno;
    return soerr;
  }
}

static napi_value SendFd(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, "sendFd")) return NULL;
  int fd;
  if (!get_fd(env, argv[1], "sendFd", &fd)) return NULL;
  char *path = get_string(env, argv[0], "sendFd", "socketPath", true, NULL);
  if (path == NULL) return NULL;
  size_t data_len = 0;
  char *data = get_string(env, argv[2], "sendFd", "data", false, &data_len);
  if (data == NULL) {
    free(path);
    return NULL;
  }
  napi_value ret = NULL;
  int sock = -1;
  unix_addr addr = {.dirfd = -1};

  if (data_len == 0) {
    /* On a stream socket the fd rides on the first data byte: none, no fd. */
    throw_errno(env, EINVAL, "sendFd: data must not be empty");
    goto out;
  }
  if (fcntl(fd, F_GETFD) < 0) {
    throw_errno(env, errno, "sendFd: fd %d", fd);
    goto out;
  }
  sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    throw_errno(env, errno, "sendFd: socket");
    goto out;
  }
  int err = unix_addr_make(path, &addr);
  if (err == 0) err = connect_unix(sock, &addr);
  if (err != 0) {
    throw_errno(env, err, "sendFd: connect %s", path);
    goto out;
  }

  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct iovec iov = {.iov_base = data, .iov_len = data_len};
  struct msghdr msg = {
      .msg_iov = &iov,
      .msg_iovlen = 1,
      .msg_control = control.buf,
      .msg_controllen = sizeof control.buf,
  };
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));

  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    throw_errno(env, errno, "sendFd: sendmsg %s", path);
    goto out;
  }
  /* A short write is possible in principle; the fd went with the first byte, send the rest. */
  size_t sent = (size_t)n;
  while (sent < data_len) {
    n = send(sock, data + sent, data_len - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw_errno(env, errno, "sendFd: send %s", path);
      goto out;
    }
    sent += (size_t)n;
  }
  napi_get_undefined(env, &ret);

out:
  if (sock >= 0) close(sock);
  unix_addr_release(&addr);
  free(path);
  free(data);
  return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* listenUnix                                                                                */

/* Creates a bound, listening socket; returns the fd or -1 with *err and *what set. */
static int listen_unix(const char *path, unix_addr *addr, int *err, const char **what) {
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    *err = errno;
    *what = "socket";
    return -1;
  }
  int e = unix_addr_make(path, addr);
  if (e == 0 && bind(sock, (const struct sockaddr *)&addr->sa, addr->len) != 0) e = errno;
  if (e != 0) {
    close(sock);
    unix_addr_release(addr);
    *err = e;
    *what = "bind";
    return -1;
  }
  if (listen(sock, 16) != 0) {
    *err = errno;
    *what = "listen";
    unlink(addr->sa.sun_path);
    close(sock);
    unix_addr_release(addr);
    return -1;
  }
  return sock;
}

static napi_value ListenUnix(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "listenUnix")) return NULL;
  char *path = get_string(env, argv[0], "listenUnix", "socketPath", true, NULL);
  if (path == NULL) return NULL;
  unix_addr addr;
  int err = 0;
  const char *what = "";
  int sock = listen_unix(path, &addr, &err, &what);
  if (sock < 0) {
    throw_errno(env, err, "listenUnix: %s %s", what, path);
    free(path);
    return NULL;
  }
  unix_addr_release(&addr);
  free(path);
  napi_value ret;
  if (napi_create_int32(env, sock, &ret) != napi_ok) {
    close(sock);
    return NULL;
  }
  return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* recvFd / recvFdFromListener: accept one connection off the thread pool                    */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  const char *fn;
  char *path;          /* for messages; NULL for recvFd */
  int listen_fd;
  bool own_listener;   /* close listen_fd (and unlink the socket) when done */
  unix_addr addr;      /* the listener's address when own_listener */
  int timeout_ms;      /* -1: none */
  /* results */
  int fd;
  char *data;
  size_t data_len;
  int err;
  char err_msg[512];
} recv_job;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline) {
  if (deadline < 0) return -1;
  int64_t left = deadline - now_ms();
  return left <= 0 ? 0 : (left > INT_MAX ? INT_MAX : (int)left);
}

/* Waits for POLLIN on fd until deadline; returns 0, or ETIMEDOUT / errno. */
static int wait_readable(int fd, int64_t deadline) {
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno;
    if (r == 0) return ETIMEDOUT;
    return 0;
  }
}

__attribute__((format(printf, 3, 4)))
static void job_fail(recv_job *job, int err, const char *fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  job->err = err;
  if (job->path != NULL)
    snprintf(job->err_msg, sizeof job->err_msg, "%s: %s %s: %s", job->fn, what, job->path,
             strerror(err));
  else
    snprintf(job->err_msg, sizeof job->err_msg, "%s: %s: %s", job->fn, what, strerror(err));
}

static void recv_execute(napi_env env, void *arg) {
  (void)env;
  recv_job *job = arg;
  int64_t deadline = job->timeout_ms < 0 ? -1 : now_ms() + job->timeout_ms;
  int conn = -1;
  int fds[RECV_MAX_FDS * 2];
  size_t nfds = 0;

  for (;;) {
    int e = wait_readable(job->listen_fd, deadline);
    if (e != 0) {
      job_fail(job, e, "accept");
      goto out;
    }
    conn = accept4(job->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn >= 0) break;
    if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
    job_fail(job, errno, "accept");
    goto out;
  }

  job->data = malloc(RECV_MAX_DATA);
  if (job->data == NULL) {
    job_fail(job, ENOMEM, "recvmsg");
    goto out;
  }
  /* Read until the sender closes: the protocol is one message, then close. */
  while (job->data_len < RECV_MAX_DATA) {
    int e = wait_readable(conn, deadline);
    if (e != 0) {
      job_fail(job, e, "recvmsg");
      goto out;
    }
    union {
      char buf[CMSG_SPACE(sizeof(int) * RECV_MAX_FDS)];
      struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = job->data + job->data_len,
                        .iov_len = RECV_MAX_DATA - job->data_len};
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof control.buf,
    };
    ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      job_fail(job, errno, "recvmsg");
      goto out;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; i++) {
        int got;
        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (nfds < sizeof fds / sizeof fds[0]) fds[nfds++] = got;
        else close(got);
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      job_fail(job, EBADMSG, "recvmsg (more fds than expected; control data truncated)");
      goto out;
    }
    if (n == 0) break;
    job->data_len += (size_t)n;
  }
  if (nfds != 1) {
    job_fail(job, EBADMSG, "recvmsg (expected exactly one fd, got %zu)", nfds);
    goto out;
  }
  job->fd = fds[0];
  nfds = 0;

out:
  for (size_t i = 0; i < nfds; i++) close(fds[i]);
  if (conn >= 0) close(conn);
  if (job->own_listener) {
    unlink(job->addr.sa.sun_path);
    close(job->listen_fd);
    job->listen_fd = -1;
    unix_addr_release(&job->addr);
  }
}

static void recv_job_free(recv_job *job) {
  free(job->path);
  free(job->data);
  free(job);
}

static void recv_complete(napi_env env, napi_status status, void *arg) {
  recv_job *job = arg;
  napi_value outcome = NULL;
  bool ok = false;
  if (status != napi_ok) {
    /* Cancelled before recv_execute ran: the listener is still ours to clean up. */
    if (job->own_listener && job->listen_fd >= 0) {
      unlink(job->addr.sa.sun_path);
      close(job->listen_fd);
      unix_addr_release(&job->addr);
    }
    outcome = make_error(env, "ECANCELED", "recvFd: cancelled");
  } else if (job->err != 0) {
    outcome = make_error(env, errno_name(job->err), job->err_msg);
  } else if (napi_create_object(env, &outcome) == napi_ok &&
             set_int_prop(env, outcome, "fd", job->fd) &&
             set_str_prop(env, outcome, "data", job->data, job->data_len)) {
    ok = true;
  } else {
    close(job->fd);
    outcome = make_error(env, "EUNKNOWN", "recvFd: could not build the result");
  }
  if (outcome == NULL) napi_get_undefined(env, &outcome);
  if (ok) napi_resolve_deferred(env, job->deferred, outcome);
  else napi_reject_deferred(env, job->deferred, outcome);
  napi_delete_async_work(env, job->work);
  recv_job_free(job);
}

static napi_value start_recv(napi_env env, recv_job *job) {
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, job->fn, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, recv_execute, recv_complete, job, &job->work) !=
          napi_ok) {
    /* The deferred (if made) is left unsettled; the promise is never returned. */
    if (job->own_listener) {
      unlink(job->addr.sa.sun_path);
      close(job->listen_fd);
      unix_addr_release(&job->addr);
    }
    recv_job_free(job);
    napi_throw_error(env, NULL, "kata_native: could not start the receive");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    if (job->own_listener) {
      unlink(job->addr.sa.sun_path);
      close(job->listen_fd);
      unix_addr_release(&job->addr);
    }
    recv_job_free(job);
    napi_throw_error(env, NULL, "kata_native: could not queue the receive");
    return NULL;
  }
  return promise;
}

static recv_job *recv_job_new(napi_env env, const char *fn) {
  recv_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    throw_errno(env, ENOMEM, "%s", fn);
    return NULL;
  }
  job->fn = fn;
  job->fd = -1;
  job->listen_fd = -1;
  job->addr.dirfd = -1;
  return job;
}

/* recvFd(listenFd, timeoutMs): Promise<{ fd, data }>; the listener stays open. */
static napi_value RecvFd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "recvFd")) return NULL;
  int listen_fd, timeout;
  if (!get_fd(env, argv[0], "recvFd", &listen_fd)) return NULL;
  if (!get_timeout(env, argv[1], "recvFd", &timeout)) return NULL;
  if (fcntl(listen_fd, F_GETFD) < 0) return throw_errno(env, errno, "recvFd: fd %d", listen_fd);
  recv_job *job = recv_job_new(env, "recvFd");
  if (job == NULL) return NULL;
  job->listen_fd = listen_fd;
  job->timeout_ms = timeout;
  return start_recv(env, job);
}

/*
 * recvFdFromListener(socketPath, timeoutMs): Promise<{ fd, data }>.
 * Binds and listens before returning (errors are thrown synchronously), so a sender started
 * after the call can connect; accepts one connection off the main thread, then closes the
 * listener and removes the socket file.
 */
static napi_value RecvFdFromListener(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "recvFdFromListener")) return NULL;
  int timeout;
  if (!get_timeout(env, argv[1], "recvFdFromListener", &timeout)) return NULL;
  char *path = get_string(env, argv[0], "recvFdFromListener", "socketPath", true, NULL);
  if (path == NULL) return NULL;
  recv_job *job = recv_job_new(env, "recvFdFromListener");
  if (job == NULL) {
    free(path);
    return NULL;
  }
  int err = 0;
  const char *what = "";
  job->listen_fd = listen_unix(path, &job->addr, &err, &what);
  if (job->listen_fd < 0) {
    throw_errno(env, err, "recvFdFromListener: %s %s", what, path);
    free(path);
    free(job);
    return NULL;
  }
  job->path = path;
  job->own_listener = true;
  job->timeout_ms = timeout;
  return start_recv(env, job);
}

/* ---------------------------------------------------------------------------------------- */
/* terminal sizes and modes                                                                  */

static napi_value GetWinsize(napi_env env, napi_callback_info info) {
  int fd;
  if (!get_only_fd(env, info, "getWinsize", &fd)) return NULL;
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return throw_errno(env, errno, "getWinsize: fd %d", fd);
  napi_value result;
  NAPI_CALL(env, napi_create_object(env, &result));
  if (!set_int_prop(env, result, "rows", ws.ws_row) || !set_int_prop(env, result, "cols", ws.ws_col))
    return NULL;
  return result;
}

static napi_value SetWinsize(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, "setWinsize")) return NULL;
  int fd;
  double rows, cols;
  if (!get_fd(env, argv[0], "setWinsize", &fd)) return NULL;
  if (!get_uint(env, argv[1], 65535, "setWinsize", "rows", &rows)) return NULL;
  if (!get_uint(env, argv[2], 65535, "setWinsize", "cols", &cols)) return NULL;
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_row = (unsigned short)rows;
  ws.ws_col = (unsigned short)cols;
  if (ioctl(fd, TIOCSWINSZ, &ws) != 0) return throw_errno(env, errno, "setWinsize: fd %d", fd);
  napi_value undef;
  NAPI_CALL(env, napi_get_undefined(env, &undef));
  return undef;
}

static napi_value SetRaw(napi_env env, napi_callback_info info) {
  int fd;
  if (!get_only_fd(env, info, "setRaw", &fd)) return NULL;
  struct termios t;
  if (tcgetattr(fd, &t) != 0) return throw_errno(env, errno, "setRaw: tcgetattr fd %d", fd);
  cfmakeraw(&t);
  int rc;
  do rc = tcsetattr(fd, TCSANOW, &t);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) return throw_errno(env, errno, "setRaw: tcsetattr fd %d", fd);
  napi_value undef;
  NAPI_CALL(env, napi_get_undefined(env, &undef));
  return undef;
}

/*
 * exitNow(code): _exit(2) at once. process.exit() runs libuv's shutdown, which joins the thread
 * pool: a pool thread blocked in read(2) on a caller's stdin pipe or terminal (that nobody will
 * ever close) would make the process hang after its work is done. Callers write everything
 * synchronously before calling this, so there is nothing left to flush.
 */
static napi_value ExitNow(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "exitNow")) return NULL;
  double code;
  if (!get_uint(env, argv[0], 255, "exitNow", "code", &code)) return NULL;
  _exit((int)code);
}

/*
 * dieOfSignal(sig): ends the process by `sig` with the default action, as Go's runtime does when a
 * write to fd 1 or 2 meets EPIPE (SIGPIPE: the caller sees "killed by signal 13"). Node ignores
 * SIGPIPE, so the default action is restored and the signal unblocked first. _exit(128+sig) only
 * if the signal somehow did not end the process.
 */
static napi_value DieOfSignal(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "dieOfSignal")) return NULL;
  double sig;
  if (!get_uint(env, argv[0], 64, "dieOfSignal", "signal", &sig)) return NULL;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction((int)sig, &sa, NULL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, (int)sig);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  raise((int)sig);
  _exit(128 + (int)sig);
}

/*
 * tryLock(fd): flock(fd, LOCK_EX | LOCK_NB). Returns true when the lock is taken, false when
 * another open file description holds it (EWOULDBLOCK); other errors throw. Never blocks: the
 * caller polls against its own deadline. The kernel drops the lock when the last descriptor of
 * the open file description closes, so a holder that dies (even by SIGKILL) releases it.
 */
static napi_value TryLock(napi_env env, napi_callback_info info) {
  int fd;
  if (!get_only_fd(env, info, "tryLock", &fd)) return NULL;
  int rc;
  do rc = flock(fd, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EWOULDBLOCK) return throw_errno(env, errno, "tryLock: fd %d", fd);
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, rc == 0, &result));
  return result;
}

/*
 * peerCred(fd): SO_PEERCRED of a connected unix socket: the pid, uid and gid of the peer as
 * the kernel recorded them at connect(2). The monitor's control socket admits only root and its
 * own uid with it (docs/security.md).
 */
static napi_value PeerCred(napi_env env, napi_callback_info info) {
  int fd;
  if (!get_only_fd(env, info, "peerCred", &fd)) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return throw_errno(env, errno, "peerCred: fd %d", fd);
  napi_value result;
  NAPI_CALL(env, napi_create_object(env, &result));
  if (!set_int_prop(env, result, "pid", cred.pid) || !set_int_prop(env, result, "uid", (int64_t)cred.uid) ||
      !set_int_prop(env, result, "gid", (int64_t)cred.gid))
    return NULL;
  return result;
}

/* ---------------------------------------------------------------------------------------- */

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openPty", NULL, OpenPty, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendFd", NULL, SendFd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenUnix", NULL, ListenUnix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvFd", NULL, RecvFd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvFdFromListener", NULL, RecvFdFromListener, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getWinsize", NULL, GetWinsize, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setWinsize", NULL, SetWinsize, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setRaw", NULL, SetRaw, NULL, NULL, NULL, napi_enumerable, NULL},
      {"exitNow", NULL, ExitNow, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dieOfSignal", NULL, DieOfSignal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tryLock", NULL, TryLock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peerCred", NULL, PeerCred, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
