/**
 * Runs `deleteBatch(size)` until a batch deletes fewer than `size` rows; returns the total.
 * Sweeps delete in bounded statements so that none holds many locks or a long transaction.
 */
export async function deleteInBatches(size: number, deleteBatch: (size: number) => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await deleteBatch(size);
    total += deleted;
    if (deleted < size) return total;
  }
}
