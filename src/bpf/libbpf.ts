/**
 * The raw FFI surface: libbpf.so.1 and the few libc calls the binding needs, declared through
 * koffi. Nothing here interprets results; callers go through the typed wrappers in this folder.
 *
 * Struct layouts below are libbpf 1.1's (checked with offsetof in a C program; see
 * libbpf.test.ts, which compiles that check on every test run).
 */
import koffi from 'koffi';

/** Opaque libbpf handles are plain addresses (koffi 3 passes pointers as bigint). */
export type Ptr = bigint | null;

const lib = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');

export const ObjectOpenOpts = koffi.struct('bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
  relaxed_maps: 'bool',
  pin_root_path: 'const char *',
  removed_attach_prog_fd: 'uint32_t',
  kconfig: 'const char *',
  btf_custom_path: 'const char *',
  kernel_log_buf: 'void *',
  kernel_log_size: 'size_t',
  kernel_log_level: 'uint32_t',
});

export const TestRunOpts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

export const TcHook = koffi.struct('bpf_tc_hook', {
  sz: 'size_t',
  ifindex: 'int',
  attach_point: 'int',
  parent: 'uint32_t',
});

export const TcOpts = koffi.struct('bpf_tc_opts', {
  sz: 'size_t',
  prog_fd: 'int',
  flags: 'uint32_t',
  prog_id: 'uint32_t',
  handle: 'uint32_t',
  priority: 'uint32_t',
});

export const MapBatchOpts = koffi.struct('bpf_map_batch_opts', {
  sz: 'size_t',
  elem_flags: 'uint64_t',
  flags: 'uint64_t',
});

/** libbpf 1.1's struct bpf_prog_load_opts (sizeof 104, log_buf at 96). */
export const ProgLoadOpts = koffi.struct('bpf_prog_load_opts', {
  sz: 'size_t',
  attempts: 'int',
  expected_attach_type: 'int',
  prog_btf_fd: 'uint32_t',
  prog_flags: 'uint32_t',
  prog_ifindex: 'uint32_t',
  kern_version: 'uint32_t',
  attach_btf_id: 'uint32_t',
  attach_prog_fd: 'uint32_t',
  attach_btf_obj_fd: 'uint32_t',
  fd_array: 'void *',
  func_info: 'void *',
  func_info_cnt: 'uint32_t',
  func_info_rec_size: 'uint32_t',
  line_info: 'void *',
  line_info_cnt: 'uint32_t',
  line_info_rec_size: 'uint32_t',
  log_level: 'uint32_t',
  log_size: 'uint32_t',
  log_buf: 'void *',
});
/** libbpf_print_fn_t; va_list is one pointer on the SysV ABIs we run on. */
export const PrintFn = koffi.proto('int libbpf_print_fn(int level, const char *fmt, void *args)');
/** ring_buffer_sample_fn */
export const SampleFn = koffi.proto('int ring_buffer_sample_fn(void *ctx, void *data, size_t size)');

