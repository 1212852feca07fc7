/*
 * syncfs(2) for Node.js, which has no binding for it: one flush barrier for a whole file system
 * (the local target's small files pay one per batch rather than one fsync per file). A Node-API
 * module (ABI-stable, so one build serves every Node version >= 20), loaded by
 * src/targets/kit/fs-barrier.ts; built by scripts/build-native.mjs with the system's C compiler.
 *
 *   syncfs(fd, callback)  runs syncfs(fd) on the libuv thread pool, then calls callback(errno),
 *                         0 on success. On Linux >= 5.8 the call reports every writeback error on
 *                         the file system since the last syncfs through the same open descriptor.
 *
 * Context-aware (NAPI_MODULE_INIT), so worker threads can load it too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <node_api.h>

typedef struct {
  napi_async_work work;
  napi_ref callback;
  int fd;
  int err;
} Flush;

static void execute(napi_env env, void *data) {
  (void)env;
  Flush *f = data;
  f->err = syncfs(f->fd) == 0 ? 0 : errno;
}

static void complete(napi_env env, napi_status status, void *data) {
  Flush *f = data;
  napi_value cb, global, arg;
  int err = status == napi_ok ? f->err : ECANCELED;
  if (napi_get_reference_value(env, f->callback, &cb) == napi_ok && cb != NULL && napi_get_global(env, &global) == napi_ok &&
      napi_create_int32(env, err, &arg) == napi_ok) {
    napi_call_function(env, global, cb, 1, &arg, NULL);
  }
  napi_delete_reference(env, f->callback);
  napi_delete_async_work(env, f->work);
  free(f);
}

static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
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
  if (napi_create_reference(env, argv[1], 1, &f->callback) != napi_ok) {
    free(f);
    napi_throw_error(env, NULL, "syncfs: could not hold the callback");
    return NULL;
  }
  if (napi_create_string_utf8(env, "stagecoach:syncfs", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, f, &f->work) != napi_ok) {
    napi_delete_reference(env, f->callback);
    free(f);
    napi_throw_error(env, NULL, "syncfs: could not create the call");
    return NULL;
  }
  if (napi_queue_async_work(env, f->work) != napi_ok) {
    napi_delete_async_work(env, f->work);
    napi_delete_reference(env, f->callback);
    free(f);
    napi_throw_error(env, NULL, "syncfs: could not queue the call");
    return NULL;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "syncfs", NAPI_AUTO_LENGTH, js_syncfs, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "syncfs", fn) != napi_ok) return NULL;
  return exports;
}
