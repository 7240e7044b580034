/**
 * Webhook delivery of alert notifications: a JSON POST signed like Stripe's webhooks.
 *
 *   Taskflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *   Taskflow-Delivery:  <the notification's id: the same on every retry of one notification>
 *
 * A receiver recomputes v1 over the raw body with its secret, compares in constant time, and
 * refuses a `t` too far from its clock (replay). A non-2xx answer or no answer within the
 * timeout is a failed attempt, retried with backoff (docs/operations.md, "Alerts").
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'taskflow-signature';
export const DELIVERY_HEADER = 'taskflow-delivery';

/** The signature header's value for `body` at `t` (unix seconds). */
export function signWebhook(secret: string, body: string, t: number): string {
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

/**
 * Whether `header` signs `body` with `secret`, at most `toleranceS` seconds from `nowS`. For
 * receivers written in TypeScript, and the tests.
 */
export function verifyWebhook(secret: string, body: string, header: string, nowS: number, toleranceS = 300): boolean {
  const parts = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || v1 === undefined || Math.abs(nowS - t) > toleranceS) return false;
  const want = Buffer.from(signWebhook(secret, body, t).split('v1=')[1]!, 'hex');
  const got = Buffer.from(v1, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

export class WebhookError extends Error {}

/** POSTs `body`; throws WebhookError for a non-2xx answer, a timeout or a network error. */
export async function postWebhook(url: string, secret: string, body: string, deliveryId: string, timeoutMs: number): Promise<number> {
  const t = Math.floor(Date.now() / 1000);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', 'user-agent': 'taskflow-alerts', [SIGNATURE_HEADER]: signWebhook(secret, body, t),
        [DELIVERY_HEADER]: deliveryId,
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new WebhookError(`webhook ${redact(url)} did not answer: ${(err as Error).message}`, { cause: err });
  }
  await res.body?.cancel().catch(() => undefined);
  if (res.status < 200 || res.status >= 300) throw new WebhookError(`webhook ${redact(url)} answered ${res.status}`);
  return res.status;
}

/** The URL without credentials or query (it may hold a token) for messages and logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
