/**
 * Maps opened by their pin path, without the object that created them: how `sluice service
 * list` reads a running node's datapath. The kernel's BTF of the map is checked against the
 * codecs exactly like a load checks the object's (sizes, struct names, field offsets), so a
 * reader built from other headers cannot misread the bytes.
 */
import { closeSync } from 'node:fs';
import type { Codec } from './codec.js';
import { isStruct } from './codec.js';
import { checkStructCodec, describeType, isStructKind } from './btf.js';
import { BpfError, SluiceError } from './errors.js';
import { mapInfoByFd } from './info.js';
import type { Ptr } from './libbpf.js';
import { libbpf } from './libbpf.js';
import { BpfMap, isPerCpuType } from './map.js';

/** A map opened from bpffs: close() releases this process's reference (the pin stays). */
export class PinnedMap<K, V> extends BpfMap<K, V> {
  readonly path: string;
  private open = true;

  constructor(path: string, info: ConstructorParameters<typeof BpfMap<K, V>>[0], key: Codec<K>, value: Codec<V>) {
    super(info, key, value);
    this.path = path;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    closeSync(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Opens the map pinned at `path` and checks it against the codecs (not per-CPU maps). */
export function openPinnedMap<K, V>(path: string, spec: { key: Codec<K>; value: Codec<V> }): PinnedMap<K, V> {
  const fd = libbpf.obj_get(path) as number;
  if (fd < 0) throw new BpfError('bpf_obj_get', path, fd);
  try {
    const info = mapInfoByFd(fd, path);
    if (isPerCpuType(info.type)) {
      throw new SluiceError('BTF_MISMATCH', `${path}: per-CPU maps cannot be opened by path yet`);
    }
    for (const [part, codec, size] of [
      ['key', spec.key, info.keySize],
      ['value', spec.value, info.valueSize],
    ] as [string, Codec<unknown>, number][]) {
      if (size !== codec.size) {
        throw new SluiceError('BTF_MISMATCH', `${path} ${part}: ${size} bytes in the kernel, ${codec.size} in the codec ${codec.name}`);
      }
    }
    if (info.btfId) checkKernelBtf(path, info.btfId, [
      ['key', spec.key, info.btfKeyTypeId],
      ['value', spec.value, info.btfValueTypeId],
    ]);
    return new PinnedMap(
      path,
      { name: info.name, fd, type: info.type, keySize: info.keySize, valueSize: info.valueSize, maxEntries: info.maxEntries },
      spec.key,
      spec.value,
    );
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function checkKernelBtf(path: string, btfId: number, parts: [string, Codec<unknown>, number][]): void {
  const btf = libbpf.btf_load_from_kernel_by_id(btfId) as Ptr;
  if (!btf) throw new BpfError('btf__load_from_kernel_by_id', `${path} (btf id ${btfId})`, -2);
  try {
    for (const [part, codec, typeId] of parts) {
      if (!typeId || !isStruct(codec)) continue;
      const where = `${path} ${part}`;
      const t = describeType(btf, typeId);
      if (!isStructKind(t.kind) || t.name !== codec.name) {
        throw new SluiceError('BTF_MISMATCH', `${where}: the kernel has type '${t.name}', the codec is struct ${codec.name}`);
      }
      checkStructCodec(btf, codec, where);
    }
  } finally {
    libbpf.btf_free(btf);
  }
}
