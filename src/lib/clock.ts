/** Milliseconds since the epoch. Injected so tests can pin time at the auth window's edges. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();
