/**
 * The alert email channel with a real SMTP server (smtp-server, in this process): a rule that
 * fires sends one message through the pooled Nodemailer transport, its subject naming the rule.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SMTPServer } from 'smtp-server';
import { ManualClock } from '@taskflow/core';
import { startTestService, type TestService } from './support/service.ts';

interface Mail {
  from: string;
  to: string[];
  data: string;
}

async function startSmtp(): Promise<{ port: number; mails: Mail[]; close(): Promise<void> }> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const open: { close?: () => Promise<void>; stop?: () => Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await (o.stop ?? o.close)!();
});

describe('the alert email channel', () => {
  it('sends a message naming the rule through the SMTP server', async () => {
    const smtp = await startSmtp();
    open.push(smtp);
    const clock = new ManualClock(new Date('2030-01-01T00:00:00Z'));
    const node: TestService = await startTestService('postgres', {
      alertsIntervalMs: 50, smtpUrl: `smtp://127.0.0.1:${smtp.port}`, alertsEmailFrom: 'Taskflow <alerts@example.com>',
    }, { clock });
    open.push(node);
    await node.admin.alerts.createRule({
      name: 'Payments backlog', kind: 'queue_depth', threshold: 0, severity: 'critical', scope: { queue: 'payments' },
      channels: [{ type: 'email', to: ['oncall@example.com', 'ops@example.com'] }],
    });
    await node.admin.enqueue({ type: 'charge', queue: 'payments' });
    await vi.waitFor(() => expect(smtp.mails).toHaveLength(1), { timeout: 15_000 });
    const [mail] = smtp.mails;
    expect(mail!.from).toBe('alerts@example.com');
    expect(mail!.to).toEqual(['oncall@example.com', 'ops@example.com']);
    expect(mail!.data).toMatch(/^Subject: \[Taskflow FIRING\] Payments backlog \(critical\)/m);
    expect(mail!.data).toContain('Value: 1');
  });
});

describe('the alert email configuration', () => {
  it('needs an smtp:// or smtps:// URL and a From address with it', async () => {
    const { loadConfig } = await import('../src/config.ts');
    expect(() => loadConfig({ TASKFLOW_SMTP_URL: 'http://mail.example.com' })).toThrow(/^TASKFLOW_SMTP_URL is not valid/);
    expect(() => loadConfig({ TASKFLOW_SMTP_URL: 'smtp://mail.example.com:587' })).toThrow(/^TASKFLOW_ALERTS_EMAIL_FROM is required/);
    expect(() => loadConfig({ TASKFLOW_ALERTS_EMAIL_FROM: 'nobody' })).toThrow(/^TASKFLOW_ALERTS_EMAIL_FROM="nobody" is not valid/);
    expect(() => loadConfig({ TASKFLOW_ALERTS_INTERVAL_MS: '-1' })).toThrow(/^TASKFLOW_ALERTS_INTERVAL_MS="-1" is not valid/);
    expect(loadConfig({ TASKFLOW_SMTP_URL: 'smtps://u:p@mail.example.com:465', TASKFLOW_ALERTS_EMAIL_FROM: 'Taskflow <alerts@example.com>' }))
      .toMatchObject({ smtpUrl: 'smtps://u:p@mail.example.com:465', alertsEmailFrom: 'Taskflow <alerts@example.com>', alertsIntervalMs: 15_000 });
  });
});
