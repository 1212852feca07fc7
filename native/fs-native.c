/*
 * File calls Node.js has no binding for, as a Node-API module (ABI-stable, so one build serves
 * every Node version >= 20), loaded by src/targets/kit/fs-native.ts; built by
 * scripts/build-native.mjs with the system's C compiler. Linux only. Each call runs on the libuv
 * thread pool and answers through its callback.
 *
 *   syncfs(fd, callback)  syncfs(fd), then callback(errno), 0 on success: one flush barrier for a
 *                         whole file system (the local target's batches of small files). On Linux
 *                         >= 5.8 it reports every writeback error on the file system since the last
 *                         syncfs through the same open descriptor.
 *
 *   copyRange(src, dst, position, length, callback)
 *                         copies bytes [position, position + length) of the file open as `src` to
 *                         the same place in `dst` inside the kernel (copy_file_range(2)), as far as
 *                         the source's size at the call: the data only, found with
 *                         lseek(SEEK_DATA / SEEK_HOLE), so a hole of the source stays one in a new,
 *                         empty `dst`. Then callback(errno, end): 0 and where the range ended (less
 *                         than position + length at the source's end), or the errno and how far it
 *                         got. The local target's copies of large files.
 *
 * Context-aware (NAPI_MODULE_INIT), so worker threads can load it too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <node_api.h>

/* What every call holds: its work on the thread pool and its callback. First in each call's struct. */
typedef struct {
  napi_async_work work;
  napi_ref callback;
} Job;

/*
 * Queues `job` (allocated by the caller, freed here on failure or by `finish`) to run `execute` on
 * the thread pool and then `complete`. Returns 1, or 0 with a JS error thrown.
 */
static int queue(napi_env env, Job *job, napi_value callback, const char *name, napi_async_execute_callback execute,
                 napi_async_complete_callback complete) {
  napi_value resource;
  if (napi_create_reference(env, callback, 1, &job->callback) != napi_ok) {
    free(job);
    napi_throw_error(env, NULL, "could not hold the callback");
    return 0;
  }
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource) != napi_ok ||
      napi_create_async_work(env, NULL, resource, execute, complete, job, &job->work) != napi_ok) {
    napi_delete_reference(env, job->callback);
    free(job);
    napi_throw_error(env, NULL, "could not create the call");
    return 0;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    napi_delete_reference(env, job->callback);
    free(job);
    napi_throw_error(env, NULL, "could not queue the call");
    return 0;
  }
  return 1;
}

/* Calls the job's callback with `argc` values made by `args` (none if it fails), then frees the job. */
static void finish(napi_env env, Job *job, size_t argc, int (*args)(napi_env, Job *, napi_value *)) {
  napi_value cb, global, argv[2];
  if (napi_get_reference_value(env, job->callback, &cb) == napi_ok && cb != NULL && napi_get_global(env, &global) == napi_ok &&
      args(env, job, argv)) {
    napi_call_function(env, global, cb, argc, argv, NULL);
  }
  napi_delete_reference(env, job->callback);
  napi_delete_async_work(env, job->work);
  free(job);
}

typedef struct {
  Job job;
  int fd;
  int err;
} Flush;

static void flush_execute(napi_env env, void *data) {
  (void)env;
  Flush *f = data;
  f->err = syncfs(f->fd) == 0 ? 0 : errno;
}

static int flush_args(napi_env env, Job *job, napi_value *argv) {
  return napi_create_int32(env, ((Flush *)job)->err, &argv[0]) == napi_ok;
}

static void flush_complete(napi_env env, napi_status status, void *data) {
  Flush *f = data;
  if (status != napi_ok) f->err = ECANCELED;
  finish(env, &f->job, 1, flush_args);
}

static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype t1;
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_typeof(env, argv[1], &t1) != napi_ok || t1 != napi_function) {
    napi_throw_type_error(env, NULL, "syncfs(fd, callback): a descriptor and a function");
    return NULL;
  }
  Flush *f = calloc(1, sizeof *f);
  if (f == NULL) {
    napi_throw_error(env, "ENOMEM", "syncfs: out of memory");
    return NULL;
  }
  f->fd = fd;
  queue(env, &f->job, argv[1], "stagecoach:syncfs", flush_execute, flush_complete);
  return NULL;
}

