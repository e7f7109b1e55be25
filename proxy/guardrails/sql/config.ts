/**
 * The `guardrails` fragment of a Postgres target's configuration, e.g.
 *
 * ```yaml
 * guardrails:
 *   unparseable: block          # or allow (default block)
 *   cacheSize: 10000            # verdict cache entries (default 10000, 0 disables)
 *   disable:
 *     - truncate                              # everywhere on this target
 *     - { rule: drop-table, levels: [admin] } # only for admin sessions
 *   rules:
 *     - name: no-payroll
 *       match: { relations: [payroll.salaries] }
 *       action: block
 *       message: payroll is off limits
 *       levels: [read]
 *     - name: review-deletes
 *       match: { kinds: [delete] }
 *       action: review          # held until an approver decides (statement review)
 *       timeout: 2m             # how long to wait for the decision (default 5m)
 *     - name: big-invoice-writes
 *       match: { kinds: [update, delete], relations: [invoices] }
 *       action: block
 *       max_rows: { rows: 500, fraction: 0.1, min_table_rows: 100 }   # or max_rows: 500
 *       unestimated: skip       # a write whose estimate cannot be taken: match (default) or skip
 *   adjust:                     # change a default rule for some sessions (first entry in scope wins)
 *     - { rule: blast-radius, levels: [owner], max_rows: { rows: 1000000 } }
 *     - { rule: persistent-object, levels: [owner], action: review, timeout: 10m }
 * ```
 */
import { z } from 'zod';
import { parseDurationMs } from '../../../lib/duration.ts';
import { SQL_EFFECTS } from './effects.ts';

const STATEMENT_KINDS = [
  'select',
  'insert',
  'update',
  'delete',
  'merge',
  'truncate',
  'copy',
  'ddl',
  'role',
  'privilege',
  'session',
  'transaction',
  'explain',
  'prepare',
  'execute',
  'procedural',
  'maintenance',
  'utility',
] as const;

const names = z.array(z.string().min(1)).min(1);

const ruleMatchSchema = z
  .object({
    kinds: z.array(z.enum(STATEMENT_KINDS)).min(1).optional(),
    effects: z.array(z.enum(SQL_EFFECTS)).min(1).optional(),
    relations: names.optional(),
    functions: names.optional(),
  })
  .strict()
  .refine((m) => Object.values(m).some((v) => v !== undefined), {
    message: 'give at least one of kinds, effects, relations, functions',
  });

const duration = z
  .string()
  .refine((text) => (parseDurationMs(text) ?? 0) > 0, 'use a duration like 30s, 2m or 1h');

/** `max_rows: N` or `max_rows: { rows, fraction, min_table_rows }`. */
const maxRowsSchema = z.union([
  z.number().int().min(0),
  z
    .object({
      rows: z.number().int().min(0).optional(),
      fraction: z.number().gt(0).max(1).optional(),
      min_table_rows: z.number().int().min(0).optional(),
    })
    .strict()
    .refine((m) => m.rows !== undefined || m.fraction !== undefined, {
      message: 'give rows, fraction or both',
    }),
]);

const ruleSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'use lower-case letters, digits and dashes'),
    match: ruleMatchSchema,
    action: z.enum(['block', 'review', 'allow']),
    message: z.string().min(1).optional(),
    levels: names.optional(),
    groups: names.optional(),
    /** `review` rules: how long a held statement waits for a decision (`2m`; default 5m). */
    timeout: duration.optional(),
    /** Matches only writes the planner estimates to touch more rows than this. */
    max_rows: maxRowsSchema.optional(),
    /** `max_rows` rules: a write whose estimate cannot be taken `match`es (default) or is `skip`ped. */
    unestimated: z.enum(['match', 'skip']).optional(),
  })
  .strict()
  .refine((r) => r.timeout === undefined || r.action === 'review', {
    message: 'timeout applies to rules with action review',
    path: ['timeout'],
  })
  .refine((r) => r.unestimated === undefined || r.max_rows !== undefined, {
    message: 'unestimated applies to rules with max_rows',
    path: ['unestimated'],
  });

/** A default rule changed for the sessions in its scope. */
const adjustSchema = z
  .object({
    rule: z.string().min(1),
    levels: names.optional(),
    groups: names.optional(),
    action: z.enum(['block', 'review']).optional(),
    message: z.string().min(1).optional(),
    timeout: duration.optional(),
    max_rows: maxRowsSchema.optional(),
    unestimated: z.enum(['match', 'skip']).optional(),
  })
  .strict();

const disableSchema = z.union([
  z.string().min(1),
  z.object({ rule: z.string().min(1), levels: names.optional(), groups: names.optional() }).strict(),
]);

/** Schema of a target's `guardrails` configuration fragment (see the module comment). */
export const sqlGuardrailsConfigSchema = z
  .object({
    unparseable: z.enum(['block', 'allow']).default('block'),
    cacheSize: z.number().int().min(0).max(1_000_000).default(10_000),
    rules: z.array(ruleSchema).default([]),
    disable: z.array(disableSchema).default([]),
    adjust: z.array(adjustSchema).default([]),
  })
  .strict();

/** Configuration as written (defaults optional). */
export type SqlGuardrailsConfigInput = z.input<typeof sqlGuardrailsConfigSchema>;
/** Configuration after defaults. */
export type SqlGuardrailsConfig = z.output<typeof sqlGuardrailsConfigSchema>;
