/**
 * The dashboard's browser code (bundled by `bundle.ts` with uPlot and the CSS; no inline
 * script, so the page runs under a strict CSP). Loads the last 15 minutes from
 * `/api/metrics/history`, then follows `/dashboard/live` (server-sent events, every 5 s and on
 * every alert change) for component health, new points and active alerts.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './dashboard.css';

interface LiveComponent {
  component: string;
  status: string;
  detail: string;
}
interface LiveAlert {
  rule: string;
  series: string;
  status: string;
  severity: string;
  value: number;
  activeAt: number;
  startsAt?: number;
  annotations: { summary: string; description: string; action: string };
}
interface LiveFrame {
  ts: number;
  values: Record<string, number>;
  components: LiveComponent[];
  alerts: LiveAlert[];
  node: string;
  version: string;
}

interface ChartSpec {
  id: string;
  title: string;
  /** Fixed series, or every series whose name starts with `prefix{`. */
  series?: string[];
  prefix?: string;
  /** Multiplier for display (seconds → ms, ratio → %). */
  scale?: number;
  labels?: string[];
}

const windowSeconds = 15 * 60;
const palette = ['#4aa3ff', '#f2a33a', '#2fb36d', '#e5534b', '#b083f0', '#39c5cf', '#d6d65b'];
const specs: ChartSpec[] = [
  { id: 'connections', title: 'Connections', series: ['connections'] },
  { id: 'messages', title: 'Messages / s', series: ['messages_per_second'] },
  { id: 'latency', title: 'HTTP latency p50 / p99 (ms)', series: ['http_p50_seconds', 'http_p99_seconds'], labels: ['p50', 'p99'], scale: 1000 },
  { id: 'errors', title: 'HTTP 5xx error rate (%)', series: ['http_error_rate'], scale: 100 },
  { id: 'requests', title: 'HTTP requests / s', series: ['http_requests_per_second'] },
  { id: 'cpu', title: 'CPU (% of all cores)', series: ['cpu_percent'] },
  { id: 'memory', title: 'Memory (RSS, % of limit)', series: ['memory_percent'] },
  { id: 'crypto', title: 'Crypto operations / s', series: ['crypto_ops_per_second'] },
  { id: 'qber', title: 'QKD QBER per link (%)', prefix: 'qkd_qber', scale: 100 },
  { id: 'keyrate', title: 'QKD secret key rate per link (bit/s)', prefix: 'qkd_key_rate' },
];

/** series name → (time in s → value) */
const data = new Map<string, Map<number, number>>();
const plots = new Map<string, { plot: uPlot; names: string[] }>();

const $ = <T extends HTMLElement>(selector: string) => document.querySelector(selector) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function addPoint(series: string, ts: number, value: number) {
  let points = data.get(series);
  if (!points) data.set(series, (points = new Map()));
  points.set(Math.round(ts / 1000), value);
}

function prune() {
  const oldest = Date.now() / 1000 - windowSeconds;
  for (const points of data.values()) for (const t of points.keys()) if (t < oldest) points.delete(t);
}

function seriesOf(spec: ChartSpec): string[] {
  if (spec.series) return spec.series;
  return [...data.keys()].filter((name) => name.startsWith(`${spec.prefix}{`)).sort();
}

const linkLabel = (name: string) => /link="([^"]*)"/.exec(name)?.[1] ?? name;

