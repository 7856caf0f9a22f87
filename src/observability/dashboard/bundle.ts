/**
 * Builds the dashboard's browser bundle (client code + uPlot + CSS) with `Bun.build` the first
 * time it is asked for, and keeps it in memory: no CDN, works offline.
 */
import { join } from 'node:path';

export interface DashboardAssets {
  js: string;
  css: string;
  /** Short content hash, used as an ETag. */
  etag: string;
}

let building: Promise<DashboardAssets> | undefined;

/** Bundles `client.ts` (which imports uPlot and its CSS) for the browser; memoised. */
export function dashboardAssets(): Promise<DashboardAssets> {
  building ??= (async () => {
    const result = await Bun.build({
      entrypoints: [join(import.meta.dir, 'client.ts')],
      target: 'browser',
      minify: true,
      sourcemap: 'none',
    });
    if (!result.success) {
      building = undefined;
      throw new AggregateError(result.logs, 'dashboard bundle failed');
    }
    let js = '';
    let css = '';
    for (const output of result.outputs) {
      if (output.path.endsWith('.css')) css += await output.text();
      else if (output.kind === 'entry-point') js += await output.text();
    }
    const etag = `"${new Bun.CryptoHasher('sha256').update(js).update(css).digest('hex').slice(0, 16)}"`;
    return { js, css, etag };
  })();
  return building;
}
