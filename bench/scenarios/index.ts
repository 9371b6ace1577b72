// Every scenario, in report order.
import type { Scenario } from '../context.js';
import { churn } from './churn.js';
import { cost } from './cost.js';
import { dataPlane } from './data-plane.js';
import { lookup } from './lookup.js';
import { miss } from './miss.js';
import { peerHop } from './peer-hop.js';
import { pullSpeedup } from './pull-speedup.js';

/** The scenarios `npm run bench` runs, in the order of the issue. */
export const SCENARIOS: readonly Scenario[] = [pullSpeedup, dataPlane, peerHop, lookup, miss, cost, churn];
