/**
 * Names a session remembers (prepared statements, portals, SQL PREPAREs, relations) are kept in
 * insertion-ordered maps with a bound: a client that prepares without end cannot grow the heap.
 */

/** Most names of one kind remembered per session (oldest forgotten). */
export const MAX_NAMES = 10_000;

/** Sets `name` as the newest entry of `map`, forgetting the oldest past {@link MAX_NAMES}. */
export function remember<V>(map: Map<string, V>, name: string, value: V): void {
  map.delete(name);
  map.set(name, value);
  if (map.size > MAX_NAMES) map.delete(map.keys().next().value!);
}