typedef struct {
  Job job;
  int src, dst;
  int64_t position, length, end;
  int err;
} Copy;

static void copy_range(Copy *c, int64_t at, int64_t to);

/* Copies [position, position + length) of the source's data, a hole left a hole; sets c->end as it goes. */
static void copy_execute(napi_env env, void *data) {
  (void)env;
  Copy *c = data;
  struct stat st;
  c->end = c->position;
  if (fstat(c->src, &st) != 0) {
    c->err = errno;
    return;
  }
  int64_t to = c->position + c->length;
  if (to > st.st_size) to = st.st_size;
  int64_t at = c->position;
  /* SEEK_DATA and SEEK_HOLE move the descriptor's offset: put back as it was (a caller's stream may use it). */
  off_t kept = lseek(c->src, 0, SEEK_CUR);
  copy_range(c, at, to);
  if (kept >= 0) lseek(c->src, kept, SEEK_SET);
}

/* copy_execute's loop over [at, to). */
static void copy_range(Copy *c, int64_t at, int64_t to) {
  while (at < to) {
    off_t data_at = lseek(c->src, at, SEEK_DATA);
    if (data_at < 0) {
      if (errno == ENXIO) break; /* only a hole up to the end of the file */
      if (errno != EINVAL && errno != EOPNOTSUPP) {
        c->err = errno;
        return;
      }
      data_at = at; /* no SEEK_DATA on this file system: all of it is data */
    }
    if (data_at >= to) break;
    off_t hole_at = lseek(c->src, data_at, SEEK_HOLE);
    if (hole_at < 0 || hole_at > to) hole_at = to;
    if (hole_at <= data_at) hole_at = to;
    loff_t in = data_at, out = data_at;
    while (in < hole_at) {
      ssize_t n = copy_file_range(c->src, &in, c->dst, &out, (size_t)(hole_at - in), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        c->err = errno;
        c->end = in;
        return;
      }
      if (n == 0) { /* the source ended sooner than its size said (it shrank) */
        c->end = in;
        return;
      }
    }
    at = hole_at;
    c->end = at;
  }
  c->end = to;
}

static int copy_args(napi_env env, Job *job, napi_value *argv) {
  Copy *c = (Copy *)job;
  return napi_create_int32(env, c->err, &argv[0]) == napi_ok && napi_create_int64(env, c->end, &argv[1]) == napi_ok;
}

static void copy_complete(napi_env env, napi_status status, void *data) {
  Copy *c = data;
  if (status != napi_ok) c->err = ECANCELED;
  finish(env, &c->job, 2, copy_args);
}

static napi_value js_copy_range(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_valuetype t;
  int32_t src, dst;
  int64_t position, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &src) != napi_ok || napi_get_value_int32(env, argv[1], &dst) != napi_ok ||
      napi_get_value_int64(env, argv[2], &position) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_typeof(env, argv[4], &t) != napi_ok || t != napi_function || position < 0 || length < 0) {
    napi_throw_type_error(env, NULL, "copyRange(src, dst, position, length, callback): two descriptors, two non-negative integers and a function");
    return NULL;
  }
  Copy *c = calloc(1, sizeof *c);
  if (c == NULL) {
    napi_throw_error(env, "ENOMEM", "copyRange: out of memory");
    return NULL;
  }
  c->src = src;
  c->dst = dst;
  c->position = position;
  c->length = length;
  queue(env, &c->job, argv[4], "stagecoach:copyRange", copy_execute, copy_complete);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "syncfs", NAPI_AUTO_LENGTH, js_syncfs, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "syncfs", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "copyRange", NAPI_AUTO_LENGTH, js_copy_range, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "copyRange", fn) != napi_ok) return NULL;
  return exports;
}
