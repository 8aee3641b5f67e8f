import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BpfError, check, errnoName } from './errors.js';

describe('errors', () => {
  it('names errnos, either sign, including libbpf-specific ones', () => {
    assert.equal(errnoName(-7), 'E2BIG');
    assert.equal(errnoName(2), 'ENOENT');
    assert.equal(errnoName(-4007), 'LIBBPF_ERRNO__VERIFY');
    assert.equal(errnoName(99999), 'errno 99999');
  });

  it('formats call(object): ERRNO', () => {
    const e = new BpfError('bpf_map_update_elem', 'lb_services', -7);
    assert.equal(e.message, 'bpf_map_update_elem(lb_services): E2BIG');
    assert.equal(e.errno, 7);
    assert.equal(e.code, 'BPF_CALL');
    assert.throws(() => check(-1, 'bpf_prog_attach', 'x'), /bpf_prog_attach\(x\): EPERM/);
    assert.equal(check(3, 'bpf_obj_get', 'x'), 3);
  });
});
