/**
 * Email delivery of alert notifications: Nodemailer over a pooled SMTP transport
 * (TASKFLOW_SMTP_URL), from TASKFLOW_ALERTS_EMAIL_FROM.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { AlertNotice } from './notice.ts';

export interface EmailSettings {
  /** smtp:// or smtps:// URL, credentials included. */
  smtpUrl: string;
  from: string;
}

export class AlertMailer {
  private readonly transport: Transporter;
  private readonly from: string;

  constructor(settings: EmailSettings) {
    this.transport = nodemailer.createTransport(`${settings.smtpUrl}${settings.smtpUrl.includes('?') ? '&' : '?'}pool=true`);
    this.from = settings.from;
  }

  async send(to: readonly string[], notice: AlertNotice): Promise<void> {
    const scope = Object.entries(notice.scope).map(([k, v]) => `${k}=${v}`).join(', ') || 'everything';
    await this.transport.sendMail({
      from: this.from,
      to: [...to],
      subject: `[Taskflow ${notice.state === 'firing' ? 'FIRING' : 'RESOLVED'}] ${notice.rule} (${notice.severity})`,
      text: [
        `Alert rule ${notice.rule} is ${notice.state === 'firing' ? 'firing' : 'resolved'}.`,
        '',
        `Value: ${notice.value}`,
        `Threshold: ${notice.threshold}`,
        `Severity: ${notice.severity}`,
        `Scope: ${scope}`,
        `At: ${notice.at}`,
        `History entry: ${notice.historyId}`,
      ].join('\n'),
    });
  }

  close(): void {
    this.transport.close();
  }
}
