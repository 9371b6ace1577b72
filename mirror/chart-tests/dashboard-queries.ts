// The PromQL the Grafana dashboard runs, for tests: the chart's own dashboard test, and the
// integration test that scrapes a running daemon and checks every series named here exists.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHART_DIR } from './helm.js';
import { parsePromQL, type Selector } from './promql.js';

/** A dashboard panel, as far as the tests read it. */
export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string }[];
  panels?: Panel[];
}

/** A templating variable. */
export interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
}

/** The dashboard JSON, as far as the tests read it. */
export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

/** Path of the dashboard shipped in the chart. */
export const DASHBOARD_PATH = join(CHART_DIR, 'dashboards/peili.json');

/** The parsed dashboard. */
export function loadDashboard(path = DASHBOARD_PATH): Dashboard {
  return JSON.parse(readFileSync(path, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every panel query with its panel's title. */
export function dashboardQueries(dashboard: Dashboard): { panel: string; expr: string }[] {
  return allPanels(dashboard).flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
  );
}

/** The selector of a `label_values(<selector>, label)` variable query; none for other variables. */
export function variableSelectors(v: Variable): Selector[] {
  const text = typeof v.query === 'string' ? v.query : v.query?.query;
  if (v.type !== 'query' || !text) return [];
  const match = /^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$/.exec(text);
  if (!match) throw new Error(`variable ${v.name}: expected label_values(selector, label), got ${text}`);
  return parsePromQL(match[1] ?? '');
}

/** Every selector of every query and variable, with where it is used. */
export function dashboardSelectors(dashboard: Dashboard): { where: string; selector: Selector }[] {
  return [
    ...dashboardQueries(dashboard).flatMap((q) =>
      parsePromQL(q.expr).map((selector) => ({ where: q.panel, selector })),
    ),
    ...dashboard.templating.list.flatMap((v) =>
      variableSelectors(v).map((selector) => ({ where: `variable ${v.name}`, selector })),
    ),
  ];
}

/** The `peili_*` series the dashboard reads (histograms by their _bucket/_sum/_count names), sorted. */
export function peiliSeriesUsed(dashboard: Dashboard = loadDashboard()): string[] {
  const names = dashboardSelectors(dashboard).map((s) => s.selector.metric);
  return [...new Set(names.filter((n) => n.startsWith('peili_')))].sort();
}
