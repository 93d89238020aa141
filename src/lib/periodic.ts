/**
 * A background task run every `intervalMs` by a server node: the timer is unref'd (it never keeps
 * the process alive), runs never overlap (`runNow` during a run joins it), and `stop` ends the
 * timer, aborts `signal` and waits for a run in progress. `task` handles its own errors.
 */
export interface Periodic<T> {
  runNow(): Promise<T>;
  stop(): Promise<void>;
}

export function startPeriodic<T>(intervalMs: number, task: (signal: AbortSignal) => Promise<T>): Periodic<T> {
  const controller = new AbortController();
  let running: Promise<T> | undefined;
  const runNow = () => {
    running ??= task(controller.signal).finally(() => { running = undefined; });
    return running;
  };
  const timer = setInterval(() => void runNow(), intervalMs);
  timer.unref();
  return {
    runNow,
    async stop() {
      clearInterval(timer);
      controller.abort();
      await running;
    },
  };
}
