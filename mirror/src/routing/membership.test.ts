import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  createDnsMembers,
  createMembership,
  createStaticMembers,
  memberId,
  parseMemberAddress,
  type MemberSource,
} from './membership.js';
import { ManualClock } from '../../test-support/manual-clock.js';

const signal = (): AbortSignal => AbortSignal.timeout(2000);

// A tiny authoritative DNS responder: answers A and AAAA questions for the names in `zone`,
// NXDOMAIN for other names, and counts the questions it saw.
function startDns(
  zone: Record<string, { a: string[]; aaaa: string[] }>,
): Promise<{ socket: Socket; port: number; asked: string[] }> {
  const socket = createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (query, peer) => {
    let offset = 12;
    const labels: string[] = [];
    while (query[offset]! > 0) {
      labels.push(query.subarray(offset + 1, offset + 1 + query[offset]!).toString('ascii'));
      offset += query[offset]! + 1;
    }
    const name = labels.join('.');
    const type = query.readUInt16BE(offset + 1);
    const questionEnd = offset + 5;
    asked.push(`${name}/${type === 1 ? 'A' : type === 28 ? 'AAAA' : type}`);
    const entry = zone[name.toLowerCase()];
    const addresses = entry ? (type === 1 ? entry.a : type === 28 ? entry.aaaa : []) : [];
    const answers = addresses.map((address) => {
      const data = isIPv4(address)
        ? Buffer.from(address.split('.').map(Number))
        : Buffer.from(expandIPv6(address), 'hex');
      const record = Buffer.alloc(12);
      record.writeUInt16BE(0xc00c, 0); // pointer to the question name
      record.writeUInt16BE(type, 2);
      record.writeUInt16BE(1, 4);
      record.writeUInt32BE(5, 6);
      record.writeUInt16BE(data.length, 10);
      return Buffer.concat([record, data]);
    });
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8400 | (entry ? 0 : 3), 2); // response, authoritative, NOERROR/NXDOMAIN
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    socket.send(
      Buffer.concat([header, query.subarray(12, questionEnd), ...answers]),
      peer.port,
      peer.address,
    );
  });
  return new Promise((resolve) =>
    socket.bind(0, '127.0.5.1', () => resolve({ socket, port: socket.address().port, asked })),
  );
}

function expandIPv6(address: string): string {
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

describe('member addresses', () => {
  const cases: [string, string][] = [
    ['10.0.0.1:5001', '10.0.0.1:5001'],
    ['[FD00::1]:5001', '[fd00::1]:5001'],
    [' peili-0.peili:5001 ', 'peili-0.peili:5001'],
  ];
  for (const [input, id] of cases)
    it(`parses ${JSON.stringify(input)}`, () => assert.equal(parseMemberAddress(input), id));
  for (const input of ['10.0.0.1', '10.0.0.1:0', '10.0.0.1:70000', 'fd00::1:5001', '']) {
    it(`rejects ${JSON.stringify(input)}`, () =>
      assert.throws(() => parseMemberAddress(input), {
        message: `invalid member address ${JSON.stringify(input)}: expected host:port`,
      }));
  }
  it('brackets IPv6 hosts in member ids', () => {
    assert.equal(memberId('fd00::7', 5001), '[fd00::7]:5001');
    assert.equal(memberId('10.0.0.7', 5001), '10.0.0.7:5001');
  });
});

describe('DNS member source', () => {
  let dns: Awaited<ReturnType<typeof startDns>>;
  before(async () => {
    dns = await startDns({
      'peili.kube-system.svc.cluster.local': { a: ['10.0.0.1', '10.0.0.2'], aaaa: ['fd00::1'] },
      'v4only.local': { a: ['10.0.0.3'], aaaa: [] },
    });
  });
  after(() => dns.socket.close());

  it('lists the A and AAAA records of a headless Service as members', async () => {
    const source = createDnsMembers({
      name: 'peili.kube-system.svc.cluster.local',
      port: 5001,
      servers: [`127.0.5.1:${dns.port}`],
    });
    assert.deepEqual((await source.list(signal())).sort(), [
      '10.0.0.1:5001',
      '10.0.0.2:5001',
      '[fd00::1]:5001',
    ]);
    assert.deepEqual(dns.asked.slice(-2).sort(), [
      'peili.kube-system.svc.cluster.local/A',
      'peili.kube-system.svc.cluster.local/AAAA',
    ]);
    assert.equal(source.name, 'dns:peili.kube-system.svc.cluster.local');
  });

  it('treats a family without records as empty', async () => {
    const source = createDnsMembers({ name: 'v4only.local', port: 7, servers: [`127.0.5.1:${dns.port}`] });
    assert.deepEqual(await source.list(signal()), ['10.0.0.3:7']);
  });

  it('lists nobody for an unknown name (NXDOMAIN)', async () => {
    const source = createDnsMembers({ name: 'absent.local', port: 7, servers: [`127.0.5.1:${dns.port}`] });
    assert.deepEqual(await source.list(signal()), []);
  });

  it('fails when both queries fail', async () => {
    const source = createDnsMembers({
      name: 'x.local',
      port: 7,
      resolver: () => ({
        resolve4: () => Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })),
        resolve6: () => Promise.reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })),
      }),
    });
    await assert.rejects(source.list(signal()), {
      message: 'DNS lookup of x.local failed: ECONNREFUSED, ETIMEOUT',
    });
  });
});

