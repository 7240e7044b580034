/**
 * Wake-ups between server nodes go out only while another node is listening, on both
 * transports, against real PostgreSQL (LISTEN/NOTIFY) and real Redis (pub/sub): a lone node
 * says hello but sends nothing per publish; a second node is known within a round trip of its
 * start and is woken; a node gone quiet is forgotten after the peer TTL. An observer on the
 * channel sees what actually travels.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { PgNotifyTransport, WakeHub, quoteIdent, silentLogger, type WakeMessage, type WakeTransport } from '@taskflow/core';
import { RedisTransport } from '@taskflow/core/redis';
import { testDatabases } from './support/db.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './support/env.ts';

const OPTS = { presenceIntervalMs: 100, peerTtlMs: 500 };

interface Kind {
  name: string;
  /** A transport for `node` on a channel of this test's own, and an observer of that channel. */
  setup(): Promise<{ transport(node: string): WakeTransport; seen: WakeMessage[]; send(text: string): Promise<void>; close(): Promise<void> }>;
}

const pgDatabases = testDatabases('postgres');

const kinds: Kind[] = [
  {
    name: 'LISTEN/NOTIFY',
    async setup() {
      const db = await pgDatabases.fresh();
      const seen: WakeMessage[] = [];
      const channel = `taskflow:${db.schema}`;
      const observer = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await observer.connect();
      observer.on('notification', (m) => {
        try {
          seen.push(JSON.parse(m.payload!));
        } catch {
          // what the test itself sends as garbage
        }
      });
      await observer.query(`LISTEN ${quoteIdent(channel)}`);
      return {
        seen,
        async send(text) {
          await db.query('SELECT pg_notify($1, $2)', [channel, text]);
        },
        transport: (node) => new PgNotifyTransport(db, node, silentLogger),
        async close() {
          await observer.end();
        },
      };
    },
  },
  {
    name: 'Redis pub/sub',
    async setup() {
      const schema = `tfwake_${randomBytes(6).toString('hex')}`;
      const seen: WakeMessage[] = [];
      const channel = `taskflow:${schema}:wake`;
      const observer = new Redis(TEST_REDIS_URL);
      const writer = new Redis(TEST_REDIS_URL);
      observer.on('message', (_channel: string, message: string) => {
        try {
          seen.push(JSON.parse(message));
        } catch {
          // what the test itself sends as garbage
        }
      });
      await observer.subscribe(channel);
      const transports: WakeTransport[] = [];
      return {
        seen,
        async send(text) {
          await writer.publish(channel, text);
        },
        transport(node) {
          const t = new RedisTransport(TEST_REDIS_URL, schema, node, silentLogger);
          transports.push(t);
          return t;
        },
        async close() {
          for (const t of transports) await t.stop();
          observer.disconnect();
          writer.disconnect();
        },
      };
    },
  },
];

/** Waits for `cond`, checking every 10 ms. */
async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until the observer has seen `count` more hellos from `node`: what was sent before them has arrived. */
async function helloes(seen: WakeMessage[], node: string, count: number): Promise<void> {
  const from = seen.filter((m) => m.n === node && m.h === 1).length;
  await until(() => seen.filter((m) => m.n === node && m.h === 1).length >= from + count, `${count} hellos from ${node}`);
}

const wakeUps = (seen: WakeMessage[], node: string) => seen.filter((m) => m.n === node && m.q !== undefined);

afterAll(() => pgDatabases.closeAll());

describe.each(kinds)('wake-ups across nodes ($name)', (kind) => {
  it('a lone node says hello and publishes nothing; a second node is known at once and woken; a quiet one is forgotten', async () => {
    const channel = await kind.setup();
    const a = randomUUID();
    const b = randomUUID();
    const hubA = new WakeHub(channel.transport(a), silentLogger, OPTS);
    const hubB = new WakeHub(channel.transport(b), silentLogger, OPTS);
    try {
      await hubA.start();
      await helloes(channel.seen, a, 1);
      hubA.publish(['q1']);
      hubA.publish(['q2']);
      await helloes(channel.seen, a, 2); // anything published before these would have arrived
      expect(hubA.peerCount()).toBe(0);
      expect(wakeUps(channel.seen, a)).toEqual([]);

      // B says hello on start; A, hearing a new node, answers, so each knows the other.
      await hubB.start();
      await until(() => hubA.peerCount() === 1 && hubB.peerCount() === 1, 'the two nodes to know of each other');
      const sub = hubB.subscribe(['q1']);
      hubA.publish(['q1']);
      expect(await sub.wait(5000)).toBe(true);
      sub.close();
      await until(() => wakeUps(channel.seen, a).some((m) => m.q!.includes('q1')), 'the wake-up on the channel');

      // B goes quiet: after the peer TTL A forgets it and publishes nothing again.
      await hubB.stop();
      await until(() => hubA.peerCount() === 0, 'node A to forget node B', 5000);
      const before = wakeUps(channel.seen, a).length;
      hubA.publish(['q1']);
      await helloes(channel.seen, a, 2);
      expect(wakeUps(channel.seen, a)).toHaveLength(before);
    } finally {
      await hubA.stop();
      await hubB.stop();
      await channel.close();
    }
  });

  it('ignores malformed messages, and answers the hello of a node it did not know', async () => {
    const channel = await kind.setup();
    const a = randomUUID();
    const hubA = new WakeHub(channel.transport(a), silentLogger, OPTS);
    try {
      await hubA.start();
      await helloes(channel.seen, a, 1);
      // Something else writes to the channel: none of it is a node.
      for (const text of ['not json', '{"x":1}', '{"n":7}', '{"n":"x","q":"not-a-list"}']) await channel.send(text);
      await helloes(channel.seen, a, 2);
      expect(hubA.peerCount()).toBe(0);
      // A node never heard of says hello: it is known at once and answered before the next
      // periodic hello would be due (a minute apart here, to tell the two apart).
      await hubA.stop();
      const c = randomUUID();
      const hubC = new WakeHub(channel.transport(c), silentLogger, { presenceIntervalMs: 60_000 });
      try {
        await hubC.start();
        await helloes(channel.seen, c, 1); // the hello of its start
        const answered = channel.seen.filter((m) => m.n === c && m.h === 1).length;
        await channel.send(JSON.stringify({ n: 'node-from-elsewhere', h: 1 }));
        await until(() => hubC.peerCount() === 1, 'the new node to be known');
        await until(() => channel.seen.filter((m) => m.n === c && m.h === 1).length > answered, 'the answer to its hello', 5000);
      } finally {
        await hubC.stop();
      }
    } finally {
      await hubA.stop();
      await channel.close();
    }
  });
});
