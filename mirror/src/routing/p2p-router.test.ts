import { runRouterConformance } from './router-conformance.js';
import { startP2PCluster } from './p2p-test-cluster.js';

// R = 1: every key has a single owner, so join/leave only pass if keys really move.
runRouterConformance('P2PRouter, 3 nodes, R=1', () => startP2PCluster({ size: 3, router: { replicas: 1 } }));
// The default R = 3 on 4 nodes: owners overlap, lookups race three answers.
runRouterConformance('P2PRouter, 4 nodes, R=3', () => startP2PCluster({ size: 4, firstHost: 30 }));
