-- 0010_workflows: dependencies between tasks, workflows (graphs of tasks submitted together)
-- and batches (a workflow without edges, with an optional completion task).
--
-- A child waits in state `blocked` while `pending_parents` > 0: the number of its parents
-- that have not succeeded. A parent's success decrements its children in the same statement
-- as the success (sql/tasks/dependents.ts), and only a task with `has_children` looks for
-- children at all, so a task without any pays one boolean on the settle path. A parent that
-- ends dead or cancelled cancels its descendants (or the whole workflow, under the policy
-- `cancel_all`), in the same statement that ended it. docs/workflows.md describes it.

CREATE TABLE workflows (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name           text NOT NULL,
  -- A batch is a workflow without edges, whose completion task (if any) waits for every
  -- member to finish, whatever the outcome.
  kind           text NOT NULL DEFAULT 'workflow' CHECK (kind IN ('workflow', 'batch')),
  failure_policy text NOT NULL DEFAULT 'cancel_dependents'
                   CHECK (failure_policy IN ('cancel_dependents', 'cancel_all')),
  task_count     integer NOT NULL,
  completion_task_id bigint,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- All three default to "no dependencies": adding them rewrites nothing (PostgreSQL 11+).
ALTER TABLE tasks
  ADD COLUMN workflow_id     bigint,
  -- The task's reference within its workflow (its key in its children's parents' results).
  ADD COLUMN workflow_ref    text,
  ADD COLUMN has_children    boolean NOT NULL DEFAULT false,
  ADD COLUMN has_parents     boolean NOT NULL DEFAULT false,
  ADD COLUMN pending_parents integer NOT NULL DEFAULT 0 CHECK (pending_parents >= 0);

-- A workflow's tasks, for its status, cancel, retry and the cancel_all policy. A table of its
-- own rather than an index of tasks on workflow_id: a claim or a settlement writes a new
-- version of the task's row, which gets an entry in every index that covers it, so such an
-- index would cost every claim and settlement of a workflow's task one more index insert.
CREATE TABLE workflow_tasks (
  workflow_id bigint NOT NULL,
  task_id     bigint NOT NULL,
  PRIMARY KEY (workflow_id, task_id)
);
-- Blocked tasks that depend on existing tasks by id (not part of a workflow): the ones the
-- dependency check re-counts (engine/dependencies.ts).
CREATE INDEX tasks_blocked_loose ON tasks (id) WHERE state = 'blocked' AND workflow_id IS NULL;

-- One row per edge: `child` waits for `parent`. `on_finish`: the child waits for the parent
-- to finish whatever the outcome (a batch's completion task), rather than to succeed.
CREATE TABLE task_dependencies (
  parent    bigint NOT NULL,
  child     bigint NOT NULL,
  on_finish boolean NOT NULL DEFAULT false,
  PRIMARY KEY (parent, child)
);
CREATE INDEX task_dependencies_child ON task_dependencies (child);
