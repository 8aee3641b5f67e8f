/**
 * Ring buffer events delivered to JavaScript without blocking the event loop: libuv polls the
 * ring buffer's epoll fd, and only when it is readable do we consume (on the main thread, so the
 * sample callback runs there too, synchronously, with no cross-thread hand-off).
 */
import koffi from 'koffi';
import type { Codec } from './codec.js';
import { BpfError } from './errors.js';
import type { Ptr } from './libbpf.js';
import { libbpf, SampleFn } from './libbpf.js';

export class RingBufferMap<E> {
  readonly name: string;
  readonly fd: number;
  readonly event: Codec<E>;

  constructor(name: string, fd: number, event: Codec<E>) {
    this.name = name;
    this.fd = fd;
    this.event = event;
  }

  /** Starts delivering events to onEvent until the reader is closed. */
  read(onEvent: (event: E) => void, onError?: (error: Error) => void): RingBufferReader<E> {
    return new RingBufferReader(this, onEvent, onError);
  }
}

export class RingBufferReader<E> {
  private rb: Ptr;
  private readonly callback: bigint;
  private readonly poller: ReturnType<typeof koffi.node.poll>;
  private delivered = 0;

  constructor(map: RingBufferMap<E>, onEvent: (event: E) => void, onError?: (error: Error) => void) {
    const size = map.event.size;
    this.callback = koffi.register((_ctx: bigint, data: bigint, len: number) => {
      // A short sample means the C struct and the codec disagree: never decode past its end.
      if (len < size) {
        onError?.(new Error(`ring buffer ${map.name}: sample of ${len} bytes, event is ${size}`));
        return 0;
      }
      const buf = Buffer.from(koffi.view(data, size));
      this.delivered++;
      onEvent(map.event.decode(buf, 0));
      return 0;
    }, koffi.pointer(SampleFn));
    this.rb = libbpf.ring_buffer_new(map.fd, this.callback, null, null) as Ptr;
    if (!this.rb) {
      koffi.unregister(this.callback);
      throw new BpfError('ring_buffer__new', map.name, -koffi.errno());
    }
    const epollFd = libbpf.ring_buffer_epoll_fd(this.rb) as number;
    this.poller = koffi.node.poll(epollFd, { readable: true }, () => {
      if (!this.rb) return;
      const ret = libbpf.ring_buffer_consume(this.rb) as number;
      if (ret < 0) onError?.(new BpfError('ring_buffer__consume', map.name, ret));
    });
  }

  /** Events delivered so far. */
  get count(): number {
    return this.delivered;
  }

  /** Keep the process alive only while something else does (for daemons that read forever). */
  unref(): void {
    this.poller.unref();
  }

  close(): void {
    if (!this.rb) return;
    this.poller.close();
    libbpf.ring_buffer_free(this.rb);
    this.rb = null;
    koffi.unregister(this.callback);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