function render(spec: ChartSpec) {
  const box = $(`#chart-${spec.id}`);
  const names = seriesOf(spec);
  const times = new Set<number>();
  for (const name of names) for (const t of data.get(name)?.keys() ?? []) times.add(t);
  const xs = [...times].sort((a, b) => a - b);
  const scale = spec.scale ?? 1;
  const columns = names.map((name) => {
    const points = data.get(name);
    return xs.map((t) => {
      const v = points?.get(t);
      return v === undefined ? null : v * scale;
    });
  });
  const pointCount = columns.reduce((n, col) => n + col.filter((v) => v !== null).length, 0);
  box.dataset.points = String(pointCount);
  const area = box.querySelector('.plot') as HTMLElement;
  const existing = plots.get(spec.id);
  if (names.length === 0) {
    existing?.plot.destroy();
    plots.delete(spec.id);
    area.replaceChildren(el('div', { class: 'empty' }, spec.prefix ? 'no QKD links configured' : 'no data yet'));
    return;
  }
  const aligned = [xs, ...columns] as uPlot.AlignedData;
  if (existing && existing.names.join('|') === names.join('|')) {
    existing.plot.setData(aligned);
    return;
  }
  existing?.plot.destroy();
  area.replaceChildren();
  const plot = new uPlot(
    {
      width: Math.max(300, area.clientWidth || box.clientWidth - 16),
      height: 170,
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
      scales: { x: { time: true } },
      axes: [
        { stroke: '#8a9bb0', grid: { stroke: '#263241' }, ticks: { stroke: '#263241' } },
        { stroke: '#8a9bb0', grid: { stroke: '#263241' }, ticks: { stroke: '#263241' }, size: 56 },
      ],
      series: [
        {},
        ...names.map((name, i) => ({
          label: spec.labels?.[i] ?? (spec.prefix ? linkLabel(name) : spec.title.split(' (')[0]),
          stroke: palette[i % palette.length],
          width: 2,
          points: { show: xs.length < 40, size: 4 },
          spanGaps: false,
        })),
      ],
    },
    aligned,
    area,
  );
  plots.set(spec.id, { plot, names });
}

function renderAll() {
  prune();
  for (const spec of specs) render(spec);
}

function renderComponents(components: LiveComponent[]) {
  const box = $('#components');
  box.replaceChildren(
    ...components.map((c) => {
      const tile = el('div', { class: 'component', 'data-component': c.component, 'data-status': c.status });
      tile.append(el('div', { class: 'name' }, c.component), el('div', { class: 'status' }, c.status), el('div', { class: 'detail', title: c.detail }, c.detail));
      return tile;
    }),
  );
}

const time = (ms?: number) => (ms ? new Date(ms).toLocaleTimeString() : '');

function renderAlerts(alerts: LiveAlert[]) {
  const body = $('#alerts tbody');
  $('#alerts-none').hidden = alerts.length > 0;
  body.replaceChildren(
    ...alerts.map((a) => {
      const row = el('tr', { 'data-rule': a.rule, 'data-status': a.status, 'data-severity': a.severity });
      row.append(
        el('td', {}, a.rule),
        el('td', { class: `sev ${a.severity}` }, a.severity),
        el('td', {}, a.status),
        el('td', {}, a.annotations.description),
        el('td', {}, time(a.startsAt ?? a.activeAt)),
        el('td', { class: 'action' }, a.annotations.action),
      );
      return row;
    }),
  );
}

function applyFrame(frame: LiveFrame) {
  for (const [name, value] of Object.entries(frame.values)) addPoint(name, frame.ts, value);
  renderComponents(frame.components);
  renderAlerts(frame.alerts);
  $('#node').textContent = `node ${frame.node} · v${frame.version}`;
  $('#live').textContent = `live · updated ${time(Date.now())}`;
  renderAll();
}

async function loadHistory() {
  const names = [...new Set(specs.flatMap((s) => s.series ?? [s.prefix!]))];
  const to = Date.now();
  const params = new URLSearchParams({ series: names.join(','), from: String(to - windowSeconds * 1000), to: String(to) });
  const response = await fetch(`/api/metrics/history?${params}`, { credentials: 'same-origin' });
  if (!response.ok) return;
  const body = (await response.json()) as { series: Record<string, [number, number][]> };
  for (const [name, points] of Object.entries(body.series)) for (const [ts, value] of points) addPoint(name, ts, value);
}

function connect() {
  const live = $('#live');
  const source = new EventSource('/dashboard/live');
  source.addEventListener('frame', (event) => {
    live.className = 'live on';
    applyFrame(JSON.parse((event as MessageEvent).data) as LiveFrame);
  });
  source.onerror = () => {
    live.className = 'live off';
    live.textContent = 'reconnecting…';
  };
}

function layout() {
  const grid = $('#charts');
  for (const spec of specs) {
    const box = el('section', { class: 'chart', id: `chart-${spec.id}`, 'data-chart': spec.id, 'data-points': '0' });
    box.append(el('div', { class: 'title' }, spec.title), el('div', { class: 'plot' }));
    grid.append(box);
  }
  window.addEventListener('resize', () => {
    for (const [id, { plot }] of plots) {
      const area = $(`#chart-${id} .plot`);
      plot.setSize({ width: Math.max(300, area.clientWidth), height: 170 });
    }
  });
}

layout();
loadHistory()
  .catch(() => undefined)
  .finally(() => {
    renderAll();
    connect();
  });