export const libbpf = {
  major_version: lib.func('uint32_t libbpf_major_version(void)'),
  minor_version: lib.func('uint32_t libbpf_minor_version(void)'),
  set_print: lib.func('void *libbpf_set_print(libbpf_print_fn *fn)'),
  num_possible_cpus: lib.func('int libbpf_num_possible_cpus(void)'),
  probe_prog_type: lib.func('int libbpf_probe_bpf_prog_type(int prog_type, void *opts)'),
  probe_map_type: lib.func('int libbpf_probe_bpf_map_type(int map_type, void *opts)'),
  probe_helper: lib.func('int libbpf_probe_bpf_helper(int prog_type, int helper_id, void *opts)'),

  object_open_file: lib.func(
    'void *bpf_object__open_file(const char *path, const bpf_object_open_opts *opts)',
  ),
  object_load: lib.func('int bpf_object__load(void *obj)'),
  object_close: lib.func('void bpf_object__close(void *obj)'),
  object_btf: lib.func('void *bpf_object__btf(void *obj)'),
  object_next_map: lib.func('void *bpf_object__next_map(void *obj, void *map)'),
  object_next_program: lib.func('void *bpf_object__next_program(void *obj, void *prog)'),

  map_name: lib.func('const char *bpf_map__name(void *map)'),
  map_fd: lib.func('int bpf_map__fd(void *map)'),
  map_type: lib.func('int bpf_map__type(void *map)'),
  map_max_entries: lib.func('uint32_t bpf_map__max_entries(void *map)'),
  map_set_max_entries: lib.func('int bpf_map__set_max_entries(void *map, uint32_t n)'),
  map_key_size: lib.func('uint32_t bpf_map__key_size(void *map)'),
  map_value_size: lib.func('uint32_t bpf_map__value_size(void *map)'),
  map_btf_key_type_id: lib.func('uint32_t bpf_map__btf_key_type_id(void *map)'),
  map_btf_value_type_id: lib.func('uint32_t bpf_map__btf_value_type_id(void *map)'),
  map_flags: lib.func('uint32_t bpf_map__map_flags(void *map)'),
  map_set_pin_path: lib.func('int bpf_map__set_pin_path(void *map, const char *path)'),
  map_pin_path: lib.func('const char *bpf_map__pin_path(void *map)'),
  map_is_pinned: lib.func('bool bpf_map__is_pinned(void *map)'),
  map_unpin: lib.func('int bpf_map__unpin(void *map, const char *path)'),
  map_initial_value: lib.func('void *bpf_map__initial_value(void *map, _Out_ size_t *size)'),
  map_set_initial_value: lib.func(
    'int bpf_map__set_initial_value(void *map, const void *data, size_t size)',
  ),

  program_name: lib.func('const char *bpf_program__name(void *prog)'),
  program_fd: lib.func('int bpf_program__fd(void *prog)'),
  program_type: lib.func('int bpf_program__type(void *prog)'),
  program_expected_attach_type: lib.func('int bpf_program__expected_attach_type(void *prog)'),
  program_attach_cgroup: lib.func('void *bpf_program__attach_cgroup(void *prog, int cgroup_fd)'),
  link_destroy: lib.func('int bpf_link__destroy(void *link)'),
  link_fd: lib.func('int bpf_link__fd(void *link)'),
  link_pin: lib.func('int bpf_link__pin(void *link, const char *path)'),
  /** Atomically points an existing link at another program (NULL opts). */
  link_update: lib.func('int bpf_link_update(int link_fd, int new_prog_fd, void *opts)'),
  obj_get_info_by_fd: lib.func(
    'int bpf_obj_get_info_by_fd(int bpf_fd, void *info, _Inout_ uint32_t *info_len)',
  ),
  prog_get_fd_by_id: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),

  map_update_elem: lib.func(
    'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
  ),
  map_lookup_elem: lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
  map_delete_elem: lib.func('int bpf_map_delete_elem(int fd, const void *key)'),
  map_lookup_and_delete_elem: lib.func(
    'int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value)',
  ),
  map_get_next_key: lib.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
  map_update_batch: lib.func(
    'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)',
  ),
  map_lookup_batch: lib.func(
    'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)',
  ),
  map_delete_batch: lib.func(
    'int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)',
  ),
  obj_get: lib.func('int bpf_obj_get(const char *path)'),
  obj_pin: lib.func('int bpf_obj_pin(int fd, const char *path)'),

  prog_load: lib.func(
    'int bpf_prog_load(int prog_type, const char *name, const char *license, const void *insns, size_t insn_cnt, bpf_prog_load_opts *opts)',
  ),
  prog_test_run_opts: lib.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)'),
  prog_attach: lib.func('int bpf_prog_attach(int prog_fd, int target_fd, int type, uint32_t flags)'),
  prog_detach2: lib.func('int bpf_prog_detach2(int prog_fd, int target_fd, int type)'),

  xdp_attach: lib.func('int bpf_xdp_attach(int ifindex, int prog_fd, uint32_t flags, void *opts)'),
  xdp_detach: lib.func('int bpf_xdp_detach(int ifindex, uint32_t flags, void *opts)'),
  xdp_query_id: lib.func('int bpf_xdp_query_id(int ifindex, int flags, _Out_ uint32_t *prog_id)'),
  tc_hook_create: lib.func('int bpf_tc_hook_create(bpf_tc_hook *hook)'),
  tc_hook_destroy: lib.func('int bpf_tc_hook_destroy(bpf_tc_hook *hook)'),
  tc_attach: lib.func('int bpf_tc_attach(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)'),
  tc_detach: lib.func('int bpf_tc_detach(const bpf_tc_hook *hook, const bpf_tc_opts *opts)'),
  tc_query: lib.func('int bpf_tc_query(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)'),

  ring_buffer_new: lib.func(
    'void *ring_buffer__new(int map_fd, ring_buffer_sample_fn *cb, void *ctx, void *opts)',
  ),
  ring_buffer_free: lib.func('void ring_buffer__free(void *rb)'),
  ring_buffer_consume: lib.func('int ring_buffer__consume(void *rb)'),
  ring_buffer_epoll_fd: lib.func('int ring_buffer__epoll_fd(void *rb)'),

  btf_find_by_name_kind: lib.func('int btf__find_by_name_kind(void *btf, const char *name, uint32_t kind)'),
  btf_type_by_id: lib.func('void *btf__type_by_id(void *btf, uint32_t id)'),
  btf_name_by_offset: lib.func('const char *btf__name_by_offset(void *btf, uint32_t offset)'),
  btf_resolve_size: lib.func('int64_t btf__resolve_size(void *btf, uint32_t id)'),
  btf_load_from_kernel_by_id: lib.func('void *btf__load_from_kernel_by_id(uint32_t id)'),
  btf_free: lib.func('void btf__free(void *btf)'),
};

export const libcApi = {
  vsnprintf: libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *args)'),
  if_nametoindex: libc.func('uint32_t if_nametoindex(const char *name)'),
};
