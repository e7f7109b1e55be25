/**
 * Small readers of libpg_query's JSON parse tree (`{ NodeType: { ...fields } }`), shared by the
 * classifier, the filter analysis and the name resolution. Pure functions over plain objects.
 */
import type { AstNode } from './parser.ts';

/** True for a plain object (a node or a node's fields). */
export function isObject(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The single `{ Type: fields }` entry of a node, if it is one. */
export function unwrap(node: unknown): [string, AstNode] | undefined {
  if (!isObject(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const inner = node[keys[0]!];
  return isObject(inner) ? [keys[0]!, inner] : undefined;
}

/** Names from a list of `{ String: { sval } }` nodes. */
export function stringList(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((item) => {
    const u = unwrap(item);
    return u && u[0] === 'String' && typeof u[1].sval === 'string' ? [u[1].sval] : [];
  });
}

/** Deep search for any of the given node types. */
export function containsNode(value: unknown, types: ReadonlySet<string>): boolean {
  if (Array.isArray(value)) return value.some((v) => containsNode(v, types));
  if (!isObject(value)) return false;
  for (const [key, child] of Object.entries(value)) {
    if (types.has(key) || containsNode(child, types)) return true;
  }
  return false;
}

/**
 * The string value of a string constant, also under casts (`'x'::text`, `CAST('x' AS regclass)`):
 * a cast of a string constant is read from that constant at run time.
 */
export function constantString(node: unknown): string | undefined {
  const u = unwrap(node);
  if (u?.[0] === 'TypeCast') return constantString(u[1].arg);
  if (u?.[0] !== 'A_Const') return undefined;
  const sval = u[1].sval;
  return isObject(sval) && typeof sval.sval === 'string' ? sval.sval : undefined;
}

/** A constant's value: string, number, boolean or null; `undefined` when `node` is not a constant. */
export type ConstantValue = string | number | boolean | null;

/** The value of an `A_Const` (under casts to boolean, text or numbers), if `node` is one. */
export function constantValue(node: unknown): ConstantValue | undefined {
  const u = unwrap(node);
  if (u?.[0] === 'TypeCast') {
    const inner = constantValue(u[1].arg);
    const type = stringList((u[1].typeName as AstNode | undefined)?.names).at(-1);
    if (type === 'bool' && typeof inner === 'string') return parseBoolean(inner);
    return inner;
  }
  if (u?.[0] !== 'A_Const') return undefined;
  const c = u[1];
  if (c.isnull === true) return null;
  if (isObject(c.sval)) return typeof c.sval.sval === 'string' ? c.sval.sval : '';
  // Protocol-buffer defaults are omitted: `{ boolval: {} }` is false, `{ ival: {} }` is 0.
  if (isObject(c.boolval)) return c.boolval.boolval === true;
  if (isObject(c.ival)) return typeof c.ival.ival === 'number' ? c.ival.ival : 0;
  if (isObject(c.fval)) return Number(c.fval.fval ?? 0);
  return undefined;
}

/** PostgreSQL's boolean input (`t`, `yes`, `on`, `1`, ... and their negations), if `text` is one. */
export function parseBoolean(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (t.length === 0) return undefined;
  if ('true'.startsWith(t) || 'yes'.startsWith(t) || t === 'on' || t === '1') return true;
  if ('false'.startsWith(t) || 'no'.startsWith(t) || t === 'off' || t === 'of' || t === '0') return false;
  return undefined;
}

/** The named option of a list of `DefElem` nodes, if present. */
export function findOption(options: unknown, name: string): AstNode | undefined {
  if (!Array.isArray(options)) return undefined;
  for (const option of options) {
    const u = unwrap(option);
    if (u?.[0] === 'DefElem' && u[1].defname === name) return u[1];
  }
  return undefined;
}

/** True when two subtrees are the same expression (source locations ignored). */
export function sameExpression(a: unknown, b: unknown): boolean {
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => sameExpression(v, b[i]));
  }
  if (!isObject(a) || !isObject(b)) return a === b;
  const keys = Object.keys(a).filter((k) => k !== 'location');
  const other = Object.keys(b).filter((k) => k !== 'location');
  return keys.length === other.length && keys.every((k) => sameExpression(a[k], b[k]));
}
