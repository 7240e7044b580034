/**
 * The checks of a workflow's graph before anything is stored: unique references, known
 * references, no cycle, within the size limits. Pure: no database.
 */

/** Most tasks in one workflow or batch. */
export const MAX_WORKFLOW_TASKS = 20_000;
/** Most edges (parent → child) in one workflow. */
export const MAX_WORKFLOW_EDGES = 200_000;

/** One thing wrong with a graph: the field (a JSON pointer under the input) and what is wrong. */
export interface GraphProblem {
  field: string;
  message: string;
}

export interface GraphNode {
  ref: string;
  dependsOn?: readonly string[];
}

/**
 * Checks the graph of `nodes` (`at` is the pointer to the list, e.g. `body/tasks`); returns the
 * problems found (empty when the graph is sound) and, when sound, the parents of each node by
 * index. Every duplicate and unknown reference is named; a cycle is named by its references
 * in order.
 */
export function checkGraph(nodes: readonly GraphNode[], at: string): { problems: GraphProblem[]; parents: number[][] } {
  const problems: GraphProblem[] = [];
  if (nodes.length > MAX_WORKFLOW_TASKS) {
    return { problems: [{ field: at, message: `has ${nodes.length} tasks; a workflow holds at most ${MAX_WORKFLOW_TASKS}` }], parents: [] };
  }
  const index = new Map<string, number>();
  nodes.forEach((n, i) => {
    const first = index.get(n.ref);
    if (first === undefined) index.set(n.ref, i);
    else problems.push({ field: `${at}/${i}/ref`, message: `duplicates the ref "${n.ref}" of the task at index ${first}` });
  });
  let edges = 0;
  const parents = nodes.map((n, i) => {
    const seen = new Set<number>();
    (n.dependsOn ?? []).forEach((ref, k) => {
      const p = index.get(ref);
      if (p === undefined) problems.push({ field: `${at}/${i}/dependsOn/${k}`, message: `names "${ref}", which is not the ref of any task of this workflow` });
      else if (p === i) problems.push({ field: `${at}/${i}/dependsOn/${k}`, message: `is a cycle: "${ref}" depends on itself` });
      else seen.add(p);
    });
    edges += seen.size;
    return [...seen];
  });
  if (edges > MAX_WORKFLOW_EDGES) problems.push({ field: at, message: `has ${edges} dependencies; a workflow holds at most ${MAX_WORKFLOW_EDGES}` });
  if (problems.length > 0) return { problems, parents: [] };
  const cycle = findCycle(parents);
  if (cycle) {
    const refs = cycle.map((i) => `"${nodes[i]!.ref}"`);
    return { problems: [{ field: `${at}/${cycle[0]}/dependsOn`, message: `is part of a cycle: ${[...refs, refs[0]].join(' → ')} (each depends on the next)` }], parents: [] };
  }
  return { problems, parents };
}

/**
 * A cycle in the graph given by each node's parents, as node indexes (each depends on the
 * next, the last on the first), or undefined. Kahn's algorithm removes every node outside a
 * cycle; from what is left, walking parents must come back to a node already walked.
 */
export function findCycle(parents: readonly number[][]): number[] | undefined {
  const n = parents.length;
  const children: number[][] = Array.from({ length: n }, () => []);
  const pending = parents.map((p) => p.length);
  parents.forEach((ps, child) => ps.forEach((p) => children[p]!.push(child)));
  const ready: number[] = [];
  pending.forEach((c, i) => { if (c === 0) ready.push(i); });
  let removed = 0;
  while (ready.length > 0) {
    const i = ready.pop()!;
    removed++;
    for (const c of children[i]!) if (--pending[c]! === 0) ready.push(c);
  }
  if (removed === n) return undefined;
  // Every node left has a parent left: walk parents until one repeats.
  let at = pending.findIndex((c) => c > 0);
  const order = new Map<number, number>();
  const path: number[] = [];
  while (!order.has(at)) {
    order.set(at, path.length);
    path.push(at);
    at = parents[at]!.find((p) => pending[p]! > 0)!;
  }
  return path.slice(order.get(at)!);
}
