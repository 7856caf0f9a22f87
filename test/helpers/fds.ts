import { readdirSync, readlinkSync } from 'node:fs';

/** Descriptors this process holds open on files under `dir` (every thread's, workers' too; Linux). */
export function openFilesUnder(dir: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir);
    } catch {
      return false;
    }
  }).length;
}
