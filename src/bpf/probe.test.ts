import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { requireKernel } from '../testing/privileges.js';
import { BpfError } from './errors.js';
import {
  HELPERS,
  MAP_TYPES,
  PROG_TYPES,
  libbpfVersion,
  probeHelper,
  probeMapType,
  probeProgType,
} from './probe.js';

/** A probe of something that does not exist may say no or throw a BpfError; never yes. */
function notSupported(probe: () => boolean): void {
  let answer: boolean | undefined;
  try {
    answer = probe();
  } catch (error) {
    assert.ok(error instanceof BpfError, `threw ${String(error)}`);
    assert.match(error.errnoName, /^E[A-Z]+$/);
    assert.match(error.message, /^libbpf_probe_bpf_\w+\(.+\): E[A-Z]+/);
    return;
  }
  assert.equal(answer, false);
}

describe('kernel feature probes (real kernel)', () => {
  before(requireKernel);

  it('finds the program types sluice attaches', () => {
    assert.equal(probeProgType('xdp'), true);
    assert.equal(probeProgType(PROG_TYPES.xdp), true, 'by number too');
    for (const t of ['sched_cls', 'sk_msg', 'sock_ops', 'cgroup_sock_addr'] as const) {
      assert.equal(probeProgType(t), true, t);
    }
  });

  it('says no (or throws) for a prog type number the kernel does not have', () => {
    notSupported(() => probeProgType(9999));
    notSupported(() => probeProgType(0x7fffffff));
  });

  it('finds sockmap and sockhash, and not an invalid map type', () => {
    assert.equal(probeMapType('sockmap'), true);
    assert.equal(probeMapType('sockhash'), true);
    assert.equal(probeMapType(MAP_TYPES.ringbuf), true);
    notSupported(() => probeMapType(9999));
  });

  it('tells which program types may call a helper', () => {
    assert.equal(probeHelper('cgroup_sock_addr', 'set_retval'), true);
    assert.equal(probeHelper('xdp', 'map_lookup_elem'), true);
    assert.equal(probeHelper('sk_msg', 'msg_redirect_hash'), true);
    // Known helpers the program type may not call: libbpf 1.1 alone says yes to these on 6.18.
    assert.equal(probeHelper('xdp', 'set_retval'), false);
    assert.equal(probeHelper('xdp', HELPERS.msg_redirect_hash), false);
    notSupported(() => probeHelper('xdp', 99999));
    notSupported(() => probeHelper(9999, 'map_lookup_elem'));
  });

  it('reports libbpf 1.x', () => {
    const { major, minor } = libbpfVersion();
    assert.ok(major >= 1, `libbpf ${major}.${minor}`);
    assert.ok(Number.isInteger(minor) && minor >= 0);
  });
});

describe('probe arguments', () => {
  it('rejects unknown names and impossible numbers with EINVAL, naming them', () => {
    const cases: [() => boolean, RegExp][] = [
      [() => probeProgType('nonsense' as 'xdp'), /prog_type\(unknown prog type 'nonsense'\): EINVAL/],
      [() => probeProgType('toString' as 'xdp'), /unknown prog type 'toString'/],
      [() => probeProgType(-1), /prog_type\(prog type -1\): EINVAL/],
      [() => probeProgType(1.5), /prog type 1.5\): EINVAL/],
      [() => probeMapType(Number.NaN), /map type NaN\): EINVAL/],
      [() => probeHelper('xdp', 'nope' as 'set_retval'), /unknown helper 'nope'/],
    ];
    for (const [probe, message] of cases) {
      assert.throws(probe, (error: unknown) => {
        assert.ok(error instanceof BpfError);
        assert.equal(error.errnoName, 'EINVAL');
        assert.match(error.message, message);
        return true;
      });
    }
  });
});
