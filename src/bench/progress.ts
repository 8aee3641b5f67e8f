/**
 * Progress of a long bench run on stderr: which scenario (k of n), which parameters, which run
 * of how many, which mode, what it measured, and a rough time left in the scenario. The estimate
 * is the mean time per finished run (setup included) times the runs still to do: "ETA-ish", good
 * enough to decide whether to wait or come back later.
 */

/** "42 s", "3 min 5 s", "1 h 2 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Seconds left, from the time spent so far on `done` of `total` units of work. */
export function estimateLeft(elapsedSeconds: number, done: number, total: number): number {
  if (done <= 0) return NaN;
  return (elapsedSeconds / done) * Math.max(0, total - done);
}

export interface ScenarioProgressOptions {
  readonly scenario: string;
  /** 1-based position of this scenario in the invocation, and how many there are. */
  readonly index: number;
  readonly count: number;
  /** Runs of all plans of the scenario together (modes x runs x plans). */
  readonly totalSlots: number;
  readonly write: (text: string) => void;
  readonly now?: () => number;
}

/** Tracks one scenario's runs and writes the progress lines. */
export class ScenarioProgress {
  private readonly started: number;
  private done = 0;
  private slotStarted = 0;

  constructor(private readonly o: ScenarioProgressOptions) {
    this.started = this.now();
  }

  private now(): number {
    return (this.o.now ?? performance.now.bind(performance))();
  }

  /** The start of a progress line: "[2/9 connect services=100 | run 1/3 | iptables] ". */
  begin(paramText: string, run: number, runs: number, mode: string): void {
    this.slotStarted = this.now();
    const where = [this.o.scenario, paramText].filter((s) => s !== '').join(' ');
    this.o.write(`[${this.o.index}/${this.o.count} ${where} | run ${run}/${runs} | ${mode}] `);
  }

  /** The end of the line: what was measured, how long it took, how long the scenario has left. */
  end(measured: string): void {
    this.done++;
    const now = this.now();
    const took = (now - this.slotStarted) / 1000;
    const left = estimateLeft((now - this.started) / 1000, this.done, this.o.totalSlots);
    const eta =
      this.done < this.o.totalSlots ? `, ~${formatDuration(left)} left in ${this.o.scenario}` : '';
    this.o.write(`${measured} (${took.toFixed(1)} s${eta})\n`);
  }
}