describe('membership', () => {
  const SELF = '10.0.0.1:5001';
  function setup(list: string[] | Error, options = {}) {
    const clock = new ManualClock(1_000_000);
    let answer: string[] | Error = list;
    const source: MemberSource = {
      name: 'test',
      list: async () => {
        if (answer instanceof Error) throw answer;
        return answer;
      },
    };
    const membership = createMembership(source, SELF, { clock, ...options });
    return {
      membership,
      set: (next: string[] | Error) => (answer = next),
      advance: (ms: number) => clock.advance(ms),
    };
  }
  const ids = (members: readonly { id: string }[]): string[] => members.map((m) => m.id);

  const readiness: [string, string[] | Error, boolean, string[]][] = [
    ['listed with others', [SELF, '10.0.0.2:5001'], true, [SELF, '10.0.0.2:5001']],
    ['alone (a one-node cluster)', [SELF], true, [SELF]],
    ['nobody listed', [], true, [SELF]],
    ['not listed yet', ['10.0.0.2:5001'], false, [SELF, '10.0.0.2:5001']],
    ['source failing', new Error('down'), false, [SELF]],
  ];
  for (const [name, list, ready, members] of readiness) {
    it(`ready=${ready} when ${name}`, async () => {
      const { membership } = setup(list);
      assert.equal(membership.ready(), false);
      await membership.refresh(signal());
      assert.equal(membership.ready(), ready);
      assert.deepEqual(ids(membership.members()), members);
      assert.equal(membership.get(SELF)?.routerUrl, `http://${SELF}`);
    });
  }

  it('gives members https router URLs when peers speak TLS', async () => {
    const membership = createMembership(createStaticMembers([SELF, '10.0.0.2:5001']), SELF, {
      routerScheme: 'https',
    });
    await membership.refresh(signal());
    assert.deepEqual(
      membership.members().map((member) => member.routerUrl),
      [`https://${SELF}`, 'https://10.0.0.2:5001'],
    );
  });

  it('keeps the previous set when a refresh fails', async () => {
    const t = setup([SELF, '10.0.0.2:5001']);
    await t.membership.refresh(signal());
    t.set(new Error('dns down'));
    await t.membership.refresh(signal());
    assert.deepEqual(ids(t.membership.members()), [SELF, '10.0.0.2:5001']);
    assert.equal(t.membership.ready(), true);
  });

  it('drops a member absent for two refreshes', async () => {
    const t = setup([SELF, '10.0.0.2:5001', '10.0.0.3:5001']);
    await t.membership.refresh(signal());
    t.set([SELF, '10.0.0.3:5001']);
    await t.membership.refresh(signal());
    assert.deepEqual(ids(t.membership.available()), [SELF, '10.0.0.2:5001', '10.0.0.3:5001']);
    await t.membership.refresh(signal());
    assert.deepEqual(ids(t.membership.available()), [SELF, '10.0.0.3:5001']);
    assert.equal(t.membership.get('10.0.0.2:5001'), undefined);
  });

  it('cools a failing member down, doubling the cool-down, and drops it after three failures', async () => {
    const t = setup([SELF, '10.0.0.2:5001'], { cooldownMs: 100, maxCooldownMs: 300 });
    await t.membership.refresh(signal());
    const peer = '10.0.0.2:5001';
    const steps: [string, () => void, boolean, string[], string[]][] = [
      ['first failure', () => t.membership.reportFailure(peer), true, [SELF], [SELF, peer]],
      ['after 100 ms', () => t.advance(100), false, [SELF, peer], [SELF, peer]],
      ['second failure', () => t.membership.reportFailure(peer), true, [SELF], [SELF, peer]],
      ['after 199 ms', () => t.advance(199), true, [SELF], [SELF, peer]],
      ['after 200 ms', () => t.advance(1), false, [SELF, peer], [SELF, peer]],
      ['third failure: dropped', () => t.membership.reportFailure(peer), true, [SELF], [SELF]],
      ['after the capped 300 ms', () => t.advance(300), false, [SELF, peer], [SELF, peer]],
      ['a success clears it', () => t.membership.reportSuccess(peer), false, [SELF, peer], [SELF, peer]],
      ['one failure after success', () => t.membership.reportFailure(peer), true, [SELF], [SELF, peer]],
    ];
    for (const [name, step, cooling, available, members] of steps) {
      step();
      assert.equal(t.membership.coolingDown(peer), cooling, name);
      assert.deepEqual(ids(t.membership.available()), available, name);
      assert.deepEqual(ids(t.membership.members()), members, name);
    }
  });

  it('returns the same available list until the set or a cool-down changes (lookups ask it each time)', async () => {
    const t = setup([SELF, '10.0.0.2:5001'], { cooldownMs: 100 });
    await t.membership.refresh(signal());
    const first = t.membership.available();
    t.membership.reportSuccess('10.0.0.2:5001'); // no cool-down to clear: no change
    assert.equal(t.membership.available(), first);
    t.membership.reportFailure('10.0.0.2:5001');
    const cooling = t.membership.available();
    assert.notEqual(cooling, first);
    t.advance(50);
    assert.equal(t.membership.available(), cooling);
    t.advance(50);
    assert.deepEqual(ids(t.membership.available()), [SELF, '10.0.0.2:5001']);
  });

  it('never cools itself down and ignores unknown members', async () => {
    const t = setup([SELF]);
    await t.membership.refresh(signal());
    t.membership.reportFailure(SELF);
    t.membership.reportFailure('10.9.9.9:1');
    assert.deepEqual(ids(t.membership.available()), [SELF]);
  });

  it('refreshes on its interval until aborted', async () => {
    const clock = new ManualClock();
    const statics = createStaticMembers([SELF]);
    // Counts the listings: after the abort the source must not even be asked (a source that
    // honoured the aborted signal would hide a refresh that still ran).
    let listings = 0;
    const source: MemberSource = { name: 'counted', list: (s) => (listings++, statics.list(s)) };
    const membership = createMembership(source, SELF, { refreshIntervalMs: 20, clock });
    const stop = new AbortController();
    await membership.start(stop.signal);
    assert.equal(listings, 1);
    statics.set([SELF, '10.0.0.5:5001']);
    await clock.tick(19);
    assert.equal(listings, 1, 'not before the interval');
    await clock.tick(1);
    assert.equal(listings, 2);
    assert.deepEqual(ids(membership.members()), [SELF, '10.0.0.5:5001']);
    stop.abort();
    statics.set([SELF]);
    await clock.tick(100);
    assert.equal(listings, 2, 'no refresh after abort');
    assert.deepEqual(ids(membership.members()), [SELF, '10.0.0.5:5001']);
    assert.equal(clock.pending, 0, 'the interval is cancelled');
  });
});
