/**
 * The route table holds together on its own: the server registers its routes from it and the
 * SDK types its calls from it, so a slip here reaches both. A path names exactly the
 * parameters its `params` schema requires, no two routes share a method and path, and every
 * route says what it answers on success.
 */
import { describe, expect, it } from 'vitest';
import { routes, type RouteDef } from '@taskflow/contracts';

const table = Object.entries(routes) as [string, RouteDef][];

describe('the route table', () => {
  it('requires in `params` exactly the parameters each path names', () => {
    for (const [name, route] of table) {
      const named = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]).sort();
      const params = route.params as { properties?: Record<string, unknown>; required?: string[] } | undefined;
      expect(Object.keys(params?.properties ?? {}).sort(), `${name}: the properties of params`).toEqual(named);
      expect([...(params?.required ?? [])].sort(), `${name}: the required params`).toEqual(named);
    }
  });

  it('has one route per method and path', () => {
    const keys = table.map(([, r]) => `${r.method} ${r.path.replace(/:\w+/g, ':')}`);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
  });

  it('gives every route a success response', () => {
    for (const [name, route] of table) {
      expect(Object.keys(route.response).some((status) => /^2\d\d$/.test(status)), name).toBe(true);
    }
  });
});
