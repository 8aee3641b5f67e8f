/** What the lab CLI asks the probe client to do, and what each attempt reports. */
export type ProbeProto = 'tcp' | 'udp' | 'http' | 'redis' | 'connect';

export interface ProbeRequest {
  ip: string;
  port: number;
  proto: ProbeProto;
  /** tcp: a line to send (default whoami); udp: a datagram; http: "METHOD PATH"; redis: a command line. */
  request?: string;
  count: number;
  timeoutMs: number;
  /** The local port every attempt binds (as a client with a fixed source port); default: the
   * kernel picks one. */
  sourcePort?: number;
}

export interface ProbeAttempt {
  ok: boolean;
  latencyUs: number;
  /** The pod that answered, when the protocol tells (whoami, /hostname). */
  backend?: string;
  reply?: string;
  error?: string;
  /** errno-style code of a failure: ECONNREFUSED, ETIMEDOUT, ECONNRESET, HTTP_STATUS, ... */
  code?: string;
}
