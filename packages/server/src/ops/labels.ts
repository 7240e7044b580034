/**
 * Bounded label values: a metric's series stay few whatever the workers report. The first
 * `limit` distinct values (per scope) keep their name; later ones are counted as `_OTHER`.
 */
export const OTHER = '_OTHER';

export class BoundedLabel {
  private readonly limit: number;
  private readonly seen = new Map<string, Set<string>>();

  constructor(limit: number) {
    this.limit = limit;
  }

  /** `value`, or `_OTHER` once `scope` has `limit` other values. */
  of(value: string, scope = ''): string {
    let values = this.seen.get(scope);
    if (!values) this.seen.set(scope, (values = new Set()));
    if (values.has(value)) return value;
    if (values.size >= this.limit) return OTHER;
    values.add(value);
    return value;
  }
}
