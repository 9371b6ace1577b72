// A child process hosting passive simulated members (`startSimProcesses` in sim.ts): starts them,
// prints their member ids as one JSON line, and closes them when its stdin ends.
import { startSim } from './sim.js';

const [count, firstSubnet, offset] = process.argv.slice(2).map(Number);
const sim = await startSim(count!, firstSubnet!, offset!);
process.stdout.write(`${JSON.stringify(sim.members.map((m) => m.id))}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void sim.close().then(() => process.exit(0));
});
